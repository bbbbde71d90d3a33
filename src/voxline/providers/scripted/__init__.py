"""Deterministic providers for tests, demos and benchmarks: no model, set latencies."""

from voxline.providers.scripted.llm import ScriptedLanguageModel, ScriptedLlmSession
from voxline.providers.scripted.stt import ScriptedSpeechToText, ScriptedSttSession
from voxline.providers.scripted.tts import ScriptedTextToSpeech, ScriptedTtsSession

__all__ = [
    "ScriptedLanguageModel",
    "ScriptedLlmSession",
    "ScriptedSpeechToText",
    "ScriptedSttSession",
    "ScriptedTextToSpeech",
    "ScriptedTtsSession",
]
