import logging
from collections.abc import AsyncIterator

import pytest

from tests.fakes.anthropic_api import FakeAnthropicApi
from tests.fakes.openai_api import FakeOpenAiApi
from voxline.agent_spec import AgentSpec, AnthropicLlm, OpenAiLlm, ScriptedStt, ScriptedTts
from voxline.providers.base import ChatMessage, LlmRequest, ProviderUnavailable
from voxline.providers.executor import InferenceExecutor
from voxline.providers.fallback import FallbackLanguageModel
from voxline.providers.llm.anthropic import AnthropicLanguageModel
from voxline.providers.llm.openai import OpenAiLanguageModel
from voxline.providers.registry import ProviderRegistry

from .conftest import ANTHROPIC_KEY, OPENAI_KEY, collect

HELLO = LlmRequest(messages=(ChatMessage(role="user", content="Hi"),))


@pytest.fixture
async def registry() -> AsyncIterator[ProviderRegistry]:
    executor = InferenceExecutor(threads=1)
    registry = ProviderRegistry(executor)
    yield registry
    await registry.aclose()
    executor.shutdown()


def agent(llm: OpenAiLlm | AnthropicLlm, *fallbacks: OpenAiLlm | AnthropicLlm) -> AgentSpec:
    return AgentSpec(
        name="cloud",
        stt=ScriptedStt(),
        llm=llm,
        llm_fallbacks=list(fallbacks),
        tts=ScriptedTts(),
    )


def openai_at(api: FakeOpenAiApi, ref: str | None = "openai") -> OpenAiLlm:
    return OpenAiLlm(model=api.model, base_url=api.base_url, api_key_ref=ref)


def anthropic_at(api: FakeAnthropicApi) -> AnthropicLlm:
    return AnthropicLlm(model=api.model, base_url=api.base_url, api_key_ref="anthropic")


async def test_the_named_credential_authenticates_the_provider(
    registry: ProviderRegistry, openai_api: FakeOpenAiApi
) -> None:
    providers = await registry.build(agent(openai_at(openai_api)), {"openai": OPENAI_KEY})
    assert isinstance(providers.llm, OpenAiLanguageModel)
    await collect(await providers.llm.open(), HELLO)
    assert openai_api.completions()[0].headers["authorization"] == f"Bearer {OPENAI_KEY}"


async def test_a_missing_openai_key_names_its_environment_variable(
    registry: ProviderRegistry,
) -> None:
    with pytest.raises(ProviderUnavailable, match="VOXLINE_OPENAI_API_KEY"):
        await registry.build(agent(OpenAiLlm(model="gpt-4o-mini")))


async def test_a_missing_named_credential_is_named(registry: ProviderRegistry) -> None:
    spec = OpenAiLlm(model="m", base_url="https://api.groq.com/openai/v1", api_key_ref="groq")
    with pytest.raises(ProviderUnavailable, match="'groq'"):
        await registry.build(agent(spec))


async def test_a_self_hosted_server_never_gets_the_openai_key(
    registry: ProviderRegistry,
) -> None:
    async with FakeOpenAiApi(api_key=None) as api:
        spec = openai_at(api, ref=None)
        providers = await registry.build(agent(spec), {"openai": OPENAI_KEY})
        await collect(await providers.llm.open(), HELLO)
    assert "authorization" not in api.completions()[0].headers


async def test_each_key_gets_its_own_provider_and_a_key_is_reused(
    registry: ProviderRegistry, openai_api: FakeOpenAiApi
) -> None:
    spec = agent(openai_at(openai_api))
    first = await registry.build(spec, {"openai": "sk-first"})
    again = await registry.build(spec, {"openai": "sk-first"})
    rotated = await registry.build(spec, {"openai": "sk-second"})
    assert first.llm is again.llm
    assert rotated.llm is not first.llm


async def test_the_provider_cache_holds_no_key(
    registry: ProviderRegistry, openai_api: FakeOpenAiApi
) -> None:
    await registry.build(agent(openai_at(openai_api)), {"openai": OPENAI_KEY})
    # The cache keys are internal, but that no secret is among them is the contract.
    assert all(OPENAI_KEY not in key for key in registry._providers._built)


async def test_fallbacks_build_a_fallback_chain_in_order(
    registry: ProviderRegistry, openai_api: FakeOpenAiApi, anthropic_api: FakeAnthropicApi
) -> None:
    spec = agent(openai_at(openai_api), anthropic_at(anthropic_api))
    credentials = {"openai": OPENAI_KEY, "anthropic": ANTHROPIC_KEY}
    providers = await registry.build(spec, credentials)
    assert isinstance(providers.llm, FallbackLanguageModel)
    assert [type(model) for model in providers.llm.models] == [
        OpenAiLanguageModel,
        AnthropicLanguageModel,
    ]


async def test_an_unavailable_fallback_is_left_out_and_logged(
    registry: ProviderRegistry,
    openai_api: FakeOpenAiApi,
    anthropic_api: FakeAnthropicApi,
    caplog: pytest.LogCaptureFixture,
) -> None:
    spec = agent(openai_at(openai_api), anthropic_at(anthropic_api))
    with caplog.at_level(logging.WARNING, logger="voxline.providers.registry"):
        providers = await registry.build(spec, {"openai": OPENAI_KEY})
    assert isinstance(providers.llm, OpenAiLanguageModel)
    assert "'anthropic'" in caplog.text


async def test_an_unavailable_primary_leaves_its_fallback(
    registry: ProviderRegistry, openai_api: FakeOpenAiApi, anthropic_api: FakeAnthropicApi
) -> None:
    spec = agent(openai_at(openai_api), anthropic_at(anthropic_api))
    providers = await registry.build(spec, {"anthropic": ANTHROPIC_KEY})
    assert isinstance(providers.llm, AnthropicLanguageModel)


async def test_a_chain_with_nothing_available_is_unavailable(
    registry: ProviderRegistry, openai_api: FakeOpenAiApi, anthropic_api: FakeAnthropicApi
) -> None:
    spec = agent(openai_at(openai_api), anthropic_at(anthropic_api))
    with pytest.raises(ProviderUnavailable, match="VOXLINE_ANTHROPIC_API_KEY"):
        await registry.build(spec)


async def test_warming_up_connects_to_every_provider_of_the_chain(
    registry: ProviderRegistry, openai_api: FakeOpenAiApi, anthropic_api: FakeAnthropicApi
) -> None:
    spec = agent(openai_at(openai_api), anthropic_at(anthropic_api))
    await registry.warm_up(spec, {"openai": OPENAI_KEY, "anthropic": ANTHROPIC_KEY})
    assert [r.path for r in openai_api.requests] == ["/v1/models"]
    assert [r.path for r in anthropic_api.requests] == ["/v1/models"]


async def test_closing_the_registry_closes_provider_connections(
    openai_api: FakeOpenAiApi,
) -> None:
    executor = InferenceExecutor(threads=1)
    registry = ProviderRegistry(executor)
    providers = await registry.build(agent(openai_at(openai_api)), {"openai": OPENAI_KEY})
    await registry.aclose()
    executor.shutdown()
    assert isinstance(providers.llm, OpenAiLanguageModel)
    assert providers.llm.client.http.is_closed
