"""An agent stored straight into the database (no API check) whose LLM points at an internal
service: the call's provider is refused when it connects, and the service never hears of it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.calls.conftest import new_session
from tests.fakes.internal_service import InternalService
from voxline.agent_spec import AgentSpec, OpenAiLlm, ScriptedStt, ScriptedTts
from voxline.calls.engine import CallEngine
from voxline.providers.base import ChatMessage, LlmRequest, ProviderError
from voxline.security import egress
from voxline.security.egress import EgressPolicy

HELLO = LlmRequest(messages=(ChatMessage(role="user", content="Hi"),))


@pytest.fixture(autouse=True)
def _strict_policy() -> Iterator[None]:
    previous = egress.install(EgressPolicy())
    yield
    egress.install(previous)


async def test_a_stored_llm_base_url_at_an_internal_service_is_refused_at_call_time(
    engine: CallEngine,
) -> None:
    async with InternalService() as service:
        llm = OpenAiLlm(model="m", base_url=service.url("/v1"), api_key_ref=None)
        spec = AgentSpec(name="internal", stt=ScriptedStt(), llm=llm, tts=ScriptedTts())
        providers = await engine.providers(await engine.load(await new_session(engine, spec)))
        session = await providers.llm.open()
        with pytest.raises(ProviderError, match="egress policy") as refused:
            async for _ in session.stream(HELLO):
                pass
    assert "/v1" not in str(refused.value)
    assert service.hits == []
