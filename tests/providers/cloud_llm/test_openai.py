import asyncio
import json
from collections.abc import AsyncIterator

import pytest

from tests.fakes.openai_api import FakeOpenAiApi, Reply, ToolCallReply
from voxline.agent_spec import OpenAiLlm
from voxline.providers.base import (
    ChatMessage,
    LlmRequest,
    ProviderError,
    TextDelta,
    ToolCall,
    ToolCallsRequested,
    ToolDefinition,
    Usage,
)
from voxline.providers.llm.openai import OpenAiLanguageModel

from .conftest import OPENAI_KEY, collect, text_of

# Only guards against a hung test; no assertion depends on it.
HANG_GUARD_S = 10.0

WEATHER = ToolDefinition(
    name="get_weather",
    description="The weather in a city.",
    parameters={"type": "object", "properties": {"city": {"type": "string"}}},
)
HELLO = LlmRequest(
    messages=(
        ChatMessage(role="system", content="Be brief."),
        ChatMessage(role="user", content="Hi"),
    )
)


def spec_for(api: FakeOpenAiApi, **options: object) -> OpenAiLlm:
    return OpenAiLlm.model_validate(
        {"model": api.model, "base_url": api.base_url, "api_key_ref": "openai", **options}
    )


@pytest.fixture
async def model(openai_api: FakeOpenAiApi) -> AsyncIterator[OpenAiLanguageModel]:
    llm = OpenAiLanguageModel(spec_for(openai_api), OPENAI_KEY)
    yield llm
    await llm.aclose()


async def test_streams_text_deltas_in_order(
    openai_api: FakeOpenAiApi, model: OpenAiLanguageModel
) -> None:
    openai_api.script(Reply(text=["Hello", " there", "."]))
    events = await collect(await model.open(), HELLO)
    assert [e.text for e in events if isinstance(e, TextDelta)] == ["Hello", " there", "."]


async def test_request_is_a_streamed_chat_completion_with_usage(
    openai_api: FakeOpenAiApi, model: OpenAiLanguageModel
) -> None:
    await collect(await model.open(), HELLO)
    body = openai_api.completions()[0].body
    assert body is not None
    assert body["model"] == openai_api.model
    assert body["stream"] is True
    assert body["stream_options"] == {"include_usage": True}
    assert "tools" not in body


async def test_sends_the_key_as_a_bearer_token(
    openai_api: FakeOpenAiApi, model: OpenAiLanguageModel
) -> None:
    await collect(await model.open(), HELLO)
    assert openai_api.completions()[0].headers["authorization"] == f"Bearer {OPENAI_KEY}"


async def test_a_server_without_auth_gets_no_authorization_header() -> None:
    async with FakeOpenAiApi(api_key=None) as api:
        llm = OpenAiLanguageModel(OpenAiLlm(model=api.model, base_url=api.base_url), None)
        try:
            events = await collect(await llm.open(), HELLO)
        finally:
            await llm.aclose()
    assert text_of(events) == "Hello!"
    assert "authorization" not in api.completions()[0].headers


async def test_sends_temperature_max_tokens_and_extra_headers(openai_api: FakeOpenAiApi) -> None:
    spec = spec_for(openai_api, temperature=0.2, max_tokens=80, extra_headers={"X-Team": "voice"})
    llm = OpenAiLanguageModel(spec, OPENAI_KEY)
    try:
        await collect(await llm.open(), HELLO)
    finally:
        await llm.aclose()
    recorded = openai_api.completions()[0]
    assert recorded.body is not None
    assert (recorded.body["temperature"], recorded.body["max_tokens"]) == (0.2, 80)
    assert recorded.headers["x-team"] == "voice"


async def test_offers_tools_in_the_function_format(
    openai_api: FakeOpenAiApi, model: OpenAiLanguageModel
) -> None:
    await collect(await model.open(), LlmRequest(messages=HELLO.messages, tools=(WEATHER,)))
    body = openai_api.completions()[0].body
    assert body is not None
    assert body["tools"] == [
        {
            "type": "function",
            "function": {
                "name": "get_weather",
                "description": "The weather in a city.",
                "parameters": WEATHER.parameters,
            },
        }
    ]


async def test_assembles_a_tool_call_whose_arguments_arrive_in_fragments(
    openai_api: FakeOpenAiApi, model: OpenAiLanguageModel
) -> None:
    call = ToolCallReply("get_weather", '{"city": "Paris", "unit": "celsius"}', fragment=3)
    openai_api.script(Reply(tool_calls=[call]))
    events = await collect(await model.open(), HELLO)
    requested = [e for e in events if isinstance(e, ToolCallsRequested)]
    assert requested == [
        ToolCallsRequested(
            (ToolCall(call.id, "get_weather", {"city": "Paris", "unit": "celsius"}),)
        )
    ]


async def test_assembles_parallel_tool_calls_into_one_request(
    openai_api: FakeOpenAiApi, model: OpenAiLanguageModel
) -> None:
    paris = ToolCallReply("get_weather", '{"city": "Paris"}')
    rome = ToolCallReply("get_weather", '{"city": "Rome"}')
    openai_api.script(Reply(tool_calls=[paris, rome]))
    events = await collect(await model.open(), HELLO)
    requested = [e for e in events if isinstance(e, ToolCallsRequested)]
    assert len(requested) == 1
    assert requested[0].calls == (
        ToolCall(paris.id, "get_weather", {"city": "Paris"}),
        ToolCall(rome.id, "get_weather", {"city": "Rome"}),
    )


async def test_text_comes_first_then_tool_calls_then_usage(
    openai_api: FakeOpenAiApi, model: OpenAiLanguageModel
) -> None:
    openai_api.script(Reply(text=["One moment."], tool_calls=[ToolCallReply("get_weather", "{}")]))
    events = await collect(await model.open(), HELLO)
    assert [type(e) for e in events] == [TextDelta, ToolCallsRequested, Usage]


async def test_reports_the_servers_usage(
    openai_api: FakeOpenAiApi, model: OpenAiLanguageModel
) -> None:
    openai_api.script(Reply(text=["Hi"], usage=(321, 9)))
    events = await collect(await model.open(), HELLO)
    assert events[-1] == Usage(input_tokens=321, output_tokens=9)


async def test_history_maps_to_the_chat_completions_shape(
    openai_api: FakeOpenAiApi, model: OpenAiLanguageModel
) -> None:
    call = ToolCall("call_1", "get_weather", {"city": "Paris"})
    history = (
        ChatMessage(role="system", content="Be brief."),
        ChatMessage(role="assistant", content="Hello, how can I help?"),
        ChatMessage(role="user", content="Weather in Paris?"),
        ChatMessage(role="assistant", content="", tool_calls=(call,)),
        ChatMessage(role="tool", content="Sunny, 21 C", tool_call_id="call_1", name="get_weather"),
    )
    await collect(await model.open(), LlmRequest(messages=history, tools=(WEATHER,)))
    body = openai_api.completions()[0].body
    assert body is not None
    assert body["messages"] == [
        {"role": "system", "content": "Be brief."},
        {"role": "assistant", "content": "Hello, how can I help?"},
        {"role": "user", "content": "Weather in Paris?"},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": "call_1",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'},
                }
            ],
        },
        {"role": "tool", "tool_call_id": "call_1", "content": "Sunny, 21 C"},
    ]


async def test_a_tool_call_round_trips_through_the_history(
    openai_api: FakeOpenAiApi, model: OpenAiLanguageModel
) -> None:
    paris = ToolCallReply("get_weather", '{"city": "Paris"}')
    openai_api.script(Reply(tool_calls=[paris]), Reply(text=["It is sunny."]))
    session = await model.open()
    first = await collect(session, HELLO)
    calls = next(e for e in first if isinstance(e, ToolCallsRequested)).calls
    follow_up = LlmRequest(
        messages=(
            *HELLO.messages,
            ChatMessage(role="assistant", tool_calls=calls),
            ChatMessage(role="tool", content="sunny", tool_call_id=calls[0].id),
        )
    )
    assert text_of(await collect(session, follow_up)) == "It is sunny."
    sent = openai_api.completions()[1].body
    assert sent is not None
    assert json.loads(sent["messages"][2]["tool_calls"][0]["function"]["arguments"]) == {
        "city": "Paris"
    }


async def test_a_wrong_key_raises_the_vendors_message_without_the_key(
    openai_api: FakeOpenAiApi,
) -> None:
    wrong = "sk-wrong-" + "w" * 30
    llm = OpenAiLanguageModel(spec_for(openai_api), wrong)
    try:
        with pytest.raises(ProviderError) as raised:
            await collect(await llm.open(), HELLO)
    finally:
        await llm.aclose()
    message = str(raised.value)
    assert "401" in message and "Incorrect API key provided" in message
    assert wrong not in message


async def test_a_key_echoed_by_the_server_is_redacted(
    openai_api: FakeOpenAiApi, model: OpenAiLanguageModel
) -> None:
    openai_api.script(Reply(status=400, error_message=f"bad request from key {OPENAI_KEY}"))
    with pytest.raises(ProviderError) as raised:
        await collect(await model.open(), HELLO)
    assert OPENAI_KEY not in str(raised.value)
    assert "[redacted]" in str(raised.value)


@pytest.mark.parametrize("status", [429, 500])
async def test_an_error_status_raises_with_the_vendors_message(
    openai_api: FakeOpenAiApi, model: OpenAiLanguageModel, status: int
) -> None:
    openai_api.script(Reply(status=status, error_message="Rate limit reached for requests"))
    with pytest.raises(ProviderError, match=f"HTTP {status}: Rate limit reached for requests"):
        await collect(await model.open(), HELLO)


async def test_no_first_token_within_the_timeout_raises_timed_out(
    openai_api: FakeOpenAiApi,
) -> None:
    openai_api.script(Reply(text=["Late."], hold_after=0))
    llm = OpenAiLanguageModel(spec_for(openai_api, first_token_timeout_ms=200), OPENAI_KEY)
    try:
        with pytest.raises(ProviderError, match="timed out"):
            await collect(await llm.open(), HELLO)
    finally:
        await llm.aclose()


async def test_a_held_first_token_that_arrives_in_time_is_streamed(
    openai_api: FakeOpenAiApi, model: OpenAiLanguageModel
) -> None:
    openai_api.script(Reply(text=["Worth", " the wait."], hold_after=0))
    stream = (await model.open()).stream(HELLO)
    first = asyncio.ensure_future(anext(stream))
    await openai_api.wait_for_request("/v1/chat/completions")
    openai_api.release()
    assert await first == TextDelta("Worth")
    await stream.aclose()


async def test_a_connection_dropped_after_text_raises(
    openai_api: FakeOpenAiApi, model: OpenAiLanguageModel
) -> None:
    openai_api.script(Reply(text=["Sure,", " let", " me"], fail_after=1, failure="disconnect"))
    received: list[str] = []
    with pytest.raises(ProviderError):
        async for event in (await model.open()).stream(HELLO):
            if isinstance(event, TextDelta):
                received.append(event.text)
    assert received == ["Sure,"]


async def test_an_error_chunk_mid_stream_raises_the_vendors_message(
    openai_api: FakeOpenAiApi, model: OpenAiLanguageModel
) -> None:
    openai_api.script(
        Reply(text=["Sure,", " well"], fail_after=1, failure="error_chunk", error_message="boom")
    )
    with pytest.raises(ProviderError, match="failed mid-reply: boom"):
        await collect(await model.open(), HELLO)


async def test_a_stream_ending_without_done_raises(
    openai_api: FakeOpenAiApi, model: OpenAiLanguageModel
) -> None:
    openai_api.script(Reply(text=["Sure,", " well"], fail_after=1, failure="truncate"))
    with pytest.raises(ProviderError, match=r"before \[DONE\]"):
        await collect(await model.open(), HELLO)


async def test_invalid_tool_arguments_raise(
    openai_api: FakeOpenAiApi, model: OpenAiLanguageModel
) -> None:
    openai_api.script(Reply(tool_calls=[ToolCallReply("get_weather", '{"city": ')]))
    with pytest.raises(ProviderError, match="get_weather"):
        await collect(await model.open(), HELLO)


async def test_stopping_early_closes_the_http_stream(
    openai_api: FakeOpenAiApi, model: OpenAiLanguageModel
) -> None:
    openai_api.script(Reply(text=["One", " two"], hold_after=1))
    stream = (await model.open()).stream(HELLO)
    assert await anext(stream) == TextDelta("One")
    await stream.aclose()
    async with asyncio.timeout(HANG_GUARD_S):
        await openai_api.disconnected.wait()
    assert openai_api.completions()[0].outcome == "disconnected"


async def test_cancelling_a_held_stream_closes_the_http_stream(
    openai_api: FakeOpenAiApi, model: OpenAiLanguageModel
) -> None:
    openai_api.script(Reply(text=["Never."], hold_after=0))
    session = await model.open()
    task = asyncio.ensure_future(collect(session, HELLO))
    await openai_api.wait_for_request("/v1/chat/completions")
    task.cancel()
    async with asyncio.timeout(HANG_GUARD_S):
        await openai_api.disconnected.wait()
    assert openai_api.completions()[0].outcome == "disconnected"
    assert task.cancelled()


async def test_the_warmed_connection_serves_the_next_request(
    openai_api: FakeOpenAiApi, model: OpenAiLanguageModel
) -> None:
    await model.warm_up()
    await collect(await model.open(), HELLO)
    warm, completion = openai_api.requests[0], openai_api.completions()[0]
    assert warm.path == "/v1/models"
    assert completion.client_port == warm.client_port


async def test_opening_a_session_warms_a_connection(
    openai_api: FakeOpenAiApi, model: OpenAiLanguageModel
) -> None:
    await model.open()
    warm = await openai_api.wait_for_request("/v1/models")
    assert warm.method == "GET"


async def test_a_closed_session_refuses_to_stream(model: OpenAiLanguageModel) -> None:
    session = await model.open()
    await session.aclose()
    with pytest.raises(ProviderError, match="closed"):
        await collect(session, HELLO)
