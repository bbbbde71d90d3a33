import asyncio
from collections.abc import AsyncIterator

import pytest

from voxline.providers.base import ProviderError
from voxline.providers.http import SseEvent, error_text, first_within, redact, sse_events


async def lines_of(*lines: str) -> AsyncIterator[str]:
    for line in lines:
        yield line


async def parse(*lines: str) -> list[SseEvent]:
    return [event async for event in sse_events(lines_of(*lines))]


async def test_sse_data_lines_end_at_a_blank_line() -> None:
    assert await parse('data: {"a": 1}', "", "data: [DONE]", "") == [
        SseEvent("message", '{"a": 1}'),
        SseEvent("message", "[DONE]"),
    ]


async def test_sse_event_names_are_kept() -> None:
    events = await parse("event: message_start", 'data: {"type": "message_start"}', "")
    assert events == [SseEvent("message_start", '{"type": "message_start"}')]


async def test_sse_multiline_data_is_joined_with_newlines() -> None:
    assert await parse("data: one", "data:two", "") == [SseEvent("message", "one\ntwo")]


async def test_sse_comments_and_unknown_fields_are_skipped() -> None:
    events = await parse(": keep-alive", "id: 7", "retry: 100", "data: x", "")
    assert events == [SseEvent("message", "x")]


async def test_sse_an_event_without_data_is_not_dispatched() -> None:
    assert await parse("event: ping", "", "data: x", "") == [SseEvent("message", "x")]


async def test_sse_an_unterminated_last_event_is_dropped() -> None:
    assert await parse("data: complete", "", "data: cut") == [SseEvent("message", "complete")]


async def test_first_within_passes_items_that_start_in_time() -> None:
    deadline = asyncio.get_running_loop().time() + 5
    items = first_within(lines_of("a", "b"), lambda item: item == "a", deadline, "the server")
    assert [item async for item in items] == ["a", "b"]


async def test_first_within_raises_timed_out_when_nothing_starts() -> None:
    never = asyncio.Event()

    async def stalled() -> AsyncIterator[str]:
        yield "role chunk"
        await never.wait()
        yield "token"

    deadline = asyncio.get_running_loop().time() + 0.05
    items = first_within(stalled(), lambda item: item == "token", deadline, "the server")
    with pytest.raises(ProviderError, match="the server timed out"):
        _ = [item async for item in items]


async def test_first_within_no_longer_times_once_started() -> None:
    gate = asyncio.Event()

    async def slow_after_first() -> AsyncIterator[str]:
        yield "token"
        await gate.wait()
        yield "late"

    deadline = asyncio.get_running_loop().time() + 0.05
    items = first_within(slow_after_first(), lambda item: True, deadline, "the server")
    assert await anext(items) == "token"
    later = asyncio.ensure_future(anext(items))
    await asyncio.sleep(0.1)  # past the deadline: the second item must still be waited for
    gate.set()
    assert await later == "late"


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        ({"error": {"message": "Rate limit reached", "type": "requests"}}, "Rate limit reached"),
        (
            {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}},
            "Overloaded",
        ),
        ({"error": "model 'x' not found"}, "model 'x' not found"),
        ({"detail": "Not Found"}, "Not Found"),
        (["not", "an", "object"], None),
    ],
)
def test_error_text_reads_each_vendor_shape(payload: object, message: str | None) -> None:
    assert error_text(payload) == message


def test_redact_hides_every_secret() -> None:
    assert redact("key sk-1 and sk-2", ["sk-1", "sk-2", ""]) == "key [redacted] and [redacted]"
