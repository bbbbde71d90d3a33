"""The llama.cpp provider: generation logic on a stand-in model, then the bundled Gemma 3 270M."""

import asyncio
import logging
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from voxline.agent_spec import LlamaCppLlm
from voxline.providers.base import (
    ChatMessage,
    LlmEvent,
    LlmRequest,
    ProviderError,
    ProviderUnavailable,
    TextDelta,
    ToolCallsRequested,
    ToolDefinition,
    Usage,
)
from voxline.providers.executor import InferenceExecutor
from voxline.providers.llm.llama_cpp import LlamaCppLanguageModel, LlamaCppSession, LlamaModel
from voxline.providers.llm.prompting import ChatTemplateFormat, PromptFormat, TranscriptFormat

END_CALL = ToolDefinition(name="end_call", description="End the call.", parameters={})
GREETING = (
    ChatMessage("system", "You are a receptionist at a restaurant. Keep answers short."),
    ChatMessage("assistant", "Hello, how can I help?"),
    ChatMessage("user", "I would like to book a table for two tomorrow."),
)
# With greedy decoding the bundled model answers this with one line of about 50 tokens.
COUNTING = (
    ChatMessage("system", "You read numbers aloud."),
    ChatMessage("user", "Count from 1 to 100."),
    ChatMessage("assistant", "1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15"),
    ChatMessage("user", "Again please."),
)


class FakeLlama:
    """Stands in for llama_cpp.Llama: one token per word, replies with the given pieces."""

    def __init__(self, pieces: list[str], error: Exception | None = None) -> None:
        self.pieces = pieces
        self.error = error
        self.completions: list[dict[str, Any]] = []

    def n_ctx(self) -> int:
        return 512

    def tokenize(self, text: bytes, add_bos: bool = True, special: bool = False) -> list[int]:
        return [0] * len(text.split())

    def create_completion(self, tokens: list[int], **options: Any) -> Iterator[dict[str, Any]]:
        self.completions.append(options)
        if self.error is not None:
            raise self.error
        return ({"choices": [{"text": piece}]} for piece in self.pieces)


def fake_model(pieces: list[str], prompt_format: PromptFormat | None = None) -> LlamaModel:
    llama: Any = FakeLlama(pieces)
    return LlamaModel(llama, prompt_format or TranscriptFormat(), Path("fake.gguf"))


def chat_format() -> ChatTemplateFormat:
    return ChatTemplateFormat(lambda messages: (str(messages), ("<eos>",)))


async def collect(session: LlamaCppSession, request: LlmRequest) -> list[LlmEvent]:
    return [event async for event in session.stream(request)]


def text_of(events: list[LlmEvent]) -> str:
    return "".join(event.text for event in events if isinstance(event, TextDelta))


def usage_of(events: list[LlmEvent]) -> Usage:
    assert isinstance(events[-1], Usage)
    return events[-1]


async def test_reply_streams_deltas_without_the_leading_space_then_usage(
    executor: InferenceExecutor,
) -> None:
    model = fake_model([" ", " Sure", ", table", " for two."])
    session = LlamaCppSession(LlamaCppLlm(), model, executor)
    events = await collect(session, LlmRequest(messages=GREETING))
    assert events[:-1] == [TextDelta("Sure"), TextDelta(", table"), TextDelta(" for two.")]
    assert usage_of(events).output_tokens == 4  # one per word of "Sure, table for two."


async def test_generation_uses_the_spec_temperature_and_max_tokens(
    executor: InferenceExecutor,
) -> None:
    model = fake_model(["Hi."])
    spec = LlamaCppLlm(temperature=0.2, max_tokens=7)
    await collect(LlamaCppSession(spec, model, executor), LlmRequest(messages=GREETING))
    options = model.llama.completions[0]  # type: ignore[attr-defined]
    assert (options["temperature"], options["max_tokens"]) == (0.2, 7)


async def test_chat_model_tool_call_reply_becomes_a_tool_call_and_is_not_spoken(
    executor: InferenceExecutor,
) -> None:
    model = fake_model(['{"tool": "end_call",', ' "arguments": {}}'], chat_format())
    session = LlamaCppSession(LlamaCppLlm(), model, executor)
    events = await collect(session, LlmRequest(messages=GREETING, tools=(END_CALL,)))
    assert text_of(events) == ""
    (requested,) = [event for event in events if isinstance(event, ToolCallsRequested)]
    assert [call.name for call in requested.calls] == ["end_call"]


async def test_transcript_model_is_offered_no_tools_and_says_so_once(
    executor: InferenceExecutor, caplog: pytest.LogCaptureFixture
) -> None:
    model = fake_model(['{"tool": "end_call"}'])
    session = LlamaCppSession(LlamaCppLlm(), model, executor)
    request = LlmRequest(messages=GREETING, tools=(END_CALL,))
    with caplog.at_level(logging.WARNING):
        first = await collect(session, request)
        await collect(session, request)
    assert text_of(first) == '{"tool": "end_call"}'
    assert not any(isinstance(event, ToolCallsRequested) for event in first)
    assert len([r for r in caplog.records if "cannot call tools" in r.message]) == 1


async def test_engine_failure_is_a_provider_error(executor: InferenceExecutor) -> None:
    llama: Any = FakeLlama([], error=RuntimeError("llama_decode returned -1"))
    model = LlamaModel(llama, TranscriptFormat(), Path("fake.gguf"))
    session = LlamaCppSession(LlamaCppLlm(), model, executor)
    with pytest.raises(ProviderError, match="llama_decode returned -1"):
        await collect(session, LlmRequest(messages=GREETING))


async def test_closed_session_refuses_to_stream(executor: InferenceExecutor) -> None:
    session = LlamaCppSession(LlamaCppLlm(), fake_model(["Hi."]), executor)
    await session.aclose()
    with pytest.raises(ProviderError, match="closed"):
        await collect(session, LlmRequest(messages=GREETING))


async def test_missing_gguf_file_is_unavailable(
    executor: InferenceExecutor, tmp_path: Path
) -> None:
    spec = LlamaCppLlm(model_path=str(tmp_path / "absent.gguf"))
    with pytest.raises(ProviderUnavailable, match=r"absent\.gguf"):
        await LlamaCppLanguageModel.create(spec, executor)


async def test_missing_llama_cpp_package_names_it(
    executor: InferenceExecutor, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "llama_cpp", None)
    with pytest.raises(ProviderUnavailable, match=r"llama-cpp-python.*voxline\[local\]"):
        await LlamaCppLanguageModel.create(LlamaCppLlm(), executor)


# --- the bundled model --------------------------------------------------------------------


@pytest.fixture
async def gemma(executor: InferenceExecutor, model_cache_dir: Path) -> LlamaCppLanguageModel:
    spec = LlamaCppLlm(temperature=0.0, max_tokens=120)
    model = await LlamaCppLanguageModel.create(spec, executor, cache_dir=model_cache_dir)
    await model.warm_up()
    return model


@pytest.mark.models
async def test_bundled_model_answers_a_call_with_one_short_streamed_line(
    gemma: LlamaCppLanguageModel,
) -> None:
    events = await collect(await gemma.open(), LlmRequest(messages=GREETING))
    deltas = [event for event in events if isinstance(event, TextDelta)]
    reply = text_of(events)
    assert len(deltas) >= 3
    assert reply.strip()
    assert "\n" not in reply
    assert 0 < usage_of(events).output_tokens < 60


@pytest.mark.models
async def test_bundled_model_stops_at_the_end_of_the_line(
    gemma: LlamaCppLanguageModel,
) -> None:
    events = await collect(await gemma.open(), LlmRequest(messages=COUNTING))
    assert "\n" not in text_of(events)
    assert 20 < usage_of(events).output_tokens < gemma.spec.max_tokens


@pytest.mark.models
async def test_bundled_model_stops_generating_soon_after_the_consumer_leaves(
    gemma: LlamaCppLanguageModel, executor: InferenceExecutor
) -> None:
    session = await gemma.open()
    full = usage_of(await collect(session, LlmRequest(messages=COUNTING)))
    stream = session.stream(LlmRequest(messages=COUNTING))
    deltas = 0
    async for event in stream:
        deltas += isinstance(event, TextDelta)
        if deltas == 2:
            break
    await stream.aclose()
    model = gemma.model
    await executor.run(model.lock.acquire)  # taken once the abandoned generation has ended
    try:
        generated = model.llama.n_tokens - full.input_tokens
    finally:
        model.lock.release()
    assert generated <= 5 < full.output_tokens


@pytest.mark.models
async def test_concurrent_calls_on_one_model_take_turns_and_both_finish(
    gemma: LlamaCppLanguageModel,
) -> None:
    first, second = await gemma.open(), await gemma.open()
    results = await asyncio.gather(
        collect(first, LlmRequest(messages=GREETING)),
        collect(second, LlmRequest(messages=COUNTING)),
    )
    assert all(isinstance(events[-1], Usage) and text_of(events) for events in results)


@pytest.mark.models
async def test_the_model_is_loaded_once_per_process(
    gemma: LlamaCppLanguageModel, executor: InferenceExecutor, model_cache_dir: Path
) -> None:
    again = await LlamaCppLanguageModel.create(
        LlamaCppLlm(temperature=0.9), executor, cache_dir=model_cache_dir
    )
    assert again.model is gemma.model


async def test_prefill_evaluates_the_prompt_without_generating_a_reply(
    executor: InferenceExecutor,
) -> None:
    model = fake_model(["Hi."])
    session = LlamaCppSession(LlamaCppLlm(), model, executor)
    await session.prefill(LlmRequest(messages=GREETING))
    llama: Any = model.llama
    assert [options["max_tokens"] for options in llama.completions] == [1]


@pytest.mark.models
async def test_bundled_model_answers_from_a_prefilled_prompt(
    gemma: LlamaCppLanguageModel,
) -> None:
    # Evaluating the prompt in other batches changes the floating-point sums a little, so the
    # wording may differ from an answer without prefill: check it is a proper answer.
    session = await gemma.open()
    await session.prefill(LlmRequest(messages=GREETING[:-1]))
    reply = text_of(await collect(session, LlmRequest(messages=GREETING)))
    assert reply.strip()
    assert "\n" not in reply
