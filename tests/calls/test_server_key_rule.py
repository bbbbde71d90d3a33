"""A server-level key (environment) goes only to its vendor's API; workspace secrets go
wherever the workspace's agent points."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.fakes.openai_api import FakeOpenAiApi
from voxline.agent_spec import AgentSpec, DeepgramStt, OpenAiLlm, ScriptedStt, ScriptedTts
from voxline.providers.base import ChatMessage, LlmRequest, ProviderUnavailable
from voxline.providers.executor import InferenceExecutor
from voxline.providers.llm.openai import OpenAiLanguageModel
from voxline.providers.registry import Credential, CredentialScope, ProviderRegistry

# Opens loopback to the egress policy: the fake OpenAI API listens on 127.0.0.1.
pytestmark = pytest.mark.usefixtures("loopback_egress")

KEY = "sk-rule-test-" + "r" * 32
SERVER = Credential(KEY, CredentialScope.SERVER)
WORKSPACE = Credential(KEY, CredentialScope.WORKSPACE)
HELLO = LlmRequest(messages=(ChatMessage(role="user", content="Hi"),))


@pytest.fixture
async def registry() -> AsyncIterator[ProviderRegistry]:
    executor = InferenceExecutor(threads=1)
    registry = ProviderRegistry(executor)
    yield registry
    await registry.aclose()
    executor.shutdown()


@pytest.fixture
async def api() -> AsyncIterator[FakeOpenAiApi]:
    async with FakeOpenAiApi(api_key=KEY) as api:
        yield api


def agent(llm: OpenAiLlm, stt: DeepgramStt | ScriptedStt | None = None) -> AgentSpec:
    return AgentSpec(name="rule", stt=stt or ScriptedStt(), llm=llm, tts=ScriptedTts())


def at(api: FakeOpenAiApi) -> OpenAiLlm:
    return OpenAiLlm(model=api.model, base_url=api.base_url, api_key_ref="openai")


async def test_a_server_key_is_refused_for_a_custom_endpoint(
    registry: ProviderRegistry, api: FakeOpenAiApi
) -> None:
    with pytest.raises(ProviderUnavailable) as caught:
        await registry.build(agent(at(api)), {"openai": SERVER})
    message = str(caught.value)
    assert "server credentials are only sent to api.openai.com" in message
    assert "store a workspace secret 'openai' for custom endpoints" in message
    assert KEY not in message
    assert api.requests == []


async def test_a_workspace_secret_reaches_a_custom_endpoint(
    registry: ProviderRegistry, api: FakeOpenAiApi
) -> None:
    providers = await registry.build(agent(at(api)), {"openai": WORKSPACE})
    async for _ in (await providers.llm.open()).stream(HELLO):
        pass
    assert api.completions()[0].headers["authorization"] == f"Bearer {KEY}"


async def test_a_server_key_is_used_for_its_vendors_own_api(registry: ProviderRegistry) -> None:
    providers = await registry.build(agent(OpenAiLlm(model="gpt-4o-mini")), {"openai": SERVER})
    assert isinstance(providers.llm, OpenAiLanguageModel)


async def test_a_server_key_is_refused_for_its_vendors_host_without_tls(
    registry: ProviderRegistry,
) -> None:
    llm = OpenAiLlm(model="gpt-4o-mini", base_url="http://api.openai.com/v1")
    with pytest.raises(ProviderUnavailable, match=r"only sent to api\.openai\.com"):
        await registry.build(agent(llm), {"openai": SERVER})


async def test_a_server_key_named_by_another_vendors_spec_is_refused(
    registry: ProviderRegistry,
) -> None:
    llm = OpenAiLlm(model="m", base_url="https://api.groq.com/openai/v1", api_key_ref="deepgram")
    with pytest.raises(ProviderUnavailable, match=r"only sent to api\.deepgram\.com"):
        await registry.build(agent(llm), {"deepgram": SERVER})


async def test_a_server_speech_key_is_refused_for_a_custom_websocket_endpoint(
    registry: ProviderRegistry,
) -> None:
    stt = DeepgramStt(base_url="wss://deepgram.example.internal")
    spec = agent(OpenAiLlm(model="m", base_url="http://127.0.0.1:9/v1"), stt)
    with pytest.raises(ProviderUnavailable, match=r"only sent to api\.deepgram\.com"):
        await registry.build(spec, {"deepgram": SERVER})


async def test_a_provider_built_with_a_workspace_secret_is_not_reused_for_a_server_key(
    registry: ProviderRegistry, api: FakeOpenAiApi
) -> None:
    await registry.build(agent(at(api)), {"openai": WORKSPACE})
    with pytest.raises(ProviderUnavailable, match=r"only sent to api\.openai\.com"):
        await registry.build(agent(at(api)), {"openai": SERVER})
