import json
from typing import Any

import httpx
import pytest

from tests.fakes.webhook_server import WebhookServer
from tests.tools.conftest import SECRET, SESSION_ID
from voxline.agent_spec import EndCallTool, ToolSpec, TransferCallTool, WebhookTool
from voxline.providers.base import ToolCall
from voxline.tools import EndCall, ToolRunner, Transfer

WEATHER_PARAMETERS: dict[str, Any] = {
    "type": "object",
    "properties": {"city": {"type": "string"}},
    "required": ["city"],
}


def runner(http: httpx.AsyncClient, *tools: ToolSpec, **variables: str) -> ToolRunner:
    return ToolRunner(
        tools, http=http, signing_secret=SECRET, session_id=SESSION_ID, variables=variables
    )


def weather_tool(server: WebhookServer, path: str) -> WebhookTool:
    return WebhookTool(
        name="get_weather",
        description="Weather in a city.",
        url=server.url(path),
        parameters=WEATHER_PARAMETERS,
    )


async def test_definitions_list_every_tool_with_its_parameters(
    http: httpx.AsyncClient, webhook_server: WebhookServer
) -> None:
    tools = runner(http, EndCallTool(), weather_tool(webhook_server, "/echo"))
    definitions = {d.name: d for d in tools.definitions()}
    assert set(definitions) == {"end_call", "get_weather"}
    assert definitions["get_weather"].parameters == WEATHER_PARAMETERS
    assert definitions["end_call"].parameters["type"] == "object"


async def test_transfer_definition_offers_a_reason_but_no_number(
    http: httpx.AsyncClient,
) -> None:
    (definition,) = runner(http, TransferCallTool(number="+15551234567")).definitions()
    assert set(definition.parameters["properties"]) == {"reason"}


async def test_descriptions_are_filled_from_variables(http: httpx.AsyncClient) -> None:
    tool = EndCallTool(description="End the call with {{ name }}.")
    (definition,) = runner(http, tool, name="Ada").definitions()
    assert definition.description == "End the call with Ada."


async def test_end_call_returns_the_end_call_action(http: httpx.AsyncClient) -> None:
    outcome = await runner(http, EndCallTool()).run(ToolCall("call_1", "end_call", {}))
    assert outcome.ok
    assert outcome.action == EndCall()
    assert json.loads(outcome.content) == {"status": "ending_call"}


async def test_transfer_uses_the_spec_number_not_the_llm_arguments(
    http: httpx.AsyncClient,
) -> None:
    tools = runner(http, TransferCallTool(number="+15551234567"))
    call = ToolCall("call_1", "transfer_call", {"reason": "billing", "number": "+19990000000"})
    outcome = await tools.run(call)
    assert outcome.ok
    assert outcome.action == Transfer(number="+15551234567")


async def test_unknown_tool_is_an_error_result(http: httpx.AsyncClient) -> None:
    outcome = await runner(http, EndCallTool()).run(ToolCall("call_1", "launch", {}))
    assert not outcome.ok
    assert outcome.action is None
    assert json.loads(outcome.content) == {"error": "unknown tool: launch"}


async def test_invalid_arguments_are_rejected_without_a_request(
    http: httpx.AsyncClient, webhook_server: WebhookServer
) -> None:
    tools = runner(http, weather_tool(webhook_server, "/echo"))
    outcome = await tools.run(ToolCall("call_1", "get_weather", {"city": 42}))
    assert not outcome.ok
    assert "arguments.city must be of type string" in json.loads(outcome.content)["error"]
    assert webhook_server.received == []


async def test_invalid_builtin_arguments_are_rejected(http: httpx.AsyncClient) -> None:
    tools = runner(http, TransferCallTool(number="+15551234567"))
    outcome = await tools.run(ToolCall("call_1", "transfer_call", {"reason": 3}))
    assert not outcome.ok
    assert outcome.action is None


async def test_run_all_runs_calls_concurrently_in_order(
    http: httpx.AsyncClient, webhook_server: WebhookServer
) -> None:
    # /gather/2 answers only once both requests are in flight at the same time.
    tools = runner(http, weather_tool(webhook_server, "/gather/2"), EndCallTool())
    calls = [
        ToolCall("call_1", "get_weather", {"city": "Oslo"}),
        ToolCall("call_2", "end_call", {}),
        ToolCall("call_3", "get_weather", {"city": "Rome"}),
    ]
    outcomes = await tools.run_all(calls)
    assert [outcome.call for outcome in outcomes] == calls
    assert [outcome.ok for outcome in outcomes] == [True, True, True]
    assert json.loads(outcomes[0].content) == {"arrived": 2}


async def test_empty_signing_secret_is_refused(http: httpx.AsyncClient) -> None:
    with pytest.raises(ValueError, match="signing_secret"):
        ToolRunner([], http=http, signing_secret=b"", session_id=SESSION_ID)


async def test_unexpected_webhook_failure_is_an_error_result(
    http: httpx.AsyncClient, webhook_server: WebhookServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def broken(*args: object, **kwargs: object) -> tuple[bool, str]:
        raise RuntimeError("bug")

    monkeypatch.setattr("voxline.tools.runner.call_webhook", broken)
    tools = runner(http, weather_tool(webhook_server, "/echo"))
    outcome = await tools.run(ToolCall("call_1", "get_weather", {"city": "Oslo"}))
    assert not outcome.ok
    assert json.loads(outcome.content) == {"error": "the tool failed unexpectedly"}
