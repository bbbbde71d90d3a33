"""The analysis against the OpenAI-compatible and Anthropic wire fakes: a valid answer, an
invalid one corrected on the second try, invalid twice, and no answer in time."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import pytest

from tests.fakes.anthropic_api import FakeAnthropicApi
from tests.fakes.openai_api import FakeOpenAiApi, RecordedRequest, Reply
from voxline.agent_spec import AnthropicLlm, CallAnalysis, OpenAiLlm
from voxline.analysis.model import AnalysisTimeout, analyse_call, fold_notes
from voxline.analysis.prompt import InvalidAnswer
from voxline.providers.base import LanguageModel
from voxline.providers.llm.anthropic import AnthropicLanguageModel
from voxline.providers.llm.openai import OpenAiLanguageModel

SPEC = CallAnalysis(
    data_schema={
        "type": "object",
        "properties": {"booked": {"type": "boolean"}, "date": {"type": "string"}},
        "required": ["booked"],
    }
)
TRANSCRIPT = [
    {"speaker": "caller", "text": "Can I come on Tuesday?"},
    {"speaker": "agent", "text": "Booked you for Tuesday at nine."},
]
GOOD = {"summary": "Booked Tuesday at nine.", "data": {"booked": True, "date": "Tuesday"}}


class Vendor:
    """One fake vendor and the provider that talks to it."""

    def __init__(self, fake: FakeOpenAiApi | FakeAnthropicApi, llm: LanguageModel) -> None:
        self.fake = fake
        self.llm = llm

    def requests(self) -> list[RecordedRequest]:
        if isinstance(self.fake, FakeOpenAiApi):
            return self.fake.completions()
        return self.fake.messages()

    def conversation(self, request: RecordedRequest) -> list[dict[str, Any]]:
        """The request's messages with the system prompt first, as {role, content} text."""
        assert request.body is not None
        if isinstance(self.fake, FakeOpenAiApi):
            return [{"role": m["role"], "content": m["content"]} for m in request.body["messages"]]
        system = request.body["system"]
        if isinstance(system, list):
            system = "".join(block["text"] for block in system)
        messages = [{"role": "system", "content": system}]
        for message in request.body["messages"]:
            content = message["content"]
            if isinstance(content, list):
                content = "".join(block.get("text", "") for block in content)
            messages.append({"role": message["role"], "content": content})
        return messages


@pytest.fixture(params=["openai", "anthropic"])
async def vendor(request: pytest.FixtureRequest) -> AsyncIterator[Vendor]:
    if request.param == "openai":
        async with FakeOpenAiApi(api_key=None) as api:
            spec = OpenAiLlm(model=api.model, base_url=api.base_url)
            yield Vendor(api, OpenAiLanguageModel(spec, None))
    else:
        async with FakeAnthropicApi(api_key=None) as anthropic:
            llm = AnthropicLlm(model=anthropic.model, base_url=anthropic.base_url)
            yield Vendor(anthropic, AnthropicLanguageModel(llm, None))


def _reply(value: object) -> Reply:
    text = value if isinstance(value, str) else json.dumps(value)
    return Reply(text=[text[: len(text) // 2], text[len(text) // 2 :]])


async def test_a_valid_answer_is_the_analysis(vendor: Vendor) -> None:
    vendor.fake.script(_reply(GOOD))
    answer = await analyse_call(vendor.llm, SPEC, TRANSCRIPT, timeout_s=5)
    assert (answer.summary, answer.data) == (GOOD["summary"], GOOD["data"])
    [request] = vendor.requests()
    system, user = vendor.conversation(request)
    assert system["role"] == "system" and '"booked"' in system["content"]
    assert "Tuesday" not in system["content"]
    assert user["role"] == "user" and "Can I come on Tuesday?" in user["content"]


async def test_an_invalid_answer_is_sent_back_once_with_the_error(vendor: Vendor) -> None:
    vendor.fake.script(_reply({"summary": "Booked.", "data": {"booked": "yes"}}), _reply(GOOD))
    answer = await analyse_call(vendor.llm, SPEC, TRANSCRIPT, timeout_s=5)
    assert answer.data == GOOD["data"]
    first, second = vendor.requests()
    retry = vendor.conversation(second)
    assert retry[:2] == vendor.conversation(first)
    assert retry[2]["role"] == "assistant" and '"yes"' in retry[2]["content"]
    assert retry[3]["role"] == "user" and "'yes' is not of type 'boolean'" in retry[3]["content"]


async def test_an_answer_invalid_twice_fails_with_the_reason(vendor: Vendor) -> None:
    vendor.fake.script(_reply("Booked, I think."), _reply({"summary": "Booked."}))
    with pytest.raises(InvalidAnswer, match=r"invalid twice: .*'data' is a required property"):
        await analyse_call(vendor.llm, SPEC, TRANSCRIPT, timeout_s=5)
    assert len(vendor.requests()) == 2


async def test_a_model_that_stops_answering_times_out(vendor: Vendor) -> None:
    vendor.fake.script(Reply(text=['{"summary": ', '"Booked."}'], hold_after=1))
    with pytest.raises(AnalysisTimeout, match=r"no answer within 0\.3 s"):
        await analyse_call(vendor.llm, SPEC, TRANSCRIPT, timeout_s=0.3)


async def test_notes_are_folded_by_the_model_as_data(vendor: Vendor) -> None:
    vendor.fake.script(Reply(text=["Booked Tuesday; prefers mornings."]))
    text = await fold_notes(vendor.llm, ["Prefers mornings.", "Booked Tuesday."], timeout_s=5)
    assert text == "Booked Tuesday; prefers mornings."
    system, user = vendor.conversation(vendor.requests()[0])
    assert "Prefers mornings." not in system["content"]
    assert "Prefers mornings." in user["content"]
