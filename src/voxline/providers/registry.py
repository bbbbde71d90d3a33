"""Builds each call's providers from its agent spec, sharing one provider object per spec.

A provider object (loaded models, connection pools) is made once per distinct provider spec
per process, keyed by the spec's JSON and the agent's language, and shared by every call that
uses it; concurrent first requests wait on one build. Local engines are imported only when a
spec asks for them, so a server running scripted agents never imports torch, llama.cpp or Piper.

Adding a provider is one entry in `STT_FACTORIES`, `LLM_FACTORIES` or `TTS_FACTORIES`.
A provider that authenticates is also keyed by (a hash of) the credential it was built
with, so a rotated key gets a new provider. A server-level key (`Credential` of scope SERVER,
from the environment) is only ever sent to its own vendor's API; a workspace's secrets go
wherever its agents point. An agent with `stt_fallbacks` (`llm_fallbacks`, `tts_fallbacks`)
gets a `FallbackSpeechToText` (`FallbackLanguageModel`, `FallbackTextToSpeech`) over the
providers of its chain.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any, Generic, Protocol, TypeVar, cast, runtime_checkable
from urllib.parse import urlsplit

from pydantic import BaseModel

from voxline.agent_spec import (
    AgentSpec,
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
    ProviderSet,
    ProviderUnavailable,
    SpeechToText,
    TextToSpeech,
)
from voxline.providers.executor import InferenceExecutor
from voxline.providers.fallback import (
    FallbackLanguageModel,
    FallbackSpeechToText,
    FallbackTextToSpeech,
)
from voxline.providers.scripted import (
    ScriptedLanguageModel,
    ScriptedSpeechToText,
    ScriptedTextToSpeech,
)

logger = logging.getLogger(__name__)

P = TypeVar("P")
T = TypeVar("T")

# Credentials the server reads from its environment, by name.
_CREDENTIAL_ENV_VARS = {
    name: f"VOXLINE_{name.upper()}_API_KEY"
    for name in ("openai", "anthropic", "deepgram", "cartesia", "elevenlabs")
}


def _default_host(spec: type[BaseModel]) -> str:
    default: str = spec.model_fields["base_url"].default
    host = urlsplit(default).hostname
    if host is None:
        raise RuntimeError(f"{spec.__name__} has no default host")
    return host


# The one API each server-level key may be sent to: its vendor's own (the specs' defaults).
_VENDOR_HOSTS = {
    "openai": _default_host(OpenAiLlm),
    "anthropic": _default_host(AnthropicLlm),
    "deepgram": _default_host(DeepgramStt),
    "cartesia": _default_host(CartesiaTts),
    "elevenlabs": _default_host(ElevenLabsTts),
}
_SECURE_SCHEMES = frozenset({"https", "wss"})


class CredentialScope(StrEnum):
    SERVER = "server"
    """The operator's key (environment): sent only to its vendor's own API."""
    WORKSPACE = "workspace"
    """A workspace's own secret: sent to whatever endpoint the workspace's agent names."""


@dataclass(frozen=True, slots=True)
class Credential:
    """A secret value and where it came from, which decides where it may be sent."""

    value: str = field(repr=False)
    scope: CredentialScope


@dataclass(frozen=True, slots=True)
class BuildContext:
    """What a factory gets besides its spec: the shared inference pool and the agent's
    language (part of the cache key, since a recognizer is built for one language)."""

    executor: InferenceExecutor
    language: str
    model_dir: Path | None = None
    """Where assembled model files are cached (the data directory's `models/`)."""
    credentials: Mapping[str, Credential] = field(default_factory=dict)
    """Secrets by name: the server's keys ('openai', ...) overlaid by the workspace's."""

    def credential(self, name: str | None, endpoint: str) -> str | None:
        """The secret called `name` (None for None) for a provider sending it to `endpoint`.

        ProviderUnavailable if there is none, or if it is a server key and `endpoint` is not
        its vendor's own API (a custom endpoint needs a workspace secret)."""
        if name is None:
            return None
        credential = self.credentials.get(name)
        if credential is None or not credential.value:
            env_var = _CREDENTIAL_ENV_VARS.get(name)
            where = f"set {env_var} or add" if env_var else "add"
            raise ProviderUnavailable(
                f"no credential named {name!r} is configured: {where} a workspace secret {name!r}"
            )
        if credential.scope is CredentialScope.SERVER:
            _check_server_endpoint(name, endpoint)
        return credential.value


def _check_server_endpoint(name: str, endpoint: str) -> None:
    host = _VENDOR_HOSTS.get(name)
    parts = urlsplit(endpoint)
    if host is not None and parts.scheme in _SECURE_SCHEMES and parts.hostname == host:
        return
    raise ProviderUnavailable(
        f"credential {name!r} is the server's, and server credentials are only sent to "
        f"{host or 'their vendor'}; store a workspace secret {name!r} for custom endpoints "
        f"(this agent sends it to {parts.hostname or endpoint!r})"
    )


@runtime_checkable
class UsesCredential(Protocol):
    """A provider spec that authenticates: `credential_name()` is the credential it uses."""

    def credential_name(self) -> str | None: ...


Factory = Callable[[Any, BuildContext], Awaitable[P]]
Credentials = Mapping[str, Credential | str]

_LOCAL_HINT = "pip install 'voxline[local]'"
_PIPER_HINT = "pip install 'voxline[piper]'"


@runtime_checkable
class WarmsUp(Protocol):
    """A provider that can load and exercise its model ahead of the first call."""

    async def warm_up(self) -> None: ...


async def _scripted_stt(spec: ScriptedStt, context: BuildContext) -> SpeechToText:
    return ScriptedSpeechToText(spec)


async def _scripted_llm(spec: ScriptedLlm, context: BuildContext) -> LanguageModel:
    return ScriptedLanguageModel(spec)


async def _scripted_tts(spec: ScriptedTts, context: BuildContext) -> TextToSpeech:
    return ScriptedTextToSpeech(spec)


async def _whisper(spec: WhisperStt, context: BuildContext) -> SpeechToText:
    try:
        from voxline.providers.stt.whisper import WhisperSpeechToText
    except ImportError as exc:
        raise _missing("whisper", "faster-whisper", _LOCAL_HINT, exc) from exc
    return await WhisperSpeechToText.create(spec, context.executor, language=context.language)


async def _llama_cpp(spec: LlamaCppLlm, context: BuildContext) -> LanguageModel:
    try:
        from voxline.providers.llm.llama_cpp import LlamaCppLanguageModel
    except ImportError as exc:
        raise _missing("llama_cpp", "llama-cpp-python", _LOCAL_HINT, exc) from exc
    return await LlamaCppLanguageModel.create(spec, context.executor, cache_dir=context.model_dir)


async def _piper(spec: PiperTts, context: BuildContext) -> TextToSpeech:
    try:
        from voxline.providers.tts.piper import PiperTextToSpeech
    except ImportError as exc:
        raise _missing("piper", "piper-tts", _PIPER_HINT, exc) from exc
    return await PiperTextToSpeech.create(spec, context.executor)


async def _openai(spec: OpenAiLlm, context: BuildContext) -> LanguageModel:
    from voxline.providers.llm.openai import OpenAiLanguageModel

    return OpenAiLanguageModel(spec, context.credential(spec.credential_name(), spec.base_url))


async def _anthropic(spec: AnthropicLlm, context: BuildContext) -> LanguageModel:
    from voxline.providers.llm.anthropic import AnthropicLanguageModel

    api_key = context.credential(spec.credential_name(), spec.base_url)
    return AnthropicLanguageModel(spec, api_key)


async def _deepgram(spec: DeepgramStt, context: BuildContext) -> SpeechToText:
    from voxline.providers.stt.deepgram import DeepgramSpeechToText

    api_key = context.credential(spec.credential_name(), spec.base_url)
    return DeepgramSpeechToText(spec, api_key, language=context.language)


async def _cartesia(spec: CartesiaTts, context: BuildContext) -> TextToSpeech:
    from voxline.providers.tts.cartesia import CartesiaTextToSpeech

    api_key = context.credential(spec.credential_name(), spec.base_url)
    return CartesiaTextToSpeech(spec, api_key, language=context.language)


async def _elevenlabs(spec: ElevenLabsTts, context: BuildContext) -> TextToSpeech:
    from voxline.providers.tts.elevenlabs import ElevenLabsTextToSpeech

    api_key = context.credential(spec.credential_name(), spec.base_url)
    return ElevenLabsTextToSpeech(spec, api_key)


def _missing(provider: str, package: str, hint: str, exc: ImportError) -> ProviderUnavailable:
    return ProviderUnavailable(
        f"the {provider!r} provider needs the {package!r} package ({hint}): {exc}"
    )


STT_FACTORIES: dict[type[BaseModel], Factory[SpeechToText]] = {
    ScriptedStt: _scripted_stt,
    WhisperStt: _whisper,
    DeepgramStt: _deepgram,
}
LLM_FACTORIES: dict[type[BaseModel], Factory[LanguageModel]] = {
    ScriptedLlm: _scripted_llm,
    LlamaCppLlm: _llama_cpp,
    OpenAiLlm: _openai,
    AnthropicLlm: _anthropic,
}
TTS_FACTORIES: dict[type[BaseModel], Factory[TextToSpeech]] = {
    ScriptedTts: _scripted_tts,
    PiperTts: _piper,
    CartesiaTts: _cartesia,
    ElevenLabsTts: _elevenlabs,
}


class ProviderRegistry:
    """The process's providers. `build` is called per call and is a few dict look-ups once
    the providers exist; `warm_up` loads and exercises the models a spec uses, at start-up."""

    def __init__(self, executor: InferenceExecutor, model_dir: Path | None = None) -> None:
        self._executor = executor
        self._model_dir = model_dir
        self._stt = _Providers(STT_FACTORIES)
        self._llm = _Providers(LLM_FACTORIES)
        self._tts = _Providers(TTS_FACTORIES)

    async def build(self, spec: AgentSpec, credentials: Credentials | None = None) -> ProviderSet:
        """The agent's three providers, the missing ones built concurrently, authenticating
        with `credentials` (by name; a bare string is a secret the caller supplies, sent
        wherever the spec says, like a workspace's).

        Raises ProviderUnavailable naming what is missing (every failure, in one message)."""
        context = self._context(spec, credentials)
        stt, llm, tts = await asyncio.gather(
            self._stt.chain((spec.stt, *spec.stt_fallbacks), context, _stt_fallback),
            self._llm.chain((spec.llm, *spec.llm_fallbacks), context, _llm_fallback),
            self._tts.chain((spec.tts, *spec.tts_fallbacks), context, _tts_fallback),
            return_exceptions=True,
        )
        failures = [result for result in (stt, llm, tts) if isinstance(result, BaseException)]
        if failures:
            raise _combined(failures)
        return ProviderSet(
            stt=cast(SpeechToText, stt), llm=cast(LanguageModel, llm), tts=cast(TextToSpeech, tts)
        )

    async def warm_up(self, spec: AgentSpec, credentials: Credentials | None = None) -> None:
        """Build the agent's providers and warm each one that can be, once per process."""
        await self.build(spec, credentials)
        context = self._context(spec, credentials)
        await self._stt.warm_up_chain((spec.stt, *spec.stt_fallbacks), context)
        await self._llm.warm_up_chain((spec.llm, *spec.llm_fallbacks), context)
        await self._tts.warm_up_chain((spec.tts, *spec.tts_fallbacks), context)

    async def aclose(self) -> None:
        """Close every provider that holds connections (at shutdown)."""
        for providers in (self._stt, self._llm, self._tts):
            await providers.aclose()

    def _context(self, spec: AgentSpec, credentials: Credentials | None) -> BuildContext:
        resolved = {
            name: value
            if isinstance(value, Credential)
            else Credential(value, CredentialScope.WORKSPACE)
            for name, value in (credentials or {}).items()
        }
        return BuildContext(self._executor, spec.language, self._model_dir, resolved)


class _Providers(Generic[P]):
    """One role's providers, one per distinct spec and language, each built (and warmed) at
    most once even when many calls ask at the same time."""

    def __init__(self, factories: Mapping[type[BaseModel], Factory[P]]) -> None:
        self._factories = factories
        self._built: dict[str, P] = {}
        self._warmed: set[str] = set()
        self._locks: dict[str, asyncio.Lock] = {}

    async def get(self, part: BaseModel, context: BuildContext) -> P:
        key = _key(part, context)
        provider = self._built.get(key)
        if provider is not None:
            return provider
        async with self._locks.setdefault(key, asyncio.Lock()):
            provider = self._built.get(key)
            if provider is None:
                provider = await _unavailable_on_error(
                    "could not be built", part, self._factory(part)(part, context)
                )
                self._built[key] = provider
            return provider

    async def chain(
        self,
        parts: Sequence[BaseModel],
        context: BuildContext,
        fallback: Callable[[list[tuple[BaseModel, P]]], P],
    ) -> P:
        """The provider of `parts[0]` or, with fallbacks, `fallback` over those of `parts`
        that can be built, each with its spec (the others are logged and left out;
        ProviderUnavailable if none can), one alone needing no wrapper."""
        if len(parts) == 1:
            return await self.get(parts[0], context)
        results = await asyncio.gather(
            *(self.get(part, context) for part in parts), return_exceptions=True
        )
        built: list[tuple[BaseModel, P]] = []
        failures: list[BaseException] = []
        for part, result in zip(parts, results, strict=True):
            if isinstance(result, ProviderUnavailable):
                provider = getattr(part, "provider", type(part).__name__)
                logger.warning("%r is left out of a fallback chain: %s", provider, result)
                failures.append(result)
            elif isinstance(result, BaseException):
                raise result
            else:
                built.append((part, result))
        if not built:
            raise _combined(failures)
        return built[0][1] if len(built) == 1 else fallback(built)

    async def warm_up_chain(self, parts: Sequence[BaseModel], context: BuildContext) -> None:
        """Warm every provider of a chain; one left out of it (see `chain`) is skipped."""
        for part in parts:
            try:
                await self.warm_up(part, context)
            except ProviderUnavailable:
                if len(parts) == 1:
                    raise

    async def warm_up(self, part: BaseModel, context: BuildContext) -> None:
        provider = await self.get(part, context)
        key = _key(part, context)
        async with self._locks[key]:
            if key in self._warmed:
                return
            if isinstance(provider, WarmsUp):
                await _unavailable_on_error("failed to warm up", part, provider.warm_up())
            self._warmed.add(key)

    async def aclose(self) -> None:
        built, self._built = list(self._built.values()), {}
        self._warmed.clear()
        for provider in built:
            close = getattr(provider, "aclose", None)
            if close is not None:
                await close()

    def _factory(self, part: BaseModel) -> Factory[P]:
        factory = self._factories.get(type(part))
        if factory is None:
            raise ProviderUnavailable(f"no provider is registered for {type(part).__name__}")
        return factory


# A Deepgram finalize answers by itself after its own `finalize_timeout_ms` (with the text
# heard so far): the chain only abandons it when even that answer does not come.
_DEEPGRAM_STALL_GRACE_MS = 500


def _stt_fallback(built: list[tuple[BaseModel, SpeechToText]]) -> SpeechToText:
    timeouts = [_finalize_timeout_s(part) for part, _ in built]
    return FallbackSpeechToText([stt for _, stt in built], timeouts)


def _finalize_timeout_s(part: BaseModel) -> float:
    """How long a recognizer of a fallback chain may take to finalize before it is abandoned."""
    if isinstance(part, DeepgramStt):
        return (part.finalize_timeout_ms + _DEEPGRAM_STALL_GRACE_MS) / 1000
    if isinstance(part, WhisperStt | ScriptedStt):
        return part.finalize_timeout_ms / 1000
    raise ProviderUnavailable(f"{type(part).__name__} cannot be part of a fallback chain")


def _llm_fallback(built: list[tuple[BaseModel, LanguageModel]]) -> LanguageModel:
    return FallbackLanguageModel([llm for _, llm in built])


def _tts_fallback(built: list[tuple[BaseModel, TextToSpeech]]) -> TextToSpeech:
    return FallbackTextToSpeech([tts for _, tts in built])


async def _unavailable_on_error(failed: str, part: BaseModel, step: Awaitable[T]) -> T:
    """Await `step`; any failure becomes ProviderUnavailable (already-clear ones pass as is)."""
    try:
        return await step
    except ProviderUnavailable:
        raise
    except Exception as exc:
        provider = getattr(part, "provider", type(part).__name__)
        raise ProviderUnavailable(f"the {provider!r} provider {failed}: {exc}") from exc


def _combined(failures: list[BaseException]) -> BaseException:
    for failure in failures:
        if not isinstance(failure, ProviderUnavailable):
            return failure
    if len(failures) == 1:
        return failures[0]
    return ProviderUnavailable("; ".join(str(failure) for failure in failures))


def _key(part: BaseModel, context: BuildContext) -> str:
    key = f"{type(part).__name__}:{context.language}:{part.model_dump_json()}"
    if isinstance(part, UsesCredential):
        name = part.credential_name()
        credential = context.credentials.get(name) if name else None
        if credential is None or not credential.value:
            return key + ":-"
        # Which key, never the key: a digest tells keys apart without holding them. The scope
        # is part of it so a server key never reuses a provider its endpoint check did not pass.
        digest = hashlib.sha256(credential.value.encode()).hexdigest()[:32]
        key += f":{credential.scope}:{digest}"
    return key
