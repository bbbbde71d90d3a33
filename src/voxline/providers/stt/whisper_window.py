"""Whisper on a shorter encoder window: an utterance padded to N seconds instead of 30.

faster-whisper pads every utterance to Whisper's 30 s window, so a 2 s answer pays the
encoder for 30 s. CTranslate2's Whisper encodes any number of frames up to 3000; this pads to
`window_s` instead (the encoder costs about in proportion) and decodes greedily or by beam as
faster-whisper would. Whisper never saw windows shorter than 30 s in training, and on them it
can loop, repeating a phrase until the token limit: the decoder gets a budget proportional to
the audio's length, and a decode that exhausts it, repeats itself or is not confident is
refused (`None`), so the caller transcribes the padded way instead. On the recognition set
(bench/bench_stt.py) that keeps the word error rate at the padded path's or below.
"""

from __future__ import annotations

import math
import re
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

if TYPE_CHECKING:
    from faster_whisper import WhisperModel
    from faster_whisper.tokenizer import Tokenizer

SAMPLE_RATE = 16000
_FRAMES_PER_S = 100
_MAX_FRAMES = 3000
# Callers say about 3 words (4-5 tokens) a second; digits and spelled letters run higher.
_TOKENS_PER_S = 8
_MIN_TOKENS = 8
_REPEATED_RUN = 3
# A short-window decode less sure than this is redone padded: past it the two disagree most.
_TRUSTED_LOG_PROB = -0.5


class WindowDecoder:
    """Decodes utterances of one loaded model in a short window; thread-safe like the model."""

    def __init__(self, model: WhisperModel, multilingual: bool) -> None:
        self._model = model
        self._multilingual = multilingual
        self._tokenizers: dict[str, tuple[Tokenizer, list[int]]] = {}

    def transcribe(
        self,
        audio: npt.NDArray[np.float32],
        *,
        language: str,
        beam_size: int,
        window_s: int,
        no_speech_threshold: float,
        log_prob_threshold: float,
        compression_ratio_threshold: float,
    ) -> str | None:
        """Blocking: the text of one utterance (16 kHz float32) decoded in a `window_s` window.

        "" when Whisper judges it not speech (faster-whisper's rule); `None` when the decode
        is not to be trusted and the padded path should decide.
        """
        import ctranslate2
        from faster_whisper.transcribe import get_compression_ratio

        features = self._model.feature_extractor(audio)
        frames = min(features.shape[-1], _MAX_FRAMES)
        width = min(_MAX_FRAMES, max(frames, window_s * _FRAMES_PER_S))
        padded = np.zeros((1, features.shape[0], width), dtype=np.float32)
        padded[0, :, :frames] = features[:, :frames]
        encoded = self._model.model.encode(ctranslate2.StorageView.from_array(padded))

        tokenizer, suppressed = self._tokenizer(language)
        prompt = [*tokenizer.sot_sequence, tokenizer.no_timestamps]
        budget = _MIN_TOKENS + math.ceil(_TOKENS_PER_S * audio.size / SAMPLE_RATE)
        result = self._model.model.generate(
            encoded,
            [prompt],
            beam_size=beam_size,
            max_length=len(prompt) + budget,
            return_scores=True,
            return_no_speech_prob=True,
            suppress_blank=True,
            suppress_tokens=suppressed,
        )[0]
        tokens = [token for token in result.sequences_ids[0] if token < tokenizer.eot]
        avg_logprob = result.scores[0] * len(tokens) / (len(tokens) + 1)
        if result.no_speech_prob > no_speech_threshold and avg_logprob < log_prob_threshold:
            return ""
        text = str(tokenizer.decode(tokens)).strip()
        if (
            len(result.sequences_ids[0]) >= budget
            or avg_logprob < _TRUSTED_LOG_PROB
            or get_compression_ratio(text) > compression_ratio_threshold
            or _repeats(text)
        ):
            return None
        return text

    def _tokenizer(self, language: str) -> tuple[Tokenizer, list[int]]:
        if language not in self._tokenizers:
            from faster_whisper.tokenizer import Tokenizer
            from faster_whisper.transcribe import get_suppressed_tokens

            tokenizer = Tokenizer(
                self._model.hf_tokenizer,
                self._multilingual,
                task="transcribe",
                language=language,
            )
            suppressed = list(get_suppressed_tokens(tokenizer, (-1,)) or [])
            self._tokenizers[language] = tokenizer, suppressed
        return self._tokenizers[language]


def _repeats(text: str) -> bool:
    """Whether a run of words occurs twice: how a looping decode shows before it runs away."""
    words = re.findall(r"[a-z0-9']+", text.lower())
    runs = [tuple(words[i : i + _REPEATED_RUN]) for i in range(len(words) - _REPEATED_RUN + 1)]
    return len(runs) != len(set(runs))
