import asyncio
import os
import subprocess
import sys
import textwrap
import types
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

import pytest
from pydantic import BaseModel

import voxline
from voxline.agent_spec import (
    AgentSpec,
    LlamaCppLlm,
    PiperTts,
    ScriptedLlm,
    ScriptedStt,
    ScriptedTts,
    WhisperStt,
)
from voxline.calls.credentials import credential_names, server_credentials
from voxline.config import Settings
from voxline.providers.base import ProviderUnavailable, SpeechToText, TextToSpeech
from voxline.providers.catalog import CATALOG
from voxline.providers.executor import InferenceExecutor
from voxline.providers.registry import ProviderRegistry
from voxline.providers.scripted import (
    ScriptedLanguageModel,
    ScriptedSpeechToText,
    ScriptedTextToSpeech,
)
from voxline.providers.vendor import BuildContext, Vendor


def scripted_agent(transcript: str = "hello", language: str = "en") -> AgentSpec:
    return AgentSpec(
        name="test",
        language=language,
        stt=ScriptedStt(transcripts=[transcript]),
        llm=ScriptedLlm(),
        tts=ScriptedTts(),
    )


@pytest.fixture
async def executor() -> AsyncIterator[InferenceExecutor]:
    executor = InferenceExecutor(threads=1)
    yield executor
    executor.shutdown()


@pytest.fixture
async def registry(executor: InferenceExecutor) -> ProviderRegistry:
    return ProviderRegistry(executor)


def scripted_stt_by(executor: InferenceExecutor, factory: object) -> ProviderRegistry:
    """A registry whose scripted recognizer is built by `factory`."""
    catalog = CATALOG.with_vendor(Vendor("stt", ScriptedStt, factory))  # type: ignore[arg-type]
    return ProviderRegistry(executor, catalog=catalog)


class WarmableStt(ScriptedSpeechToText):
    def __init__(self, spec: ScriptedStt) -> None:
        super().__init__(spec)
        self.warm_ups = 0

    async def warm_up(self) -> None:
        self.warm_ups += 1


async def test_scripted_spec_builds_scripted_providers(registry: ProviderRegistry) -> None:
    providers = await registry.build(scripted_agent())
    assert isinstance(providers.stt, ScriptedSpeechToText)
    assert isinstance(providers.llm, ScriptedLanguageModel)
    assert isinstance(providers.tts, ScriptedTextToSpeech)


async def test_same_spec_reuses_the_same_providers(registry: ProviderRegistry) -> None:
    first = await registry.build(scripted_agent())
    second = await registry.build(scripted_agent())
    assert first.stt is second.stt
    assert first.llm is second.llm
    assert first.tts is second.tts


async def test_different_provider_specs_get_different_providers(
    registry: ProviderRegistry,
) -> None:
    first = await registry.build(scripted_agent("one"))
    second = await registry.build(scripted_agent("two"))
    assert first.stt is not second.stt
    assert first.llm is second.llm


async def test_language_is_part_of_the_cache_key(registry: ProviderRegistry) -> None:
    english = await registry.build(scripted_agent(language="en"))
    german = await registry.build(scripted_agent(language="de"))
    assert english.stt is not german.stt


async def test_local_factory_passes_spec_executor_and_language(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    created: list[tuple[WhisperStt, InferenceExecutor, str]] = []

    class FakeWhisper(ScriptedSpeechToText):
        @classmethod
        async def create(
            cls, spec: WhisperStt, executor: InferenceExecutor, *, language: str
        ) -> "FakeWhisper":
            created.append((spec, executor, language))
            return cls(ScriptedStt())

    module = types.ModuleType("voxline.providers.stt.whisper")
    module.WhisperSpeechToText = FakeWhisper  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "voxline.providers.stt.whisper", module)
    executor = InferenceExecutor(threads=1)
    spec = scripted_agent(language="en-GB").model_copy(update={"stt": WhisperStt()})
    providers = await ProviderRegistry(executor).build(spec)
    executor.shutdown()
    assert isinstance(providers.stt, FakeWhisper)
    assert created == [(WhisperStt(), executor, "en-GB")]


async def test_concurrent_builds_create_each_provider_once(executor: InferenceExecutor) -> None:
    created = 0

    async def slow_factory(spec: ScriptedStt, context: BuildContext) -> SpeechToText:
        nonlocal created
        created += 1
        await asyncio.sleep(0.01)
        return ScriptedSpeechToText(spec)

    registry = scripted_stt_by(executor, slow_factory)
    results = await asyncio.gather(*(registry.build(scripted_agent()) for _ in range(20)))
    assert created == 1
    assert len({id(providers.stt) for providers in results}) == 1


@pytest.mark.parametrize(
    ("module", "part", "package"),
    [
        ("voxline.providers.stt.whisper", {"stt": WhisperStt()}, "faster-whisper"),
        ("voxline.providers.llm.llama_cpp", {"llm": LlamaCppLlm()}, "llama-cpp-python"),
        ("voxline.providers.tts.piper", {"tts": PiperTts()}, "piper-tts"),
    ],
)
async def test_missing_local_package_is_unavailable_naming_it(
    registry: ProviderRegistry,
    monkeypatch: pytest.MonkeyPatch,
    module: str,
    part: dict[str, object],
    package: str,
) -> None:
    monkeypatch.setitem(sys.modules, module, None)  # makes the import fail
    spec = scripted_agent().model_copy(update=part)
    with pytest.raises(ProviderUnavailable, match=package):
        await registry.build(spec)


async def test_every_missing_provider_is_named_in_one_error(
    registry: ProviderRegistry, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "voxline.providers.stt.whisper", None)
    monkeypatch.setitem(sys.modules, "voxline.providers.tts.piper", None)
    spec = scripted_agent().model_copy(update={"stt": WhisperStt(), "tts": PiperTts()})
    with pytest.raises(ProviderUnavailable) as error:
        await registry.build(spec)
    assert "faster-whisper" in str(error.value)
    assert "piper-tts" in str(error.value)


async def test_failing_factory_is_unavailable_and_retried_on_the_next_build(
    executor: InferenceExecutor,
) -> None:
    attempts = 0

    async def flaky_factory(spec: ScriptedStt, context: BuildContext) -> SpeechToText:
        nonlocal attempts
        attempts += 1
        if attempts == 1:
            raise OSError("model file is still downloading")
        return ScriptedSpeechToText(spec)

    registry = scripted_stt_by(executor, flaky_factory)
    with pytest.raises(ProviderUnavailable, match="still downloading"):
        await registry.build(scripted_agent())
    providers = await registry.build(scripted_agent())
    assert isinstance(providers.stt, ScriptedSpeechToText)


async def test_spec_without_a_registered_factory_is_unavailable(
    executor: InferenceExecutor,
) -> None:
    registry = ProviderRegistry(executor, catalog=CATALOG.without(ScriptedStt))
    with pytest.raises(ProviderUnavailable, match="no provider is registered for ScriptedStt"):
        await registry.build(scripted_agent())


async def test_warm_up_warms_each_provider_once(executor: InferenceExecutor) -> None:
    async def factory(spec: ScriptedStt, context: BuildContext) -> SpeechToText:
        return WarmableStt(spec)

    registry = scripted_stt_by(executor, factory)
    await registry.warm_up(scripted_agent())
    await registry.warm_up(scripted_agent())
    stt = (await registry.build(scripted_agent())).stt
    assert isinstance(stt, WarmableStt)
    assert stt.warm_ups == 1


async def test_warm_up_failure_is_unavailable(executor: InferenceExecutor) -> None:
    class BrokenStt(ScriptedSpeechToText):
        async def warm_up(self) -> None:
            raise RuntimeError("onnx session failed")

    async def factory(spec: ScriptedStt, context: BuildContext) -> SpeechToText:
        return BrokenStt(spec)

    registry = scripted_stt_by(executor, factory)
    with pytest.raises(ProviderUnavailable, match="onnx session failed"):
        await registry.warm_up(scripted_agent())


def test_scripted_agents_never_import_model_engines() -> None:
    script = textwrap.dedent(
        """
        import asyncio, sys
        from voxline.agent_spec import AgentSpec, ScriptedLlm, ScriptedStt, ScriptedTts
        from voxline.providers.executor import InferenceExecutor
        from voxline.providers.registry import ProviderRegistry

        spec = AgentSpec(name="t", stt=ScriptedStt(), llm=ScriptedLlm(), tts=ScriptedTts())
        asyncio.run(ProviderRegistry(InferenceExecutor(1)).build(spec))
        engines = {"torch", "faster_whisper", "ctranslate2", "llama_cpp", "piper", "onnxruntime"}
        print(sorted(engines & set(sys.modules)))
        """
    )
    # The child must find this very package, however the test run put it on the path.
    source_root = str(Path(voxline.__file__).resolve().parents[1])
    env = {**os.environ, "PYTHONPATH": source_root}
    result = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
        env=env,
    )
    assert result.stdout.strip() == "[]"


async def test_a_new_vendor_is_built_through_its_descriptor_alone(
    executor: InferenceExecutor, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A hypothetical TTS vendor: its spec, its factory and its descriptor are all it takes
    for the registry to build it and for the server to read and guard its key."""

    class ChimeTts(BaseModel):
        provider: Literal["chime"] = "chime"
        base_url: str = "https://api.chime.example"

        def credential_name(self) -> str:
            return "chime"

    async def chime(spec: ChimeTts, context: BuildContext) -> TextToSpeech:
        assert context.credential(spec.credential_name(), spec.base_url) == "sk-chime"
        return ScriptedTextToSpeech(ScriptedTts())

    vendor = Vendor("tts", ChimeTts, chime, credential="chime", host="api.chime.example")
    catalog = CATALOG.with_vendor(vendor)
    monkeypatch.setattr("voxline.providers.catalog.CATALOG", catalog)
    monkeypatch.setenv("VOXLINE_CHIME_API_KEY", "sk-chime")
    settings = Settings(_env_file=None)  # type: ignore[call-arg]
    server_keys = server_credentials(settings)
    spec = scripted_agent().model_copy(update={"tts": ChimeTts()})
    assert credential_names(spec) == {"chime"}
    registry = ProviderRegistry(executor, catalog=catalog)
    providers = await registry.build(spec, server_keys)
    assert isinstance(providers.tts, ScriptedTextToSpeech)
    elsewhere = spec.model_copy(update={"tts": ChimeTts(base_url="https://proxy.example")})
    with pytest.raises(ProviderUnavailable, match=r"only sent to api\.chime\.example"):
        await ProviderRegistry(executor, catalog=catalog).build(elsewhere, server_keys)


def test_each_vendor_host_is_its_specs_default_endpoint() -> None:
    for vendor in CATALOG:
        if vendor.host is None:
            continue
        default = vendor.spec.model_fields["base_url"].default
        assert urlsplit(default).hostname == vendor.host, vendor.provider


def test_every_provider_slot_is_listed_fallbacks_included() -> None:
    spec = scripted_agent().model_copy(
        update={"stt_fallbacks": [ScriptedStt()], "tts_fallbacks": [ScriptedTts(), ScriptedTts()]}
    )
    slots = [(slot.role, slot.position) for slot in spec.provider_slots()]
    assert slots == [("stt", 0), ("stt", 1), ("llm", 0), ("tts", 0), ("tts", 1), ("tts", 2)]
