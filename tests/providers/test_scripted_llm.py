import asyncio
from typing import Any

import pytest

from voxline.agent_spec import ScriptedLlm, ScriptedRule, ScriptedToolCall
from voxline.providers.base import (
    ChatMessage,
    LlmEvent,
    LlmRequest,
    ProviderError,
    TextDelta,
    ToolCall,
    ToolCallsRequested,
    Usage,
)
from voxline.providers.scripted import ScriptedLanguageModel, ScriptedLlmSession

HOURS = ScriptedRule(match=r"\bhours?\b", say="We open at nine.")
WEATHER = ScriptedRule(
    match="weather",
    say="Let me check.",
    tool=ScriptedToolCall(name="get_weather", arguments={"city": "Oslo"}),
    then_say="It is {result} today.",
)
GOODBYE = ScriptedRule(match="bye", tool=ScriptedToolCall(name="end_call"))


async def open_session(*rules: ScriptedRule, **options: Any) -> ScriptedLlmSession:
    spec = ScriptedLlm(rules=list(rules), first_token_ms=0, tokens_per_second=10_000, **options)
    return await ScriptedLanguageModel(spec).open()


def user(text: str) -> ChatMessage:
    return ChatMessage(role="user", content=text)


async def events(session: ScriptedLlmSession, *messages: ChatMessage) -> list[LlmEvent]:
    return [event async for event in session.stream(LlmRequest(messages=messages))]


def text_of(stream: list[LlmEvent]) -> str:
    return "".join(event.text for event in stream if isinstance(event, TextDelta))


async def test_matching_rule_is_streamed_word_by_word() -> None:
    session = await open_session(HOURS)
    stream = await events(session, user("What are your hours?"))
    deltas = [event.text for event in stream if isinstance(event, TextDelta)]
    assert deltas == ["We", " open", " at", " nine."]


async def test_rules_match_case_insensitively_anywhere_in_the_text() -> None:
    session = await open_session(HOURS)
    assert text_of(await events(session, user("OPENING HOURS please"))) == "We open at nine."


async def test_first_matching_rule_wins() -> None:
    other = ScriptedRule(match="hours", say="Second rule.")
    session = await open_session(HOURS, other)
    assert text_of(await events(session, user("hours"))) == "We open at nine."


async def test_no_matching_rule_gives_the_default_reply() -> None:
    session = await open_session(HOURS, default_reply="Say again?")
    assert text_of(await events(session, user("hello"))) == "Say again?"


async def test_rules_look_at_the_last_user_message() -> None:
    session = await open_session(HOURS, default_reply="Say again?")
    history = (user("hours?"), ChatMessage(role="assistant", content="..."), user("hi"))
    assert text_of(await events(session, *history)) == "Say again?"


async def test_tool_rule_speaks_then_requests_the_tool_then_reports_usage() -> None:
    session = await open_session(WEATHER)
    stream = await events(session, user("how is the weather"))
    assert text_of(stream) == "Let me check."
    assert stream[-2] == ToolCallsRequested(
        calls=(ToolCall(id="call_1", name="get_weather", arguments={"city": "Oslo"}),)
    )
    assert isinstance(stream[-1], Usage)


async def test_tool_rule_without_words_requests_the_tool_alone() -> None:
    session = await open_session(GOODBYE)
    stream = await events(session, user("bye now"))
    assert [type(event) for event in stream] == [ToolCallsRequested, Usage]


async def test_tool_call_ids_are_unique_within_a_session() -> None:
    session = await open_session(GOODBYE)
    ids: list[str] = []
    for _ in range(2):
        stream = await events(session, user("bye"))
        ids.extend(c.id for e in stream if isinstance(e, ToolCallsRequested) for c in e.calls)
    assert ids == ["call_1", "call_2"]


async def test_tool_result_is_answered_with_then_say() -> None:
    session = await open_session(WEATHER)
    first = await events(session, user("weather?"))
    (call,) = next(e for e in first if isinstance(e, ToolCallsRequested)).calls
    history = (
        user("weather?"),
        ChatMessage(role="assistant", content="Let me check.", tool_calls=(call,)),
        ChatMessage(role="tool", content='"sunny"', tool_call_id=call.id, name=call.name),
    )
    stream = await events(session, *history)
    assert text_of(stream) == 'It is "sunny" today.'
    assert not any(isinstance(event, ToolCallsRequested) for event in stream)


async def test_tool_result_from_another_session_finds_the_rule_by_tool_name() -> None:
    session = await open_session(HOURS, WEATHER)
    call = ToolCall(id="call_9", name="get_weather", arguments={})
    history = (
        user("weather?"),
        ChatMessage(role="assistant", tool_calls=(call,)),
        ChatMessage(role="tool", content="rainy", tool_call_id="call_9"),
    )
    assert text_of(await events(session, *history)) == "It is rainy today."


async def test_tool_result_of_a_rule_without_then_say_gets_no_words() -> None:
    session = await open_session(GOODBYE)
    first = await events(session, user("bye"))
    (call,) = next(e for e in first if isinstance(e, ToolCallsRequested)).calls
    history = (
        user("bye"),
        ChatMessage(role="assistant", tool_calls=(call,)),
        ChatMessage(role="tool", content="{}", tool_call_id=call.id),
    )
    assert [type(event) for event in await events(session, *history)] == [Usage]


async def test_usage_counts_words_in_and_out() -> None:
    session = await open_session(HOURS)
    stream = await events(session, ChatMessage(role="system", content="Be brief."), user("hours"))
    assert stream[-1] == Usage(input_tokens=3, output_tokens=4)


async def test_tokens_are_paced_from_the_first_token_deadline(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    now = 100.0
    delays: list[float] = []

    async def fake_sleep(delay: float) -> None:
        nonlocal now
        delays.append(delay)
        now += delay

    monkeypatch.setattr(asyncio.get_running_loop(), "time", lambda: now)
    monkeypatch.setattr("voxline.providers.scripted.llm.asyncio.sleep", fake_sleep)
    spec = ScriptedLlm(rules=[HOURS], first_token_ms=500, tokens_per_second=20)
    session = await ScriptedLanguageModel(spec).open()
    await events(session, user("hours"))
    assert delays == pytest.approx([0.5, 0.05, 0.05, 0.05])


async def test_cancelling_stops_the_stream_at_once() -> None:
    spec = ScriptedLlm(rules=[HOURS], first_token_ms=0, tokens_per_second=0.01)
    session = await ScriptedLanguageModel(spec).open()
    received: list[LlmEvent] = []
    first = asyncio.Event()

    async def consume() -> None:
        async for event in session.stream(LlmRequest(messages=(user("hours"),))):
            received.append(event)
            first.set()

    task = asyncio.create_task(consume())
    await first.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert received == [TextDelta("We")]


async def test_closed_session_refuses_requests() -> None:
    session = await open_session(HOURS)
    await session.aclose()
    with pytest.raises(ProviderError, match="closed"):
        await events(session, user("hours"))
