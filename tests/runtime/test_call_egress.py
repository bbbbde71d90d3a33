"""At call time, a webhook tool aimed at an internal service (saved without the API's check)
is a tool error the LLM hears about: nothing reaches the service, and the call goes on."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.fakes.internal_service import SECRET_BODY, InternalService
from voxline.agent_spec import ScriptedRule, ScriptedToolCall, WebhookTool
from voxline.security import egress
from voxline.security.egress import EgressPolicy

from .calls import scripted_spec, simulated_call


@pytest.fixture(autouse=True)
def _strict_policy() -> Iterator[None]:
    previous = egress.install(EgressPolicy())
    yield
    egress.install(previous)


async def test_a_tool_pointing_at_an_internal_service_is_refused_and_the_call_goes_on() -> None:
    async with InternalService() as service:
        spec = scripted_spec(
            transcripts=["Read me the admin page.", "Thanks."],
            rules=[
                ScriptedRule(
                    match="admin",
                    say="Let me look.",
                    tool=ScriptedToolCall(name="admin_page", arguments={}),
                    then_say="Here it is.",
                )
            ],
            tools=[WebhookTool(name="admin_page", description="Admin.", url=service.url("/"))],
        )
        async with simulated_call(spec) as call:
            await call.agent_done(1)
            await call.transport.speak(400)
            await call.agent_done(2)
            await call.transport.speak(300)
            await call.agent_done(3)
            result = call.items("tool_result")[0]
            texts = [item.text for item in call.items()]
    assert result.data["ok"] is False
    assert "egress policy" in result.text
    assert all(SECRET_BODY["internal"] not in text for text in texts)
    assert call.agent_texts()[1:] == ["Let me look. Here it is.", "Okay."]
    assert service.hits == []
