"""The vendors voxline ships: one descriptor each (see `voxline.providers.vendor`).

Factories import their engine only when called, so a server running scripted agents never
imports llama.cpp, Piper or a cloud client it does not use.
"""

from __future__ import annotations

from voxline.agent_spec import (
    AnthropicLlm,
    CartesiaTts,
    DeepgramStt,
    ElevenLabsTts,
    LlamaCppLlm,
    OpenAiLlm,
    PiperTts,
    ScriptedLlm,
    ScriptedStt,
    ScriptedTts,
    WhisperStt,
)
from voxline.providers.base import (
    LanguageModel,
    ProviderUnavailable,
    SpeechToText,
    TextToSpeech,
)
from voxline.providers.scripted import (
    ScriptedLanguageModel,
    ScriptedSpeechToText,
    ScriptedTextToSpeech,
)
from voxline.providers.vendor import BuildContext, Catalog, Vendor

_LOCAL_HINT = "pip install 'voxline[local]'"
_PIPER_HINT = "pip install 'voxline[piper]'"


def _missing(provider: str, package: str, hint: str, exc: ImportError) -> ProviderUnavailable:
    return ProviderUnavailable(
        f"the {provider!r} provider needs the {package!r} package ({hint}): {exc}"
    )


# --- speech to text -------------------------------------------------------------------------


async def _scripted_stt(spec: ScriptedStt, context: BuildContext) -> SpeechToText:
    return ScriptedSpeechToText(spec)


async def _whisper(spec: WhisperStt, context: BuildContext) -> SpeechToText:
    try:
        from voxline.providers.stt.whisper import WhisperSpeechToText
    except ImportError as exc:
        raise _missing("whisper", "faster-whisper", _LOCAL_HINT, exc) from exc
    return await WhisperSpeechToText.create(spec, context.executor, language=context.language)


async def _deepgram(spec: DeepgramStt, context: BuildContext) -> SpeechToText:
    from voxline.providers.stt.deepgram import DeepgramSpeechToText

    api_key = context.credential(spec.credential_name(), spec.base_url)
    return DeepgramSpeechToText(spec, api_key, language=context.language)


# --- language models ------------------------------------------------------------------------


async def _scripted_llm(spec: ScriptedLlm, context: BuildContext) -> LanguageModel:
    return ScriptedLanguageModel(spec)


async def _llama_cpp(spec: LlamaCppLlm, context: BuildContext) -> LanguageModel:
    try:
        from voxline.providers.llm.llama_cpp import LlamaCppLanguageModel
    except ImportError as exc:
        raise _missing("llama_cpp", "llama-cpp-python", _LOCAL_HINT, exc) from exc
    return await LlamaCppLanguageModel.create(spec, context.executor, cache_dir=context.model_dir)


async def _openai(spec: OpenAiLlm, context: BuildContext) -> LanguageModel:
    from voxline.providers.llm.openai import OpenAiLanguageModel

    return OpenAiLanguageModel(spec, context.credential(spec.credential_name(), spec.base_url))


async def _anthropic(spec: AnthropicLlm, context: BuildContext) -> LanguageModel:
    from voxline.providers.llm.anthropic import AnthropicLanguageModel

    api_key = context.credential(spec.credential_name(), spec.base_url)
    return AnthropicLanguageModel(spec, api_key)


# --- text to speech -------------------------------------------------------------------------


async def _scripted_tts(spec: ScriptedTts, context: BuildContext) -> TextToSpeech:
    return ScriptedTextToSpeech(spec)


async def _piper(spec: PiperTts, context: BuildContext) -> TextToSpeech:
    try:
        from voxline.providers.tts.piper import PiperTextToSpeech
    except ImportError as exc:
        raise _missing("piper", "piper-tts", _PIPER_HINT, exc) from exc
    return await PiperTextToSpeech.create(spec, context.executor)


async def _cartesia(spec: CartesiaTts, context: BuildContext) -> TextToSpeech:
    from voxline.providers.tts.cartesia import CartesiaTextToSpeech

    api_key = context.credential(spec.credential_name(), spec.base_url)
    return CartesiaTextToSpeech(spec, api_key, language=context.language)


async def _elevenlabs(spec: ElevenLabsTts, context: BuildContext) -> TextToSpeech:
    from voxline.providers.tts.elevenlabs import ElevenLabsTextToSpeech

    api_key = context.credential(spec.credential_name(), spec.base_url)
    return ElevenLabsTextToSpeech(spec, api_key)


BUILT_IN: tuple[Vendor, ...] = (
    Vendor("stt", ScriptedStt, _scripted_stt),
    Vendor("stt", WhisperStt, _whisper),
    Vendor("stt", DeepgramStt, _deepgram, credential="deepgram", host="api.deepgram.com"),
    Vendor("llm", ScriptedLlm, _scripted_llm),
    Vendor("llm", LlamaCppLlm, _llama_cpp),
    Vendor("llm", OpenAiLlm, _openai, credential="openai", host="api.openai.com"),
    Vendor("llm", AnthropicLlm, _anthropic, credential="anthropic", host="api.anthropic.com"),
    Vendor("tts", ScriptedTts, _scripted_tts),
    Vendor("tts", PiperTts, _piper),
    Vendor("tts", CartesiaTts, _cartesia, credential="cartesia", host="api.cartesia.ai"),
    Vendor("tts", ElevenLabsTts, _elevenlabs, credential="elevenlabs", host="api.elevenlabs.io"),
)

CATALOG = Catalog(BUILT_IN)
"""Every vendor this process knows; `register` adds one (a plug-in, a test fake)."""
