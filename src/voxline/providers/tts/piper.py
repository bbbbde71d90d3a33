"""Offline text-to-speech: Piper (onnxruntime), the bundled en_US-joe-medium voice by default.

piper-tts is GPL-3.0 and therefore an optional extra (`voxline[piper]`): it is imported here
only, and only when a Piper provider is created. Audio comes out at the voice's native rate
(22050 Hz for the bundled voice) one sentence at a time, so the first sentence plays while
the next is synthesized; the runtime resamples.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncGenerator, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from voxline.agent_spec import PiperTts
from voxline.audio.pcm import Pcm16
from voxline.providers.base import (
    ProviderError,
    ProviderUnavailable,
)
from voxline.providers.executor import InferenceExecutor
from voxline.providers.local_models import PIPER_EXTRA, import_optional, models, piper_voice_files
from voxline.providers.streaming import iterate_in_executor

if TYPE_CHECKING:
    from piper import PiperVoice


class LoadedVoice:
    """A loaded Piper voice; `speak` may be called from several threads at once."""

    def __init__(self, voice: PiperVoice) -> None:
        self.voice = voice
        self.sample_rate = int(voice.config.sample_rate)
        self._warm = False

    @classmethod
    def load(cls, onnx: Path, config: Path) -> LoadedVoice:
        """Load (blocking) the voice model `onnx` with its JSON `config`."""
        piper = import_optional("piper", "piper-tts", PIPER_EXTRA)
        try:
            voice = piper.PiperVoice.load(onnx, config_path=config)
        except (ValueError, RuntimeError, OSError, KeyError) as exc:
            raise ProviderUnavailable(f"could not load Piper voice '{onnx}': {exc}") from exc
        return cls(voice)

    def speak(self, text: str, length_scale: float) -> Iterator[Pcm16]:
        """Blocking: PCM16 of `text` at `sample_rate`, one array per sentence."""
        from piper import SynthesisConfig  # installed: this voice was loaded with it

        config = SynthesisConfig(length_scale=length_scale)
        for chunk in self.voice.synthesize(text, syn_config=config):
            yield chunk.audio_int16_array

    def warm_up(self) -> None:
        """Blocking: one synthesis, so the first real clause is not the slow one."""
        if self._warm:
            return
        for _ in self.speak("Hello.", 1.0):
            pass
        self._warm = True


class PiperTextToSpeech:
    """TextToSpeech on a process-wide Piper voice, at the voice's own sample rate."""

    name = "piper"

    def __init__(self, spec: PiperTts, voice: LoadedVoice, executor: InferenceExecutor) -> None:
        self.spec = spec
        self.voice = voice
        self.sample_rate = voice.sample_rate
        self._executor = executor

    @classmethod
    async def create(cls, spec: PiperTts, executor: InferenceExecutor) -> PiperTextToSpeech:
        """Load (once per process) the voice of `spec`."""
        import_optional("piper", "piper-tts", PIPER_EXTRA)
        onnx, config = piper_voice_files(spec.voice)
        voice = await models.get(
            ("piper", str(onnx.resolve())), lambda: LoadedVoice.load(onnx, config), executor
        )
        return cls(spec, voice, executor)

    async def warm_up(self) -> None:
        """Synthesize once per voice, so the first call is as fast as the next."""
        await self._executor.run(self.voice.warm_up)

    async def open(self) -> PiperTtsSession:
        return PiperTtsSession(self.voice, self._executor, self.spec.length_scale)


class PiperTtsSession:
    """One call's synthesizer; stopping the iteration stops synthesis after the current
    sentence."""

    def __init__(
        self, voice: LoadedVoice, executor: InferenceExecutor, length_scale: float
    ) -> None:
        self.sample_rate = voice.sample_rate
        self._voice = voice
        self._executor = executor
        self._length_scale = length_scale
        self._closed = False

    async def synthesize(self, text: str) -> AsyncGenerator[Pcm16, None]:
        """PCM16 of `text` as each sentence is ready; nothing for blank text."""
        if self._closed:
            raise ProviderError("the Piper session is closed")
        if not text.strip():
            return

        def produce() -> Iterator[Pcm16]:
            return self._voice.speak(text, self._length_scale)

        try:
            async with contextlib.aclosing(iterate_in_executor(self._executor, produce)) as audio:
                async for pcm in audio:
                    yield pcm
        except ProviderError:
            raise
        except Exception as exc:
            raise ProviderError(f"Piper synthesis failed: {exc}") from exc

    async def aclose(self) -> None:
        self._closed = True
