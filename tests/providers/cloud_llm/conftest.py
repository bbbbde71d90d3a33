from collections.abc import AsyncIterator

import pytest

from tests.fakes.anthropic_api import FakeAnthropicApi
from tests.fakes.openai_api import FakeOpenAiApi
from voxline.providers.base import LlmEvent, LlmRequest, LlmSession, TextDelta

OPENAI_KEY = "sk-test-openai-" + "o" * 32
ANTHROPIC_KEY = "sk-ant-test-" + "a" * 32


@pytest.fixture
async def openai_api() -> AsyncIterator[FakeOpenAiApi]:
    async with FakeOpenAiApi(api_key=OPENAI_KEY) as api:
        yield api


@pytest.fixture
async def anthropic_api() -> AsyncIterator[FakeAnthropicApi]:
    async with FakeAnthropicApi(api_key=ANTHROPIC_KEY) as api:
        yield api


async def collect(session: LlmSession, request: LlmRequest) -> list[LlmEvent]:
    return [event async for event in session.stream(request)]


def text_of(events: list[LlmEvent]) -> str:
    return "".join(event.text for event in events if isinstance(event, TextDelta))


@pytest.fixture(autouse=True)
def _local_fakes(loopback_egress: None) -> None:
    """The fakes here listen on 127.0.0.1."""
