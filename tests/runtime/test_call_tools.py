"""Simulated calls: tools, filler, end of call and transfer."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import pytest

from voxline.agent_spec import (
    EndCallTool,
    ScriptedRule,
    ScriptedToolCall,
    TransferCallTool,
    WebhookTool,
)
from voxline.runtime.options import RuntimeOptions

from ..fakes.webhook_server import WebhookServer
from .calls import SECRET, scripted_spec, simulated_call
from .fakes import FakeTransport, eventually

# Opens loopback to the egress policy: the webhook endpoints listen on 127.0.0.1.
pytestmark = pytest.mark.usefixtures("loopback_egress")


@pytest.fixture
async def webhooks() -> AsyncIterator[WebhookServer]:
    async with WebhookServer(SECRET) as server:
        yield server


def order_tool(server: WebhookServer, path: str) -> WebhookTool:
    return WebhookTool(
        name="lookup_order",
        description="Look up an order.",
        url=server.url(path),
        parameters={"type": "object", "properties": {"order": {"type": "string"}}},
    )


ORDER_RULE = ScriptedRule(
    match="order",
    say="Let me check.",
    tool=ScriptedToolCall(name="lookup_order", arguments={"order": "42"}),
    then_say="Your order has shipped.",
)


def hangup_after_last_echo(transport: FakeTransport) -> bool:
    kinds = transport.kinds()
    hangup = kinds.index("hangup")
    last_mark = max(i for i, kind in enumerate(kinds[:hangup]) if kind == "mark")
    name = transport.log[last_mark].name
    echoes = [i for i, e in enumerate(transport.log) if e.kind == "echo" and e.name == name]
    return bool(echoes) and echoes[0] < hangup and "clear" not in kinds


async def test_a_webhook_tool_result_goes_back_to_the_llm(webhooks: WebhookServer) -> None:
    spec = scripted_spec(
        transcripts=["Where is my order?"],
        rules=[ORDER_RULE],
        tools=[order_tool(webhooks, "/echo")],
    )
    async with simulated_call(spec) as call:
        await call.agent_done(1)
        await call.transport.speak(400)
        await call.agent_done(2)
        items = [(item.role, item.text) for item in call.items()]
    content = json.dumps({"method": "POST", "arguments": {"order": "42"}}, separators=(",", ":"))
    # The tool call may be recorded before the agent's first words start playing.
    assert sorted(items[2:]) == [
        ("agent", "Let me check. Your order has shipped."),
        ("tool_call", "lookup_order"),
        ("tool_result", content),
    ]
    assert items.index(("tool_call", "lookup_order")) < items.index(("tool_result", content))
    assert [r.signature_valid for r in webhooks.received] == [True]
    tool_message = call.llm.requests[-1].messages[-1]
    assert (tool_message.role, tool_message.content) == ("tool", content)
    calls = call.transport.events_of("tool.call")
    results = call.transport.events_of("tool.result")
    assert calls[0].arguments == {"order": "42"}
    assert results[0].ok is True


async def test_a_failing_webhook_is_reported_to_the_llm_and_the_call_goes_on(
    webhooks: WebhookServer,
) -> None:
    spec = scripted_spec(
        transcripts=["Where is my order?", "Thanks."],
        rules=[ORDER_RULE],
        tools=[order_tool(webhooks, "/fail")],
    )
    async with simulated_call(spec) as call:
        await call.agent_done(1)
        await call.transport.speak(400)
        await call.agent_done(2)
        await call.transport.speak(300)
        await call.agent_done(3)
        result = call.items("tool_result")[0]
    assert result.data["ok"] is False
    assert call.agent_texts()[1:] == ["Let me check. Your order has shipped.", "Okay."]
    tool_messages = [m for m in call.last_request_messages() if m.role == "tool"]
    assert tool_messages[0].content == result.text


async def test_a_slow_tool_gets_the_filler_line(webhooks: WebhookServer) -> None:
    spec = scripted_spec(
        transcripts=["Where is my order?"],
        rules=[ORDER_RULE],
        tools=[order_tool(webhooks, "/slow")],
    )
    options = RuntimeOptions(tool_filler_after_s=0.3)
    async with simulated_call(spec, options=options) as call:
        await call.agent_done(1)
        await call.transport.speak(400)
        await eventually(lambda: "One moment." in " ".join(call.agent_texts()))
        webhooks.release()
        await call.agent_done(2)
    assert call.agent_texts()[1] == "Let me check. One moment. Your order has shipped."


async def test_end_call_hangs_up_once_the_goodbye_was_heard() -> None:
    spec = scripted_spec(
        transcripts=["That's all, bye."],
        rules=[
            ScriptedRule(
                match="bye", say="Goodbye, take care!", tool=ScriptedToolCall(name="end_call")
            )
        ],
        tools=[EndCallTool()],
    )
    async with simulated_call(spec) as call:
        await call.agent_done(1)
        await call.transport.speak(400)
        outcome = await call.outcome()
    assert outcome.end_reason == "agent_hangup"
    assert call.agent_texts()[-1] == "Goodbye, take care!"
    assert call.items("agent")[-1].heard_text == "Goodbye, take care!"
    assert hangup_after_last_echo(call.transport)


async def test_end_call_without_words_says_the_goodbye_message() -> None:
    spec = scripted_spec(
        transcripts=["Hang up."],
        rules=[ScriptedRule(match="hang", tool=ScriptedToolCall(name="end_call"))],
        tools=[EndCallTool()],
    )
    async with simulated_call(spec) as call:
        await call.agent_done(1)
        await call.transport.speak(400)
        outcome = await call.outcome()
    assert outcome.end_reason == "agent_hangup"
    assert call.agent_texts()[-1] == "Goodbye!"
    assert hangup_after_last_echo(call.transport)


TRANSFER_RULE = ScriptedRule(
    match="human",
    tool=ScriptedToolCall(name="transfer_call", arguments={"reason": "asked"}),
    then_say="Sorry: {result}",
)


async def test_transfer_happens_after_the_line_was_heard() -> None:
    spec = scripted_spec(
        transcripts=["A human, please."],
        rules=[TRANSFER_RULE],
        tools=[TransferCallTool(number="+15550100")],
    )
    async with simulated_call(spec) as call:
        await call.agent_done(1)
        await call.transport.speak(400)
        outcome = await call.outcome()
        log = call.transport.log
    assert outcome.end_reason == "transferred"
    assert call.transport.transferred_to == "+15550100"
    assert call.agent_texts()[-1] == "One moment."
    transfer = next(i for i, e in enumerate(log) if e.kind == "transfer")
    last_mark = max(i for i, e in enumerate(log[:transfer]) if e.kind == "mark")
    assert any(e.kind == "echo" and e.name == log[last_mark].name for e in log[:transfer])


async def test_transfer_on_a_channel_without_phone_is_reported_to_the_llm() -> None:
    spec = scripted_spec(
        transcripts=["A human, please.", "Okay then."],
        rules=[TRANSFER_RULE],
        tools=[TransferCallTool(number="+15550100")],
    )
    async with simulated_call(spec, transfer_supported=False) as call:
        await call.agent_done(1)
        await call.transport.speak(400)
        await call.agent_done(2)
        await call.transport.speak(300)
        await call.agent_done(3)
        outcome_running = not call.task.done()
    assert outcome_running
    error = json.dumps({"error": "transfer is not possible on this channel"}, separators=(",", ":"))
    assert call.agent_texts()[1] == f"One moment. Sorry: {error}"
    assert call.items("tool_result")[0].text == error
