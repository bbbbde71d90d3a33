import asyncio
from collections.abc import AsyncIterator

import pytest

from tests.fakes.anthropic_api import API_VERSION, FakeAnthropicApi
from tests.fakes.openai_api import Reply, ToolCallReply
from voxline.agent_spec import AnthropicLlm
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
from voxline.providers.llm.anthropic import AnthropicLanguageModel

from .conftest import ANTHROPIC_KEY, collect, text_of

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


def spec_for(api: FakeAnthropicApi, **options: object) -> AnthropicLlm:
    return AnthropicLlm.model_validate(
        {"model": api.model, "base_url": api.base_url, "api_key_ref": "anthropic", **options}
    )


@pytest.fixture
async def model(anthropic_api: FakeAnthropicApi) -> AsyncIterator[AnthropicLanguageModel]:
    llm = AnthropicLanguageModel(spec_for(anthropic_api), ANTHROPIC_KEY)
    yield llm
    await llm.aclose()


async def test_streams_text_deltas_in_order(
    anthropic_api: FakeAnthropicApi, model: AnthropicLanguageModel
) -> None:
    anthropic_api.script(Reply(text=["Hello", " there", "."]))
    events = await collect(await model.open(), HELLO)
    assert [e.text for e in events if isinstance(e, TextDelta)] == ["Hello", " there", "."]


async def test_sends_the_key_and_api_version_headers(
    anthropic_api: FakeAnthropicApi, model: AnthropicLanguageModel
) -> None:
    await collect(await model.open(), HELLO)
    headers = anthropic_api.messages()[0].headers
    assert headers["x-api-key"] == ANTHROPIC_KEY
    assert headers["anthropic-version"] == API_VERSION


async def test_the_system_prompt_is_sent_top_level(
    anthropic_api: FakeAnthropicApi, model: AnthropicLanguageModel
) -> None:
    await collect(await model.open(), HELLO)
    body = anthropic_api.messages()[0].body
    assert body is not None
    assert [block["text"] for block in body["system"]] == ["Be brief."]
    assert [message["role"] for message in body["messages"]] == ["user"]


async def test_prompt_caching_marks_the_system_prompt_and_the_newest_message(
    anthropic_api: FakeAnthropicApi, model: AnthropicLanguageModel
) -> None:
    await collect(await model.open(), HELLO)
    body = anthropic_api.messages()[0].body
    assert body is not None
    assert body["system"][-1]["cache_control"] == {"type": "ephemeral"}
    assert body["messages"][-1]["content"][-1]["cache_control"] == {"type": "ephemeral"}


async def test_without_prompt_caching_nothing_is_marked(anthropic_api: FakeAnthropicApi) -> None:
    llm = AnthropicLanguageModel(spec_for(anthropic_api, prompt_caching=False), ANTHROPIC_KEY)
    try:
        await collect(await llm.open(), HELLO)
    finally:
        await llm.aclose()
    assert "cache_control" not in str(anthropic_api.messages()[0].body)


async def test_sends_max_tokens_temperature_and_tools(anthropic_api: FakeAnthropicApi) -> None:
    llm = AnthropicLanguageModel(
        spec_for(anthropic_api, max_tokens=150, temperature=0.3), ANTHROPIC_KEY
    )
    try:
        await collect(await llm.open(), LlmRequest(messages=HELLO.messages, tools=(WEATHER,)))
    finally:
        await llm.aclose()
    body = anthropic_api.messages()[0].body
    assert body is not None
    assert (body["max_tokens"], body["temperature"]) == (150, 0.3)
    assert body["tools"] == [
        {
            "name": "get_weather",
            "description": "The weather in a city.",
            "input_schema": WEATHER.parameters,
        }
    ]


async def test_assembles_a_tool_use_whose_input_arrives_in_fragments(
    anthropic_api: FakeAnthropicApi, model: AnthropicLanguageModel
) -> None:
    call = ToolCallReply("get_weather", '{"city": "Paris", "unit": "celsius"}', fragment=4)
    anthropic_api.script(Reply(text=["Let me check."], tool_calls=[call]))
    events = await collect(await model.open(), HELLO)
    assert [type(e) for e in events] == [TextDelta, ToolCallsRequested, Usage]
    requested = events[1]
    assert isinstance(requested, ToolCallsRequested)
    assert requested.calls == (
        ToolCall(call.id, "get_weather", {"city": "Paris", "unit": "celsius"}),
    )


async def test_assembles_parallel_tool_uses_into_one_request(
    anthropic_api: FakeAnthropicApi, model: AnthropicLanguageModel
) -> None:
    paris = ToolCallReply("get_weather", '{"city": "Paris"}')
    rome = ToolCallReply("get_weather", '{"city": "Rome"}')
    anthropic_api.script(Reply(tool_calls=[paris, rome]))
    events = await collect(await model.open(), HELLO)
    requested = [e for e in events if isinstance(e, ToolCallsRequested)]
    assert len(requested) == 1
    assert requested[0].calls == (
        ToolCall(paris.id, "get_weather", {"city": "Paris"}),
        ToolCall(rome.id, "get_weather", {"city": "Rome"}),
    )


async def test_usage_counts_cached_prompt_tokens(
    anthropic_api: FakeAnthropicApi, model: AnthropicLanguageModel
) -> None:
    anthropic_api.script(Reply(text=["Hi"], usage=(40, 7)))
    events = await collect(await model.open(), HELLO)
    # The fake reports 3 tokens read from the cache besides the 40 uncached ones.
    assert events[-1] == Usage(input_tokens=43, output_tokens=7)


async def test_history_maps_to_merged_messages_with_tool_blocks(
    anthropic_api: FakeAnthropicApi, model: AnthropicLanguageModel
) -> None:
    paris = ToolCall("toolu_1", "get_weather", {"city": "Paris"})
    rome = ToolCall("toolu_2", "get_weather", {"city": "Rome"})
    history = (
        ChatMessage(role="system", content="Be brief."),
        ChatMessage(role="assistant", content="Hello, how can I help?"),
        ChatMessage(role="user", content="Weather in Paris"),
        ChatMessage(role="user", content="and Rome?"),
        ChatMessage(role="assistant", content="Checking. ", tool_calls=(paris, rome)),
        ChatMessage(role="tool", content="Sunny", tool_call_id="toolu_1"),
        ChatMessage(role="tool", content="Rainy", tool_call_id="toolu_2"),
    )
    llm = AnthropicLanguageModel(spec_for(anthropic_api, prompt_caching=False), ANTHROPIC_KEY)
    try:
        await collect(await llm.open(), LlmRequest(messages=history, tools=(WEATHER,)))
    finally:
        await llm.aclose()
    body = anthropic_api.messages()[0].body
    assert body is not None
    assert body["messages"] == [
        {"role": "assistant", "content": [{"type": "text", "text": "Hello, how can I help?"}]},
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "Weather in Paris"},
                {"type": "text", "text": "and Rome?"},
            ],
        },
        {
            "role": "assistant",
            "content": [
                {"type": "text", "text": "Checking."},
                {
                    "type": "tool_use",
                    "id": "toolu_1",
                    "name": "get_weather",
                    "input": paris.arguments,
                },
                {
                    "type": "tool_use",
                    "id": "toolu_2",
                    "name": "get_weather",
                    "input": rome.arguments,
                },
            ],
        },
        {
            "role": "user",
            "content": [
                {"type": "tool_result", "tool_use_id": "toolu_1", "content": "Sunny"},
                {"type": "tool_result", "tool_use_id": "toolu_2", "content": "Rainy"},
            ],
        },
    ]


async def test_a_tool_use_round_trips_through_the_history(
    anthropic_api: FakeAnthropicApi, model: AnthropicLanguageModel
) -> None:
    anthropic_api.script(
        Reply(tool_calls=[ToolCallReply("get_weather", '{"city": "Paris"}')]),
        Reply(text=["It is sunny."]),
    )
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
    # The fake refuses tool_use blocks not answered in the next message: this one is.
    assert text_of(await collect(session, follow_up)) == "It is sunny."


async def test_empty_messages_are_left_out(
    anthropic_api: FakeAnthropicApi, model: AnthropicLanguageModel
) -> None:
    history = (
        ChatMessage(role="assistant", content="  "),
        ChatMessage(role="user", content="Hi"),
    )
    assert text_of(await collect(await model.open(), LlmRequest(messages=history))) == "Hello!"
    body = anthropic_api.messages()[0].body
    assert body is not None
    assert [message["role"] for message in body["messages"]] == ["user"]


async def test_a_wrong_key_raises_the_vendors_message_without_the_key(
    anthropic_api: FakeAnthropicApi,
) -> None:
    wrong = "sk-ant-wrong-" + "w" * 30
    llm = AnthropicLanguageModel(spec_for(anthropic_api), wrong)
    try:
        with pytest.raises(ProviderError, match="HTTP 401: invalid x-api-key") as raised:
            await collect(await llm.open(), HELLO)
    finally:
        await llm.aclose()
    assert wrong not in str(raised.value)


@pytest.mark.parametrize("status", [429, 529])
async def test_an_error_status_raises_with_the_vendors_message(
    anthropic_api: FakeAnthropicApi, model: AnthropicLanguageModel, status: int
) -> None:
    anthropic_api.script(Reply(status=status, error_message="Overloaded"))
    with pytest.raises(ProviderError, match=f"HTTP {status}: Overloaded"):
        await collect(await model.open(), HELLO)


async def test_an_error_event_mid_stream_raises_the_vendors_message(
    anthropic_api: FakeAnthropicApi, model: AnthropicLanguageModel
) -> None:
    anthropic_api.script(
        Reply(
            text=["Sure,", " well"], fail_after=2, failure="error_chunk", error_message="Overloaded"
        )
    )
    received: list[str] = []
    with pytest.raises(ProviderError, match="failed mid-reply: Overloaded"):
        async for event in (await model.open()).stream(HELLO):
            if isinstance(event, TextDelta):
                received.append(event.text)
    assert received == ["Sure,"]


async def test_a_stream_ending_before_message_stop_raises(
    anthropic_api: FakeAnthropicApi, model: AnthropicLanguageModel
) -> None:
    anthropic_api.script(Reply(text=["Sure,", " well"], fail_after=2, failure="truncate"))
    with pytest.raises(ProviderError, match="before message_stop"):
        await collect(await model.open(), HELLO)


async def test_no_first_token_within_the_timeout_raises_timed_out(
    anthropic_api: FakeAnthropicApi,
) -> None:
    anthropic_api.script(Reply(text=["Late."], hold_after=0))
    llm = AnthropicLanguageModel(spec_for(anthropic_api, first_token_timeout_ms=200), ANTHROPIC_KEY)
    try:
        with pytest.raises(ProviderError, match="timed out"):
            await collect(await llm.open(), HELLO)
    finally:
        await llm.aclose()


async def test_cancelling_a_held_stream_closes_the_http_stream(
    anthropic_api: FakeAnthropicApi, model: AnthropicLanguageModel
) -> None:
    anthropic_api.script(Reply(text=["Never."], hold_after=0))
    task = asyncio.ensure_future(collect(await model.open(), HELLO))
    await anthropic_api.wait_for_request("/v1/messages")
    task.cancel()
    async with asyncio.timeout(HANG_GUARD_S):
        await anthropic_api.disconnected.wait()
    assert anthropic_api.messages()[0].outcome == "disconnected"


async def test_the_warmed_connection_serves_the_next_request(
    anthropic_api: FakeAnthropicApi, model: AnthropicLanguageModel
) -> None:
    await model.warm_up()
    await collect(await model.open(), HELLO)
    warm, message = anthropic_api.requests[0], anthropic_api.messages()[0]
    assert warm.path == "/v1/models"
    assert message.client_port == warm.client_port
