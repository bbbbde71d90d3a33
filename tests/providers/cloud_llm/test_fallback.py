import asyncio
from collections.abc import AsyncIterator

import pytest

from tests.fakes.anthropic_api import FakeAnthropicApi
from tests.fakes.openai_api import FakeOpenAiApi, Reply
from voxline.agent_spec import AnthropicLlm, OpenAiLlm, ScriptedLlm
from voxline.providers.base import (
    ChatMessage,
    LanguageModel,
    LlmEvent,
    LlmRequest,
    LlmSession,
    ProviderError,
    TextDelta,
)
from voxline.providers.circuits import Circuits
from voxline.providers.fallback import FallbackLanguageModel
from voxline.providers.llm.anthropic import AnthropicLanguageModel
from voxline.providers.llm.openai import OpenAiLanguageModel
from voxline.providers.scripted import ScriptedLanguageModel

from .conftest import ANTHROPIC_KEY, OPENAI_KEY, collect, text_of

# Only guards against a hung test; no assertion depends on it.
HANG_GUARD_S = 10.0

HELLO = LlmRequest(messages=(ChatMessage(role="user", content="Hi"),))


@pytest.fixture
async def chain(
    openai_api: FakeOpenAiApi, anthropic_api: FakeAnthropicApi
) -> AsyncIterator[FallbackLanguageModel]:
    """OpenAI-compatible first (200 ms first-token timeout), then Anthropic."""
    primary = OpenAiLanguageModel(
        OpenAiLlm(
            model=openai_api.model,
            base_url=openai_api.base_url,
            api_key_ref="openai",
            first_token_timeout_ms=200,
        ),
        OPENAI_KEY,
    )
    fallback = AnthropicLanguageModel(
        AnthropicLlm(model=anthropic_api.model, base_url=anthropic_api.base_url), ANTHROPIC_KEY
    )
    yield FallbackLanguageModel([primary, fallback])
    await primary.aclose()
    await fallback.aclose()


class Unopenable:
    name = "unopenable"

    async def open(self) -> LlmSession:
        raise ProviderError("no route to host")


class CountingOpens:
    def __init__(self, model: LanguageModel) -> None:
        self.name = model.name
        self.opens = 0
        self._model = model

    async def open(self) -> LlmSession:
        self.opens += 1
        return await self._model.open()


class Tracked:
    """A scripted model counting how many of its sessions were closed."""

    def __init__(self, reply: str) -> None:
        self.name = "tracked"
        self.closed = 0
        self._model = scripted(reply)

    async def open(self) -> LlmSession:
        return TrackedSession(await self._model.open(), self)


class TrackedSession:
    def __init__(self, inner: LlmSession, owner: Tracked) -> None:
        self._inner = inner
        self._owner = owner

    def stream(self, request: LlmRequest) -> AsyncIterator[LlmEvent]:
        return self._inner.stream(request)

    async def aclose(self) -> None:
        self._owner.closed += 1
        await self._inner.aclose()


def scripted(reply: str) -> ScriptedLanguageModel:
    return ScriptedLanguageModel(ScriptedLlm(default_reply=reply, first_token_ms=0))


async def test_an_error_before_any_output_falls_back_to_the_next(
    chain: FallbackLanguageModel, openai_api: FakeOpenAiApi, anthropic_api: FakeAnthropicApi
) -> None:
    openai_api.script(Reply(status=500))
    anthropic_api.script(Reply(text=["From", " Claude."]))
    assert text_of(await collect(await chain.open(), HELLO)) == "From Claude."
    assert len(openai_api.completions()) == 1


async def test_a_stall_before_the_first_token_falls_back_and_abandons_the_stream(
    chain: FallbackLanguageModel, openai_api: FakeOpenAiApi, anthropic_api: FakeAnthropicApi
) -> None:
    openai_api.script(Reply(text=["Too late."], hold_after=0))
    anthropic_api.script(Reply(text=["In time."]))
    assert text_of(await collect(await chain.open(), HELLO)) == "In time."
    async with asyncio.timeout(HANG_GUARD_S):
        await openai_api.disconnected.wait()
    assert openai_api.completions()[0].outcome == "disconnected"


async def test_the_same_request_goes_to_the_fallback(
    chain: FallbackLanguageModel, openai_api: FakeOpenAiApi, anthropic_api: FakeAnthropicApi
) -> None:
    openai_api.script(Reply(status=503))
    request = LlmRequest(messages=(ChatMessage(role="user", content="What time is it?"),))
    await collect(await chain.open(), request)
    sent = anthropic_api.messages()[0].body
    assert sent is not None
    assert sent["messages"][0]["content"][0]["text"] == "What time is it?"


async def test_a_failure_after_text_raises_without_restarting(
    chain: FallbackLanguageModel, openai_api: FakeOpenAiApi, anthropic_api: FakeAnthropicApi
) -> None:
    openai_api.script(Reply(text=["Sure,", " so"], fail_after=1, failure="disconnect"))
    heard: list[str] = []
    with pytest.raises(ProviderError):
        async for event in (await chain.open()).stream(HELLO):
            if isinstance(event, TextDelta):
                heard.append(event.text)
    assert heard == ["Sure,"]
    assert anthropic_api.messages() == []


async def test_when_every_provider_fails_the_error_names_each(
    chain: FallbackLanguageModel, openai_api: FakeOpenAiApi, anthropic_api: FakeAnthropicApi
) -> None:
    openai_api.script(Reply(status=500, error_message="openai down"))
    anthropic_api.script(Reply(status=529, error_message="Overloaded"))
    with pytest.raises(ProviderError) as raised:
        await collect(await chain.open(), HELLO)
    message = str(raised.value)
    assert "#1 (openai)" in message and "openai down" in message
    assert "#2 (anthropic)" in message and "Overloaded" in message


async def test_the_first_provider_is_tried_again_after_its_rest(
    openai_api: FakeOpenAiApi, anthropic_api: FakeAnthropicApi
) -> None:
    primary = OpenAiLanguageModel(
        OpenAiLlm(model=openai_api.model, base_url=openai_api.base_url, api_key_ref="openai"),
        OPENAI_KEY,
    )
    fallback = AnthropicLanguageModel(
        AnthropicLlm(model=anthropic_api.model, base_url=anthropic_api.base_url), ANTHROPIC_KEY
    )
    openai_api.script(Reply(status=500), Reply(text=["Back again."]))
    session = await FallbackLanguageModel([primary, fallback], circuits=Circuits(0.05)).open()
    await collect(session, HELLO)
    await asyncio.sleep(0.1)
    assert text_of(await collect(session, HELLO)) == "Back again."
    assert len(anthropic_api.messages()) == 1
    await primary.aclose()
    await fallback.aclose()


async def test_a_provider_that_cannot_open_is_skipped() -> None:
    chain = FallbackLanguageModel([Unopenable(), scripted("Still here.")])
    assert text_of(await collect(await chain.open(), HELLO)) == "Still here."


async def test_opening_fails_when_no_provider_can_open() -> None:
    chain = FallbackLanguageModel([Unopenable(), Unopenable()])
    with pytest.raises(ProviderError, match="no route to host"):
        await chain.open()


async def test_fallback_sessions_open_only_when_needed() -> None:
    backup = CountingOpens(scripted("Backup."))
    chain = FallbackLanguageModel([scripted("Primary."), backup])
    session = await chain.open()
    assert text_of(await collect(session, HELLO)) == "Primary."
    assert backup.opens == 0


async def test_closing_closes_every_opened_session() -> None:
    primary, backup = Tracked("Primary."), Tracked("Backup.")
    session = await FallbackLanguageModel([primary, backup]).open()
    await collect(session, HELLO)
    await session.aclose()
    assert (primary.closed, backup.closed) == (1, 0)


def test_a_chain_needs_a_model() -> None:
    with pytest.raises(ValueError, match="at least one"):
        FallbackLanguageModel([])


class _Down:
    """A model whose every stream fails before any output; counts the attempts."""

    name = "down"

    def __init__(self) -> None:
        self.attempts = 0

    async def open(self) -> LlmSession:
        return _DownSession(self)


class _DownSession:
    def __init__(self, owner: _Down) -> None:
        self._owner = owner

    async def stream(self, request: LlmRequest) -> AsyncIterator[LlmEvent]:
        self._owner.attempts += 1
        raise ProviderError("503 overloaded")
        yield TextDelta("never")  # pragma: no cover - makes this an async generator

    async def aclose(self) -> None:
        return None


async def test_a_failed_primary_rests_so_later_turns_go_straight_to_the_fallback() -> None:
    down = _Down()
    session = await FallbackLanguageModel([down, scripted("From the fallback.")]).open()
    first = text_of(await collect(session, HELLO))
    second = text_of(await collect(session, HELLO))
    assert first == second == "From the fallback."
    assert down.attempts == 1


async def test_a_resting_primary_is_still_tried_when_everything_else_fails() -> None:
    down, also_down = _Down(), _Down()
    session = await FallbackLanguageModel([down, also_down]).open()
    for _ in range(2):
        with pytest.raises(ProviderError):
            await collect(session, HELLO)
    assert (down.attempts, also_down.attempts) == (2, 2)
