"""Offline speech-to-text: Whisper through faster-whisper (CTranslate2), the bundled tiny.en.

A batch recognizer: a session buffers one utterance (the runtime segments speech) and
transcribes it when finalized, on the InferenceExecutor, in a window of `encoder_window_s`
(10 s by default) decoded with `beam_size` beams, or, when that decode is not to be trusted
(`whisper_window.py`), greedily in Whisper's own 30 s window as faster-whisper does; with
`encoder_window_s` 30 only the latter, with `beam_size`. Whisper invents words for silence
and noise, so near-silent segments are not transcribed at all and segments the model itself
scores as probably not speech are dropped. No interim results.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from voxline.agent_spec import WhisperStt
from voxline.audio.pcm import Pcm16
from voxline.providers.base import (
    ProviderError,
    ProviderUnavailable,
    Transcript,
)
from voxline.providers.executor import InferenceExecutor
from voxline.providers.local_models import LOCAL_EXTRA, import_optional, models, whisper_model_dir
from voxline.providers.stt.whisper_window import WindowDecoder

if TYPE_CHECKING:
    from faster_whisper import WhisperModel

logger = logging.getLogger(__name__)

SAMPLE_RATE = 16000
_WHISPER_WINDOW_S = 30
# Whisper reads 30 s windows; longer segments cost several passes and mean segmentation failed.
_MAX_SEGMENT_SAMPLES = 30 * SAMPLE_RATE
_MIN_SEGMENT_SAMPLES = SAMPLE_RATE // 10
_SILENCE_RMS = 10 ** (-55 / 20)  # -55 dBFS: below any speech, above a quiet line's noise
_NO_SPEECH_THRESHOLD = 0.6
_LOG_PROB_THRESHOLD = -1.0
_COMPRESSION_RATIO_THRESHOLD = 2.4  # higher: the repetitive text Whisper hallucinates
_PEEK_TOKENS = 8
"""Tokens a peek may decode: a few words, enough to tell an acknowledgement from a request."""


class LoadedWhisper:
    """A loaded Whisper model; its `transcribe` may be called from several threads at once."""

    def __init__(self, model: WhisperModel, multilingual: bool) -> None:
        self.model = model
        self.multilingual = multilingual
        self._window = WindowDecoder(model, multilingual)
        self._warm = False
        self._prompts: dict[str, list[int]] = {}

    @classmethod
    def load(cls, model_dir: Path, compute_type: str, threads: int) -> LoadedWhisper:
        """Load (blocking) with `threads` CPU threads and as many concurrent workers."""
        faster_whisper = import_optional("faster_whisper", "faster-whisper", LOCAL_EXTRA)
        try:
            model = faster_whisper.WhisperModel(
                str(model_dir),
                device="cpu",
                compute_type=compute_type,
                cpu_threads=threads,
                num_workers=threads,
            )
        except (ValueError, RuntimeError, OSError) as exc:
            raise ProviderUnavailable(f"could not load Whisper model '{model_dir}': {exc}") from exc
        return cls(model, bool(model.model.is_multilingual))

    def transcribe(
        self,
        audio: npt.NDArray[np.float32],
        language: str,
        beam_size: int,
        window_s: int = _WHISPER_WINDOW_S,
    ) -> str:
        """Blocking: the text of one utterance (float32 at 16 kHz), "" when it is not speech,
        encoded in a `window_s` window if that decode is trusted, else in Whisper's 30 s:
        greedily, when it redoes a refused window decode (the beams buy accuracy in the
        window; in 30 s they would only add to the slowest decodes)."""
        if window_s < _WHISPER_WINDOW_S:
            text = self._window.transcribe(
                audio,
                language=language,
                beam_size=beam_size,
                window_s=window_s,
                no_speech_threshold=_NO_SPEECH_THRESHOLD,
                log_prob_threshold=_LOG_PROB_THRESHOLD,
                compression_ratio_threshold=_COMPRESSION_RATIO_THRESHOLD,
            )
            if text is not None:
                return text
        segments, _ = self.model.transcribe(
            audio,
            language=language,
            beam_size=1 if window_s < _WHISPER_WINDOW_S else beam_size,  # see the docstring
            temperature=0.0,
            condition_on_previous_text=False,
            without_timestamps=True,
            vad_filter=False,
            no_speech_threshold=_NO_SPEECH_THRESHOLD,
            log_prob_threshold=_LOG_PROB_THRESHOLD,
            compression_ratio_threshold=_COMPRESSION_RATIO_THRESHOLD,
        )
        texts = [
            segment.text.strip()
            for segment in segments
            if segment.compression_ratio <= _COMPRESSION_RATIO_THRESHOLD
        ]
        return " ".join(text for text in texts if text)

    def peek(self, audio: npt.NDArray[np.float32], language: str) -> str:
        """Blocking: a quick guess at the first words of `audio` (float32 at 16 kHz).

        Only the real frames are encoded (no 30 s padding: a few ms for a second of speech)
        and at most `_PEEK_TOKENS` are decoded greedily. A short encoding makes Whisper
        repeat itself, which is harmless here: the words are for telling a backchannel from
        a barge-in, never for the transcript."""
        ctranslate2 = import_optional("ctranslate2", "ctranslate2", LOCAL_EXTRA)
        features = self.model.feature_extractor(audio, padding=0)
        frames = features.shape[-1] - features.shape[-1] % 2
        if frames < 2:
            return ""
        mel = np.ascontiguousarray(features[None, :, :frames], dtype=np.float32)
        encoded = self.model.model.encode(ctranslate2.StorageView.from_array(mel), to_cpu=False)
        result = self.model.model.generate(
            encoded,
            [self._prompt(language)],
            max_length=_PEEK_TOKENS,
            beam_size=1,
            suppress_blank=True,
        )
        tokens = [t for t in result[0].sequences_ids[0] if t < self._eot]
        return str(self.model.hf_tokenizer.decode(tokens)).strip()

    def _prompt(self, language: str) -> list[int]:
        prompt = self._prompts.get(language)
        if prompt is None:
            tokenizers = import_optional("faster_whisper.tokenizer", "faster-whisper", LOCAL_EXTRA)
            tokenizer: Any = tokenizers.Tokenizer(
                self.model.hf_tokenizer,
                self.multilingual,
                task="transcribe",
                language=language if self.multilingual else None,
            )
            prompt = [*tokenizer.sot_sequence, tokenizer.no_timestamps]
            self._prompts[language] = prompt
        return prompt

    @property
    def _eot(self) -> int:
        return int(self.model.hf_tokenizer.token_to_id("<|endoftext|>"))

    def warm_up(self, language: str, window_s: int = _WHISPER_WINDOW_S, beam_size: int = 1) -> None:
        """Blocking: one transcription, so the first real utterance is not the slow one."""
        if self._warm:
            return
        tone = 0.1 * np.sin(2 * np.pi * 220 * np.arange(SAMPLE_RATE) / SAMPLE_RATE)
        self.transcribe(tone.astype(np.float32), language, beam_size, window_s)
        self._warm = True


class WhisperSpeechToText:
    """SpeechToText on a process-wide Whisper model, at 16 kHz, in the agent's language."""

    name = "whisper"
    sample_rate = SAMPLE_RATE

    def __init__(
        self, spec: WhisperStt, model: LoadedWhisper, executor: InferenceExecutor, language: str
    ) -> None:
        self.spec = spec
        self.model = model
        self.language = language
        self._executor = executor

    @classmethod
    async def create(
        cls, spec: WhisperStt, executor: InferenceExecutor, *, language: str = "en"
    ) -> WhisperSpeechToText:
        """Load (once per process) the model of `spec` for `language` ('en' or 'en-US' style).

        An English-only model with another language is ProviderUnavailable.
        """
        import_optional("faster_whisper", "faster-whisper", LOCAL_EXTRA)
        model_dir = whisper_model_dir(spec.model)
        threads = executor.threads
        key = ("whisper", str(model_dir.resolve()), spec.compute_type, threads)
        model = await models.get(
            key, lambda: LoadedWhisper.load(model_dir, spec.compute_type, threads), executor
        )
        code = language.split("-")[0].lower()
        if code != "en" and not model.multilingual:
            raise ProviderUnavailable(
                f"Whisper model '{spec.model}' is English-only; language '{language}' needs a "
                "multilingual model directory in stt.model"
            )
        return cls(spec, model, executor, code)

    async def warm_up(self) -> None:
        """Run one transcription once per model, so the first call is as fast as the next."""
        await self._executor.run(
            self.model.warm_up, self.language, self.spec.encoder_window_s, self.spec.beam_size
        )

    async def open(self) -> WhisperSttSession:
        return WhisperSttSession(
            self.model,
            self._executor,
            self.language,
            self.spec.beam_size,
            self.spec.encoder_window_s,
        )


class WhisperSttSession:
    """One call's recognizer. `finalize` transcribes the audio sent since the last finalize;
    audio sent while a finalize is pending belongs to the next segment."""

    def __init__(
        self,
        model: LoadedWhisper,
        executor: InferenceExecutor,
        language: str,
        beam_size: int,
        window_s: int,
    ) -> None:
        self._model = model
        self._executor = executor
        self._language = language
        self._beam_size = beam_size
        self._window_s = window_s
        self._chunks: list[Pcm16] = []
        self._buffered = 0
        self._closed = False

    async def send(self, pcm: Pcm16) -> None:
        """Buffer mono int16 PCM at 16 kHz; past 30 s only the latest 30 s are kept."""
        self._check_open()
        if pcm.dtype != np.int16 or pcm.ndim != 1:
            raise ValueError(f"expected mono int16 PCM, got {pcm.dtype} of shape {pcm.shape}")
        self._chunks.append(pcm.copy())
        self._buffered += pcm.size
        while self._buffered - self._chunks[0].size >= _MAX_SEGMENT_SAMPLES:
            self._buffered -= self._chunks.pop(0).size

    async def finalize(self) -> str:
        """The text of the buffered segment ("" for silence or noise); clears the buffer."""
        self._check_open()
        chunks, self._chunks, self._buffered = self._chunks, [], 0
        if not chunks:
            return ""
        audio = np.concatenate(chunks).astype(np.float32) / 32768.0
        if audio.size < _MIN_SEGMENT_SAMPLES or _rms(audio) < _SILENCE_RMS:
            return ""
        try:
            return await self._executor.run(
                self._model.transcribe, audio, self._language, self._beam_size, self._window_s
            )
        except Exception as exc:
            raise ProviderError(f"Whisper transcription failed: {exc}") from exc

    async def peek(self) -> str:
        """A quick guess at the words of the segment so far (see `LoadedWhisper.peek`)."""
        self._check_open()
        if not self._chunks:
            return ""
        audio = np.concatenate(self._chunks).astype(np.float32) / 32768.0
        if audio.size < _MIN_SEGMENT_SAMPLES or _rms(audio) < _SILENCE_RMS:
            return ""
        try:
            return await self._executor.run_urgent(self._model.peek, audio, self._language)
        except Exception as exc:
            raise ProviderError(f"Whisper peek failed: {exc}") from exc

    async def interim(self) -> AsyncIterator[Transcript]:
        """Whisper transcribes whole utterances: no interim results, this ends at once."""
        return
        yield  # makes this an (empty) async generator

    async def aclose(self) -> None:
        self._closed = True
        self._chunks, self._buffered = [], 0

    def _check_open(self) -> None:
        if self._closed:
            raise ProviderError("the Whisper session is closed")


def _rms(audio: npt.NDArray[np.float32]) -> float:
    return float(np.sqrt(np.mean(np.square(audio, dtype=np.float64))))
