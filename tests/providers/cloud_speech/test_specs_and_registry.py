from collections.abc import Iterator

import pytest
from pydantic import ValidationError

from voxline.agent_spec import (
    AgentSpec,
    CartesiaTts,
    DeepgramStt,
    ElevenLabsTts,
    ScriptedLlm,
)
from voxline.providers.base import ProviderUnavailable
from voxline.providers.executor import InferenceExecutor
from voxline.providers.registry import ProviderRegistry
from voxline.providers.stt.deepgram import DeepgramSpeechToText
from voxline.providers.tts.cartesia import CartesiaTextToSpeech
from voxline.providers.tts.elevenlabs import ElevenLabsTextToSpeech


@pytest.fixture
def registry() -> Iterator[ProviderRegistry]:
    executor = InferenceExecutor(threads=1)
    yield ProviderRegistry(executor)
    executor.shutdown()


def test_agent_json_selects_the_cloud_providers_in_camel_case() -> None:
    spec = AgentSpec.model_validate(
        {
            "name": "cloud",
            "stt": {"provider": "deepgram", "endpointingMs": 200},
            "llm": {"provider": "scripted"},
            "tts": {"provider": "cartesia", "voiceId": "voice-1", "apiKeyRef": "team-cartesia"},
        }
    )
    assert isinstance(spec.stt, DeepgramStt) and spec.stt.endpointing_ms == 200
    assert isinstance(spec.tts, CartesiaTts) and spec.tts.credential_name() == "team-cartesia"


def test_each_cloud_spec_names_its_vendor_credential_by_default() -> None:
    names = [
        DeepgramStt().credential_name(),
        CartesiaTts(voice_id="v").credential_name(),
        ElevenLabsTts(voice_id="v").credential_name(),
    ]
    assert names == ["deepgram", "cartesia", "elevenlabs"]


def test_a_base_url_must_be_a_websocket_url() -> None:
    with pytest.raises(ValidationError, match=r"base_?[uU]rl"):
        DeepgramStt(base_url="https://api.deepgram.com")


def test_utterance_end_below_deepgram_minimum_is_rejected() -> None:
    with pytest.raises(ValidationError, match="utterance"):
        DeepgramStt(utterance_end_ms=500)


async def test_registry_builds_deepgram_and_cartesia_with_their_credentials(
    registry: ProviderRegistry,
) -> None:
    spec = AgentSpec(
        name="cloud", stt=DeepgramStt(), llm=ScriptedLlm(), tts=CartesiaTts(voice_id="v")
    )
    providers = await registry.build(spec, {"deepgram": "dg-key", "cartesia": "ca-key"})
    assert isinstance(providers.stt, DeepgramSpeechToText)
    assert isinstance(providers.tts, CartesiaTextToSpeech)


async def test_registry_builds_elevenlabs(registry: ProviderRegistry) -> None:
    spec = AgentSpec(
        name="cloud", stt=DeepgramStt(), llm=ScriptedLlm(), tts=ElevenLabsTts(voice_id="v")
    )
    providers = await registry.build(spec, {"deepgram": "dg-key", "elevenlabs": "xi-key"})
    assert isinstance(providers.tts, ElevenLabsTextToSpeech)


async def test_a_missing_key_says_which_setting_provides_it(registry: ProviderRegistry) -> None:
    spec = AgentSpec(
        name="cloud", stt=DeepgramStt(), llm=ScriptedLlm(), tts=CartesiaTts(voice_id="v")
    )
    with pytest.raises(ProviderUnavailable, match="VOXLINE_DEEPGRAM_API_KEY"):
        await registry.build(spec, {"cartesia": "ca-key"})
