"""The engine authenticates a call's providers with the server's keys overlaid by the
workspace's secrets, opened only when the providers are built."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.calls.conftest import SERVER_OPENAI_KEY, WORKSPACE_OPENAI_KEY, new_session
from tests.fakes.deepgram_api import FakeDeepgram
from tests.fakes.openai_api import FakeOpenAiApi
from tests.runtime.fakes import FakeTransport
from voxline.agent_spec import (
    AgentSpec,
    DeepgramStt,
    OpenAiLlm,
    ScriptedLlm,
    ScriptedStt,
    ScriptedTts,
)
from voxline.calls.engine import CallEngine
from voxline.providers.base import ChatMessage, LlmRequest, ProviderUnavailable
from voxline.providers.fallback_stt import FallbackSpeechToText
from voxline.providers.llm.openai import OpenAiLanguageModel
from voxline.providers.stt.deepgram import DeepgramSpeechToText
from voxline.store.sessions import get_session

# Opens loopback to the egress policy: the fake OpenAI API listens on 127.0.0.1.
pytestmark = pytest.mark.usefixtures("loopback_egress")

HELLO = LlmRequest(messages=(ChatMessage(role="user", content="Hi"),))


@pytest.fixture
async def api() -> AsyncIterator[FakeOpenAiApi]:
    async with FakeOpenAiApi(api_key=WORKSPACE_OPENAI_KEY) as api:
        yield api


def agent_at(api: FakeOpenAiApi, ref: str = "openai") -> AgentSpec:
    llm = OpenAiLlm(model=api.model, base_url=api.base_url, api_key_ref=ref)
    return AgentSpec(name="keyed", stt=ScriptedStt(), llm=llm, tts=ScriptedTts())


async def test_the_workspace_secret_reaches_the_agents_endpoint(
    engine: CallEngine, api: FakeOpenAiApi
) -> None:
    session_id = await new_session(engine, agent_at(api), {"openai": WORKSPACE_OPENAI_KEY})
    providers = await engine.providers(await engine.load(session_id))
    async for _ in (await providers.llm.open()).stream(HELLO):
        pass
    assert api.completions()[0].headers["authorization"] == f"Bearer {WORKSPACE_OPENAI_KEY}"


async def test_the_server_key_is_refused_for_the_agents_custom_endpoint(
    engine: CallEngine, api: FakeOpenAiApi
) -> None:
    session_id = await new_session(engine, agent_at(api))
    with pytest.raises(ProviderUnavailable, match="server credentials are only sent to"):
        await engine.providers(await engine.load(session_id))
    assert api.requests == []


async def test_a_call_refused_the_server_key_fails_its_session_and_hangs_up(
    engine: CallEngine, api: FakeOpenAiApi
) -> None:
    session_id = await new_session(engine, agent_at(api))
    transport = FakeTransport()
    outcome = await engine.run(await engine.load(session_id), transport)
    assert outcome is None
    assert transport.hung_up.is_set()
    async with engine.database.transaction() as db:
        row = await get_session(db, session_id)
    assert row.status == "failed"
    assert row.error is not None and "store a workspace secret 'openai'" in row.error
    assert SERVER_OPENAI_KEY not in row.error


async def test_load_reads_only_the_secrets_the_agent_names_and_shows_none(
    engine: CallEngine, api: FakeOpenAiApi
) -> None:
    secrets = {"openai": WORKSPACE_OPENAI_KEY, "unused": "sk-unused-" + "u" * 20}
    setup = await engine.load(await new_session(engine, agent_at(api), secrets))
    assert set(setup.sealed_secrets) == {"openai"}
    assert WORKSPACE_OPENAI_KEY.encode() not in setup.sealed_secrets["openai"]
    assert "sealed_secrets" not in repr(setup)


async def test_warming_up_uses_the_server_keys_only(engine: CallEngine, api: FakeOpenAiApi) -> None:
    spec = agent_at(api, ref="groq")
    await new_session(engine, spec, {"groq": WORKSPACE_OPENAI_KEY})
    with pytest.raises(ProviderUnavailable, match="no credential named 'groq'"):
        await engine.warm_up(spec)
    assert api.requests == []


async def test_closing_the_engine_closes_provider_connections(
    engine: CallEngine, api: FakeOpenAiApi
) -> None:
    session_id = await new_session(engine, agent_at(api), {"openai": WORKSPACE_OPENAI_KEY})
    providers = await engine.providers(await engine.load(session_id))
    await engine.aclose()
    assert isinstance(providers.llm, OpenAiLanguageModel)
    assert providers.llm.client.http.is_closed


async def test_a_speech_recognition_fallback_authenticates_with_the_workspace_secret(
    engine: CallEngine,
) -> None:
    async with FakeDeepgram(api_key="dg-workspace-key") as deepgram:
        spec = AgentSpec(
            name="stt fallback",
            stt=ScriptedStt(),
            stt_fallbacks=[DeepgramStt(base_url=deepgram.base_url, api_key_ref="deepgram")],
            llm=ScriptedLlm(),
            tts=ScriptedTts(),
        )
        setup = await engine.load(await new_session(engine, spec, {"deepgram": "dg-workspace-key"}))
        assert set(setup.sealed_secrets) == {"deepgram"}
        providers = await engine.providers(setup)
        assert isinstance(providers.stt, FallbackSpeechToText)
        fallback = providers.stt.recognizers[1]
        assert isinstance(fallback, DeepgramSpeechToText)
        session = await fallback.open()
        await session.aclose()
        assert len(deepgram.connections) == 1
