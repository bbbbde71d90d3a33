"""Builds each call's providers from its agent spec, sharing one provider object per spec.

A provider object (loaded models, connection pools) is made once per distinct provider spec
per process, keyed by the spec's JSON and the agent's language, and shared by every call that
uses it; concurrent first requests wait on one build. Which factory builds a spec is the
vendor catalog's knowledge (`voxline.providers.catalog`); this module only builds, caches and
chains. A provider that authenticates is also keyed by (a hash of) the credential it was built
with, so a rotated key gets a new provider. A server-level key (`Credential` of scope SERVER,
from the environment) is only ever sent to its own vendor's API; a workspace's secrets go
wherever its agents point. A role with fallbacks (`stt_fallbacks`, ...) gets a
`FallbackSpeechToText` (`FallbackLanguageModel`, `FallbackTextToSpeech`) over the providers
of its chain.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol, TypeVar, cast, runtime_checkable

from pydantic import BaseModel

from voxline.agent_spec import ROLES, AgentSpec, Role
from voxline.providers.base import (
    LanguageModel,
    ProviderSet,
    ProviderUnavailable,
    SpeechToText,
    TextToSpeech,
)
from voxline.providers.catalog import CATALOG
from voxline.providers.executor import InferenceExecutor
from voxline.providers.fallback import FallbackLanguageModel, FallbackTextToSpeech
from voxline.providers.fallback_stt import FallbackSpeechToText
from voxline.providers.vendor import BuildContext, Catalog, Credential, CredentialScope

logger = logging.getLogger(__name__)

T = TypeVar("T")


@runtime_checkable
class UsesCredential(Protocol):
    """A provider spec that authenticates: `credential_name()` is the credential it uses."""

    def credential_name(self) -> str | None: ...


@runtime_checkable
class WarmsUp(Protocol):
    """A provider that can load and exercise its model ahead of the first call."""

    async def warm_up(self) -> None: ...


@runtime_checkable
class StallsAfter(Protocol):
    """A recognizer spec that says how long its finalize may take in a fallback chain."""

    def stall_timeout_s(self) -> float: ...


Credentials = Mapping[str, Credential | str]


class ProviderRegistry:
    """The process's providers. `build` is called per call and is a few dict look-ups once
    the providers exist; `warm_up` loads and exercises the models a spec uses, at start-up.
    `catalog` (the built-in vendors by default) says which factory builds each spec."""

    def __init__(
        self,
        executor: InferenceExecutor,
        model_dir: Path | None = None,
        *,
        catalog: Catalog = CATALOG,
    ) -> None:
        self._executor = executor
        self._model_dir = model_dir
        self._catalog = catalog
        self._providers = _Providers(catalog)

    async def build(self, spec: AgentSpec, credentials: Credentials | None = None) -> ProviderSet:
        """The agent's three providers, the missing ones built concurrently, authenticating
        with `credentials` (by name; a bare string is a secret the caller supplies, sent
        wherever the spec says, like a workspace's).

        Raises ProviderUnavailable naming what is missing (every failure, in one message)."""
        context = self._context(spec.language, credentials)
        stt, llm, tts = await asyncio.gather(
            *(self._providers.chain(role, spec.chain(role), context) for role in ROLES),
            return_exceptions=True,
        )
        failures = [result for result in (stt, llm, tts) if isinstance(result, BaseException)]
        if failures:
            raise _combined(failures)
        return ProviderSet(
            stt=cast(SpeechToText, stt), llm=cast(LanguageModel, llm), tts=cast(TextToSpeech, tts)
        )

    async def language_model(
        self, spec: BaseModel, language: str, credentials: Credentials | None = None
    ) -> LanguageModel:
        """The provider of one LLM spec outside any call (post-call analysis), shared with
        the calls that use the same spec; ProviderUnavailable as `build`."""
        context = self._context(language, credentials)
        return cast(LanguageModel, await self._providers.get(spec, context))

    async def warm_up(self, spec: AgentSpec, credentials: Credentials | None = None) -> None:
        """Build the agent's providers and warm each one that can be, once per process."""
        await self.build(spec, credentials)
        context = self._context(spec.language, credentials)
        for role in ROLES:
            await self._providers.warm_up_chain(spec.chain(role), context)

    async def aclose(self) -> None:
        """Close every provider that holds connections (at shutdown)."""
        await self._providers.aclose()

    def _context(self, language: str, credentials: Credentials | None) -> BuildContext:
        resolved = {
            name: value
            if isinstance(value, Credential)
            else Credential(value, CredentialScope.WORKSPACE)
            for name, value in (credentials or {}).items()
        }
        return BuildContext(
            self._executor, language, self._model_dir, resolved, catalog=self._catalog
        )


class _Providers:
    """The process's provider objects, one per distinct spec and language, each built (and
    warmed) at most once even when many calls ask at the same time."""

    def __init__(self, catalog: Catalog) -> None:
        self._catalog = catalog
        self._built: dict[str, Any] = {}
        self._warmed: set[str] = set()
        self._locks: dict[str, asyncio.Lock] = {}

    async def get(self, part: BaseModel, context: BuildContext) -> Any:
        key = _key(part, context)
        provider = self._built.get(key)
        if provider is not None:
            return provider
        async with self._locks.setdefault(key, asyncio.Lock()):
            provider = self._built.get(key)
            if provider is None:
                factory = self._catalog.vendor_of(part).factory
                provider = await _unavailable_on_error(
                    "could not be built", part, factory(part, context)
                )
                self._built[key] = provider
            return provider

    async def chain(self, role: Role, parts: Sequence[BaseModel], context: BuildContext) -> Any:
        """The provider of `parts[0]` or, with fallbacks, the role's fallback wrapper over
        those of `parts` that can be built (the others are logged and left out;
        ProviderUnavailable if none can), one alone needing no wrapper."""
        if len(parts) == 1:
            return await self.get(parts[0], context)
        results = await asyncio.gather(
            *(self.get(part, context) for part in parts), return_exceptions=True
        )
        built: list[tuple[BaseModel, Any]] = []
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
        return built[0][1] if len(built) == 1 else _FALLBACKS[role](built)

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


def _stt_fallback(built: list[tuple[BaseModel, Any]]) -> SpeechToText:
    timeouts = [_stall_timeout_s(part) for part, _ in built]
    return FallbackSpeechToText([stt for _, stt in built], timeouts)


def _stall_timeout_s(part: BaseModel) -> float:
    """How long a recognizer of a fallback chain may take to finalize before it is abandoned."""
    if isinstance(part, StallsAfter):
        return part.stall_timeout_s()
    raise ProviderUnavailable(f"{type(part).__name__} cannot be part of a fallback chain")


def _llm_fallback(built: list[tuple[BaseModel, Any]]) -> LanguageModel:
    return FallbackLanguageModel([llm for _, llm in built])


def _tts_fallback(built: list[tuple[BaseModel, Any]]) -> TextToSpeech:
    return FallbackTextToSpeech([tts for _, tts in built])


_FALLBACKS: dict[Role, Callable[[list[tuple[BaseModel, Any]]], Any]] = {
    "stt": _stt_fallback,
    "llm": _llm_fallback,
    "tts": _tts_fallback,
}


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
