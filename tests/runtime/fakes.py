"""Test doubles for simulated calls: a transport playing the far end in real time, and
provider wrappers that record or fail.

`FakeTransport` behaves like Twilio's media stream: agent audio queues at the far end and
plays in real time; a mark echoes once the audio sent before it has played (at once if
nothing is queued); `clear` drops the queue and echoes every pending mark at once. The caller
side is scripted with `speak`/`pause`/`press`/`type_text`/`hang_up_caller`, and inbound audio
flows as 20 ms frames in real time (loud noise for speech, digital silence otherwise).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field

import numpy as np

from voxline.audio.mulaw import decode_mulaw, encode_mulaw
from voxline.audio.pcm import Pcm16
from voxline.providers.base import (
    LanguageModel,
    LlmEvent,
    LlmRequest,
    LlmSession,
    PeekingSttSession,
    ProviderError,
    SpeechToText,
    SttSession,
    TextDelta,
    TextToSpeech,
    Transcript,
    TtsSession,
)
from voxline.runtime.events import CallEvent
from voxline.runtime.transport import (
    AudioIn,
    DtmfIn,
    HangupIn,
    InboundEvent,
    MarkPlayed,
    TextIn,
    TransferUnsupported,
)

FRAME_MS = 20
_SPEECH_RMS = 3000.0  # about -21 dBFS: clearly voiced for the energy VAD


def noise(rate: int, ms: int, seed: int = 7) -> Pcm16:
    """Loud deterministic noise, `ms` long: 'speech' for the energy VAD."""
    rng = np.random.default_rng(seed)
    samples = rng.normal(0.0, _SPEECH_RMS, rate * ms // 1000)
    return np.clip(samples, -32768, 32767).astype(np.int16)


@dataclass
class Sent:
    """One thing the runtime did to the far end, in order."""

    kind: str  # audio | mark | echo | clear | hangup | transfer
    at: float
    name: str = ""
    samples: int = 0
    peak: int = 0
    """Audio: the largest absolute sample (how loud the agent was)."""


@dataclass
class FakeTransport:
    input_rate: int = 16000
    output_rate: int = 16000
    transfer_supported: bool = True
    mulaw: bool = False
    """Send caller audio the way a phone line does: mu-law bytes along with their PCM."""
    log: list[Sent] = field(default_factory=list)
    emitted: list[CallEvent] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._inbound: asyncio.Queue[InboundEvent] = asyncio.Queue()
        self._speech: list[tuple[Pcm16, asyncio.Future[None]]] = []
        self._played_until = 0.0
        self._pending: dict[str, asyncio.TimerHandle] = {}
        self._feeder: asyncio.Task[None] | None = None
        self.hung_up = asyncio.Event()
        self.transferred_to: str | None = None

    # --- the Transport protocol ---------------------------------------------------------

    async def events(self) -> AsyncIterator[InboundEvent]:
        while True:
            event = await self._inbound.get()
            yield event
            if isinstance(event, HangupIn):
                return

    async def send_audio(self, pcm: Pcm16) -> None:
        now = time.monotonic()
        start = max(self._played_until, now)
        self._played_until = start + pcm.shape[0] / self.output_rate
        peak = int(np.abs(pcm.astype(np.int32)).max()) if pcm.shape[0] else 0
        self.log.append(Sent("audio", now, samples=pcm.shape[0], peak=peak))

    async def send_mark(self, name: str) -> None:
        now = time.monotonic()
        self.log.append(Sent("mark", now, name=name))
        delay = self._played_until - now
        if delay <= 0:
            self._echo(name)
        else:
            self._pending[name] = asyncio.get_running_loop().call_later(delay, self._echo, name)

    async def clear(self) -> None:
        self.log.append(Sent("clear", time.monotonic()))
        self._played_until = time.monotonic()
        pending, self._pending = self._pending, {}
        for name, handle in pending.items():
            handle.cancel()
            self._echo(name, registered=False)

    async def emit(self, event: CallEvent) -> None:
        self.emitted.append(event)

    async def hang_up(self) -> None:
        self.log.append(Sent("hangup", time.monotonic()))
        self.hung_up.set()
        self._inbound.put_nowait(HangupIn("agent hung up"))

    async def transfer(self, number: str) -> None:
        if not self.transfer_supported:
            raise TransferUnsupported("no phone line here")
        self.log.append(Sent("transfer", time.monotonic(), name=number))
        self.transferred_to = number

    # --- the caller's side --------------------------------------------------------------

    def start_caller(self) -> None:
        """Start streaming caller audio (silence until `speak`)."""
        self._feeder = asyncio.ensure_future(self._feed())

    async def stop_caller(self) -> None:
        if self._feeder is not None:
            self._feeder.cancel()
            await asyncio.gather(self._feeder, return_exceptions=True)

    async def speak(self, ms: int = 0, *, pcm: Pcm16 | None = None, seed: int = 7) -> None:
        """The caller talks for `ms` (noise), or says `pcm`; returns when it has been sent."""
        audio = pcm if pcm is not None else noise(self.input_rate, ms, seed)
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._speech.append((audio, done))
        await done

    async def pause(self, ms: int) -> None:
        await asyncio.sleep(ms / 1000)

    def press(self, digit: str) -> None:
        self._inbound.put_nowait(DtmfIn(digit))

    def type_text(self, text: str) -> None:
        self._inbound.put_nowait(TextIn(text))

    def hang_up_caller(self) -> None:
        self._inbound.put_nowait(HangupIn("caller hung up"))

    # --- inspection ---------------------------------------------------------------------

    def kinds(self) -> list[str]:
        return [entry.kind for entry in self.log]

    def events_of(self, type_: str) -> list[CallEvent]:
        return [event for event in self.emitted if event.type == type_]

    @property
    def pending_marks(self) -> int:
        return len(self._pending)

    def _echo(self, name: str, *, registered: bool = True) -> None:
        if registered:
            self._pending.pop(name, None)
        self.log.append(Sent("echo", time.monotonic(), name=name))
        self._inbound.put_nowait(MarkPlayed(name))

    async def _feed(self) -> None:
        frame = self.input_rate * FRAME_MS // 1000
        silence = np.zeros(frame, dtype=np.int16)
        loop = asyncio.get_running_loop()
        next_at = loop.time()
        current: tuple[Pcm16, asyncio.Future[None]] | None = None
        offset = 0
        while True:
            if current is None and self._speech:
                current, offset = self._speech.pop(0), 0
            if current is not None:
                audio, done = current
                chunk = audio[offset : offset + frame]
                if chunk.shape[0] < frame:
                    chunk = np.concatenate([chunk, silence[: frame - chunk.shape[0]]])
                offset += frame
                if offset >= audio.shape[0]:
                    current = None
                    if not done.done():
                        done.set_result(None)
            else:
                chunk = silence
            if self.mulaw:
                payload = encode_mulaw(chunk)
                self._inbound.put_nowait(AudioIn(decode_mulaw(payload), mulaw=payload))
            else:
                self._inbound.put_nowait(AudioIn(chunk))
            next_at += FRAME_MS / 1000
            await asyncio.sleep(max(0.0, next_at - loop.time()))


async def eventually(condition: Callable[[], object], within: float = 5.0) -> None:
    """Wait until `condition()` is truthy (polled every 10 ms); fail after `within` s."""
    for _ in range(int(within * 100)):
        if condition():
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"condition still false after {within} s")


# --- provider wrappers ----------------------------------------------------------------------


class RecordingLlm:
    """Wraps a language model: keeps every request its sessions get; fails the requests whose
    index (from 0) is in `fail_on` after their first word, or every `open`."""

    def __init__(
        self, inner: LanguageModel, *, fail_on: set[int] | None = None, fail_open: bool = False
    ) -> None:
        self._inner = inner
        self.name = "recording"
        self.requests: list[LlmRequest] = []
        self.fail_on = fail_on or set()
        self.fail_open = fail_open
        self.opened_at: float | None = None

    async def open(self) -> LlmSession:
        self.opened_at = time.monotonic()
        if self.fail_open:
            raise ProviderError("the model server is down")
        session = await self._inner.open()
        return _RecordingLlmSession(self, session)


class _RecordingLlmSession:
    def __init__(self, owner: RecordingLlm, inner: LlmSession) -> None:
        self._owner = owner
        self._inner = inner

    async def stream(self, request: LlmRequest) -> AsyncIterator[LlmEvent]:
        index = len(self._owner.requests)
        self._owner.requests.append(request)
        async for event in self._inner.stream(request):
            yield event
            if index in self._owner.fail_on and isinstance(event, TextDelta):
                raise ProviderError("the model crashed")

    async def aclose(self) -> None:
        await self._inner.aclose()


class CountingTts:
    """Wraps a text-to-speech provider: counts what its sessions synthesize."""

    def __init__(self, inner: TextToSpeech) -> None:
        self._inner = inner
        self.name = "counting"
        self.sample_rate = inner.sample_rate
        self.texts: list[str] = []
        self.opened_at: float | None = None

    async def open(self) -> TtsSession:
        self.opened_at = time.monotonic()
        session = await self._inner.open()
        return _CountingTtsSession(self, session)


class _CountingTtsSession:
    def __init__(self, owner: CountingTts, inner: TtsSession) -> None:
        self._owner = owner
        self._inner = inner
        self.sample_rate = inner.sample_rate

    async def synthesize(self, text: str) -> AsyncIterator[Pcm16]:
        self._owner.texts.append(text)
        async for pcm in self._inner.synthesize(text):
            yield pcm

    async def aclose(self) -> None:
        await self._inner.aclose()


class RecordingStt:
    """Wraps a speech-to-text provider: counts audio sent; fails finalizes in `fail_on`."""

    def __init__(self, inner: SpeechToText, *, fail_on: set[int] | None = None) -> None:
        self._inner = inner
        self.name = "recording"
        self.sample_rate = inner.sample_rate
        self.samples_sent = 0
        self.finalizes = 0
        self.peeks = 0
        self.fail_on = fail_on or set()
        self.opened_at: float | None = None

    async def open(self) -> SttSession:
        self.opened_at = time.monotonic()
        session = await self._inner.open()
        return _RecordingSttSession(self, session)


class _RecordingSttSession:
    def __init__(self, owner: RecordingStt, inner: SttSession) -> None:
        self._owner = owner
        self._inner = inner

    async def send(self, pcm: Pcm16) -> None:
        self._owner.samples_sent += pcm.shape[0]
        await self._inner.send(pcm)

    async def finalize(self) -> str:
        index = self._owner.finalizes
        self._owner.finalizes += 1
        text = await self._inner.finalize()
        if index in self._owner.fail_on:
            raise ProviderError("the recognizer crashed")
        return text

    async def peek(self) -> str:
        self._owner.peeks += 1
        assert isinstance(self._inner, PeekingSttSession)
        return await self._inner.peek()

    def interim(self) -> AsyncIterator[Transcript]:
        return self._inner.interim()

    async def aclose(self) -> None:
        await self._inner.aclose()
