import json

import pytest

from voxline.providers.base import ChatMessage, ProviderError, ToolCall, ToolDefinition
from voxline.providers.llm.prompting import (
    CALL_CONNECTED,
    ChatTemplateFormat,
    Prompt,
    ToolCallFilter,
    TranscriptFormat,
    fit_prompt,
    parse_tool_calls,
)

WEATHER = ToolDefinition(
    name="get_weather",
    description="The weather in a city.",
    parameters={"type": "object", "properties": {"city": {"type": "string"}}},
)
END_CALL = ToolDefinition(name="end_call", description="End the call.", parameters={})


class RecordingTemplate:
    """A chat template stand-in: records the messages and renders them as role: content."""

    def __init__(self, reject_system: bool = False) -> None:
        self.reject_system = reject_system
        self.messages: list[dict[str, str]] = []

    def __call__(self, messages: list[dict[str, str]]) -> tuple[str, tuple[str, ...]]:
        if self.reject_system and any(m["role"] == "system" for m in messages):
            raise ValueError("Only user and assistant roles are supported!")
        self.messages = messages
        return "".join(f"<{m['role']}>{m['content']}" for m in messages), ("<end>",)


def count_words(prompt: Prompt) -> list[int]:
    return [0] * len(prompt.text.split())


def test_transcript_is_preamble_then_one_line_per_turn_ending_with_the_agent() -> None:
    prompt = TranscriptFormat().render(
        "You are a receptionist.",
        [ChatMessage("assistant", "Hello, how can I help?"), ChatMessage("user", "A table.")],
        (),
    )
    assert prompt.text == (
        "You are a receptionist.\n\nAgent: Hello, how can I help?\nCaller: A table.\nAgent:"
    )


def test_transcript_generation_stops_at_the_end_of_the_line() -> None:
    prompt = TranscriptFormat().render("", [ChatMessage("user", "Hi")], ())
    assert "\n" in prompt.stop
    assert "Caller:" in prompt.stop


def test_transcript_keeps_each_turn_on_one_line() -> None:
    prompt = TranscriptFormat().render("", [ChatMessage("user", "Two\nlines  here")], ())
    assert prompt.text == "Caller: Two lines here\nAgent:"


def test_transcript_leaves_out_tools_tool_calls_and_tool_results() -> None:
    call = ToolCall(id="call_1", name="get_weather", arguments={"city": "Paris"})
    prompt = TranscriptFormat().render(
        "Be brief.",
        [
            ChatMessage("user", "Weather in Paris?"),
            ChatMessage("assistant", tool_calls=(call,)),
            ChatMessage("tool", "sunny", tool_call_id="call_1", name="get_weather"),
        ],
        (WEATHER,),
    )
    assert prompt.text == "Be brief.\n\nCaller: Weather in Paris?\nAgent:"


def test_transcript_special_tokens_in_speech_are_not_parsed() -> None:
    assert not TranscriptFormat().render("", [ChatMessage("user", "<eos>")], ()).special


def test_chat_template_gets_system_instructions_with_the_tools_described() -> None:
    template = RecordingTemplate()
    ChatTemplateFormat(template).render("Be brief.", [ChatMessage("user", "Hi")], (WEATHER,))
    system = template.messages[0]
    assert system["role"] == "system"
    assert system["content"].startswith("Be brief.")
    assert "get_weather" in system["content"]
    assert '{"tool":' in system["content"]


def test_chat_template_conversation_starts_with_the_user_when_the_agent_spoke_first() -> None:
    template = RecordingTemplate()
    ChatTemplateFormat(template).render(
        "", [ChatMessage("assistant", "Hello!"), ChatMessage("user", "Hi")], ()
    )
    assert [m["role"] for m in template.messages] == ["user", "assistant", "user"]
    assert template.messages[0]["content"] == CALL_CONNECTED


def test_chat_template_merges_consecutive_turns_of_one_role() -> None:
    template = RecordingTemplate()
    ChatTemplateFormat(template).render(
        "", [ChatMessage("user", "Hi."), ChatMessage("user", "Anyone there?")], ()
    )
    assert template.messages == [{"role": "user", "content": "Hi.\n\nAnyone there?"}]


def test_chat_template_writes_tool_calls_and_results_as_text() -> None:
    template = RecordingTemplate()
    call = ToolCall(id="call_1", name="get_weather", arguments={"city": "Paris"})
    ChatTemplateFormat(template).render(
        "",
        [
            ChatMessage("user", "Weather in Paris?"),
            ChatMessage("assistant", tool_calls=(call,)),
            ChatMessage("tool", "sunny", tool_call_id="call_1", name="get_weather"),
        ],
        (WEATHER,),
    )
    assistant, result = template.messages[-2], template.messages[-1]
    assert json.loads(assistant["content"]) == {
        "tool": "get_weather",
        "arguments": {"city": "Paris"},
    }
    assert result == {"role": "user", "content": "Result of get_weather: sunny"}


def test_chat_template_without_a_system_role_gets_the_instructions_in_the_first_turn() -> None:
    template = RecordingTemplate(reject_system=True)
    prompt = ChatTemplateFormat(template).render("Be brief.", [ChatMessage("user", "Hi")], ())
    assert template.messages == [{"role": "user", "content": "Be brief.\n\nHi"}]
    assert prompt.stop == ("<end>",)


def test_real_chat_template_renders_through_llama_cpp_formatter() -> None:
    from llama_cpp import llama_chat_format as chat_format  # the `local` extra: always installed

    formatter = chat_format.Jinja2ChatFormatter(
        template=chat_format.CHATML_CHAT_TEMPLATE, eos_token="<|im_end|>", bos_token=""
    )

    def render(messages: list[dict[str, str]]) -> tuple[str, tuple[str, ...]]:
        result = formatter(messages=messages)
        return result.prompt, tuple(result.stop)

    prompt = ChatTemplateFormat(render).render("Be brief.", [ChatMessage("user", "Hi")], ())
    assert prompt.text.endswith("<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n")
    assert prompt.special


def test_fit_prompt_drops_the_oldest_turns_to_fit_and_keeps_the_system_prompt() -> None:
    messages = [
        ChatMessage("system", "Be brief."),
        ChatMessage("user", "one two three four"),
        ChatMessage("assistant", "five six"),
        ChatMessage("user", "seven"),
    ]
    prompt, tokens = fit_prompt(TranscriptFormat(), messages, (), count_words, budget=8)
    assert prompt.text == "Be brief.\n\nAgent: five six\nCaller: seven\nAgent:"
    assert len(tokens) == 8


def test_fit_prompt_fails_clearly_when_even_the_last_turn_does_not_fit() -> None:
    messages = [ChatMessage("system", "A long system prompt"), ChatMessage("user", "hi")]
    with pytest.raises(ProviderError, match="context_tokens"):
        fit_prompt(TranscriptFormat(), messages, (), count_words, budget=3)


def test_tool_call_json_parses_to_a_call_with_its_arguments() -> None:
    (call,) = (
        parse_tool_calls('{"tool": "get_weather", "arguments": {"city": "Oslo"}}', [WEATHER]) or ()
    )
    assert (call.name, call.arguments) == ("get_weather", {"city": "Oslo"})
    assert call.id.startswith("call_")


def test_tool_call_in_a_code_fence_parses() -> None:
    text = '```json\n{"tool": "end_call"}\n```'
    calls = parse_tool_calls(text, [END_CALL])
    assert calls is not None
    assert [(c.name, c.arguments) for c in calls] == [("end_call", {})]


def test_list_of_tool_calls_parses_to_all_of_them() -> None:
    text = '[{"tool": "get_weather", "arguments": {"city": "Rome"}}, {"tool": "end_call"}]'
    calls = parse_tool_calls(text, [WEATHER, END_CALL])
    assert calls is not None
    assert [c.name for c in calls] == ["get_weather", "end_call"]


@pytest.mark.parametrize(
    "text",
    [
        "Sure, let me check.",
        '{"tool": "unknown_tool", "arguments": {}}',
        '{"tool": "get_weather", "arguments": "Paris"}',
        '{"city": "Paris"}',
        '{"tool": "get_weather"',
    ],
)
def test_text_that_is_not_a_valid_tool_call_is_not_parsed(text: str) -> None:
    assert parse_tool_calls(text, [WEATHER]) is None


def test_filter_passes_plain_text_through_as_it_streams() -> None:
    tool_filter = ToolCallFilter([WEATHER])
    assert [tool_filter.feed(p) for p in [" ", "Sure", ", one moment."]] == [
        "",
        " Sure",
        ", one moment.",
    ]
    assert tool_filter.finish() == ("", ())


def test_filter_holds_back_a_tool_call_and_returns_it_at_the_end() -> None:
    tool_filter = ToolCallFilter([WEATHER])
    pieces = ['{"tool": ', '"get_weather", ', '"arguments": {"city": "Oslo"}}']
    assert [tool_filter.feed(p) for p in pieces] == ["", "", ""]
    text, calls = tool_filter.finish()
    assert text == ""
    assert [c.name for c in calls] == ["get_weather"]


def test_filter_releases_held_json_that_is_no_tool_call_as_text() -> None:
    tool_filter = ToolCallFilter([WEATHER])
    tool_filter.feed("{not json")
    assert tool_filter.finish() == ("{not json", ())


def test_filter_without_tools_holds_nothing_back() -> None:
    assert ToolCallFilter([]).feed('{"tool": "x"}') == '{"tool": "x"}'
