"""What the runtime needs from a transport (Twilio media stream, browser WebSocket, simulator).

The runtime knows no transport: it reads `InboundEvent`s and calls these methods. Audio is
mono PCM16 at the transport's declared rates; encoding (mu-law, base64, binary frames) is
the transport's business. Playback progress comes back as `MarkPlayed` events, echoed by the
far end once the audio sent before that mark has been played.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Protocol

from voxline.audio.pcm import Pcm16
from voxline.runtime.events import CallEvent


@dataclass(frozen=True, slots=True)
class AudioIn:
    """Caller audio at `input_rate`; `mulaw` is the same audio as the phone line sent it
    (G.711 mu-law, 8 kHz) when the transport has it, so a recognizer can take it as is."""

    pcm: Pcm16
    mulaw: bytes | None = None


@dataclass(frozen=True, slots=True)
class DtmfIn:
    digit: str


@dataclass(frozen=True, slots=True)
class TextIn:
    """Typed input (browser), answered like speech."""

    text: str


@dataclass(frozen=True, slots=True)
class MarkPlayed:
    name: str


@dataclass(frozen=True, slots=True)
class InterruptIn:
    """The client asked the agent to stop speaking (browser `interrupt`)."""


@dataclass(frozen=True, slots=True)
class HangupIn:
    """The far end is gone: Twilio `stop`, client `end`, or the socket dropped."""

    reason: str


InboundEvent = AudioIn | DtmfIn | TextIn | MarkPlayed | InterruptIn | HangupIn


class TransferUnsupported(Exception):
    """This transport cannot transfer a call (there is no phone line)."""


class Transport(Protocol):
    input_rate: int
    output_rate: int

    def events(self) -> AsyncIterator[InboundEvent]:
        """Inbound events until the far end hangs up (the last one is `HangupIn`)."""
        ...

    async def send_audio(self, pcm: Pcm16) -> None: ...

    async def send_mark(self, name: str) -> None: ...

    async def clear(self) -> None:
        """Drop everything sent but not yet played; pending marks will echo at once."""
        ...

    async def emit(self, event: CallEvent) -> None:
        """Show a call event to the far end (browser clients); phone lines drop them."""
        ...

    async def hang_up(self) -> None:
        """End the call from our side (after the goodbye has been heard)."""
        ...

    async def transfer(self, number: str) -> None:
        """Hand the call to `number`; raises `TransferUnsupported` where there is no phone."""
        ...
