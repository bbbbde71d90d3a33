import json
import socket
from typing import Any, Literal

import httpx

from tests.fakes.webhook_server import WebhookServer
from tests.tools.conftest import SECRET, SESSION_ID
from voxline.agent_spec import WebhookTool
from voxline.providers.base import ToolCall
from voxline.tools import ToolOutcome, ToolRunner
from voxline.tools.webhook import MAX_CONTENT_CHARS

Method = Literal["GET", "POST", "PUT", "PATCH", "DELETE"]
ORDER_PARAMETERS: dict[str, Any] = {
    "type": "object",
    "properties": {"order_id": {"type": "string"}, "items": {"type": "array"}},
}


async def call_tool(
    http: httpx.AsyncClient,
    url: str,
    arguments: dict[str, Any],
    *,
    method: Method = "POST",
    timeout_ms: int = 5000,
    secret: bytes = SECRET,
) -> ToolOutcome:
    tool = WebhookTool(
        name="lookup",
        description="Look up an order.",
        url=url,
        method=method,
        parameters=ORDER_PARAMETERS,
        timeout_ms=timeout_ms,
    )
    tools = ToolRunner([tool], http=http, signing_secret=secret, session_id=SESSION_ID)
    return await tools.run(ToolCall("call_1", "lookup", arguments))


async def test_post_sends_signed_json_body_and_returns_the_json_answer(
    http: httpx.AsyncClient, webhook_server: WebhookServer
) -> None:
    outcome = await call_tool(http, webhook_server.url("/echo"), {"order_id": "A1"})
    assert outcome.ok
    assert json.loads(outcome.content) == {"method": "POST", "arguments": {"order_id": "A1"}}
    (request,) = webhook_server.received
    assert request.signature_valid
    assert request.headers["content-type"] == "application/json"


async def test_request_carries_the_session_id(
    http: httpx.AsyncClient, webhook_server: WebhookServer
) -> None:
    await call_tool(http, webhook_server.url("/echo"), {"order_id": "A1"})
    assert webhook_server.received[0].session_id == SESSION_ID


async def test_put_and_patch_send_the_arguments_as_body(
    http: httpx.AsyncClient, webhook_server: WebhookServer
) -> None:
    for method in ("PUT", "PATCH"):
        outcome = await call_tool(
            http, webhook_server.url("/echo"), {"order_id": "A1"}, method=method
        )
        assert json.loads(outcome.content)["arguments"] == {"order_id": "A1"}


async def test_get_sends_arguments_as_query_signed_over_an_empty_body(
    http: httpx.AsyncClient, webhook_server: WebhookServer
) -> None:
    outcome = await call_tool(
        http, webhook_server.url("/echo"), {"order_id": "A1", "items": [1, "b"]}, method="GET"
    )
    assert outcome.ok
    (request,) = webhook_server.received
    assert request.body == b""
    assert request.signature_valid
    assert request.query == [("order_id", "A1"), ("items", "1"), ("items", "b")]


async def test_delete_sends_arguments_as_query(
    http: httpx.AsyncClient, webhook_server: WebhookServer
) -> None:
    await call_tool(http, webhook_server.url("/echo"), {"order_id": "A1"}, method="DELETE")
    assert webhook_server.received[0].query == [("order_id", "A1")]


async def test_wrong_secret_is_rejected_by_the_receiver_and_reported(
    http: httpx.AsyncClient, webhook_server: WebhookServer
) -> None:
    outcome = await call_tool(http, webhook_server.url("/echo"), {}, secret=b"wrong")
    assert not outcome.ok
    assert json.loads(outcome.content)["error"] == "the tool failed (HTTP 401)"


async def test_server_error_is_an_error_result_with_detail(
    http: httpx.AsyncClient, webhook_server: WebhookServer
) -> None:
    outcome = await call_tool(http, webhook_server.url("/fail"), {})
    assert not outcome.ok
    assert json.loads(outcome.content) == {
        "error": "the tool failed (HTTP 500)",
        "detail": "database down",
    }


async def test_slow_endpoint_times_out_as_an_error_result(
    http: httpx.AsyncClient, webhook_server: WebhookServer
) -> None:
    outcome = await call_tool(http, webhook_server.url("/slow"), {}, timeout_ms=200)
    assert not outcome.ok
    assert json.loads(outcome.content) == {"error": "the tool did not answer within 0.2 seconds"}
    assert outcome.duration_ms >= 200


async def test_unreachable_endpoint_is_an_error_result(http: httpx.AsyncClient) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        closed_port = sock.getsockname()[1]
    outcome = await call_tool(http, f"http://127.0.0.1:{closed_port}/hook", {})
    assert not outcome.ok
    assert json.loads(outcome.content) == {"error": "the tool could not be reached"}


async def test_invalid_json_answer_is_an_error_result(
    http: httpx.AsyncClient, webhook_server: WebhookServer
) -> None:
    outcome = await call_tool(http, webhook_server.url("/invalid-json"), {})
    assert not outcome.ok
    assert json.loads(outcome.content) == {"error": "the tool's answer was invalid JSON"}


async def test_text_answer_becomes_text_content(
    http: httpx.AsyncClient, webhook_server: WebhookServer
) -> None:
    outcome = await call_tool(http, webhook_server.url("/text"), {})
    assert outcome.ok
    assert json.loads(outcome.content) == {"text": "It is sunny."}


async def test_large_json_answer_is_truncated_for_the_llm(
    http: httpx.AsyncClient, webhook_server: WebhookServer
) -> None:
    outcome = await call_tool(http, webhook_server.url("/big"), {})
    assert outcome.ok
    content = json.loads(outcome.content)
    assert content["truncated"] is True
    assert len(content["text"]) == MAX_CONTENT_CHARS
    assert content["text"].startswith('{"items":["item 0","item 1"')


async def test_empty_answer_is_a_success(
    http: httpx.AsyncClient, webhook_server: WebhookServer
) -> None:
    outcome = await call_tool(http, webhook_server.url("/empty"), {})
    assert outcome.ok
    assert json.loads(outcome.content) == {"status": "ok"}
