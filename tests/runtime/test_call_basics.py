"""Simulated calls: greeting, turns, typed text, keypad, idle and time limits."""

from __future__ import annotations

import asyncio

import pytest

from voxline.agent_spec import Limits, ScriptedRule
from voxline.runtime.line_cache import LineCache
from voxline.runtime.options import RuntimeOptions

from .calls import scripted_spec, simulated_call
from .fakes import eventually


async def test_greeting_is_heard_first_and_first_response_is_measured() -> None:
    async with simulated_call(scripted_spec(first_message="Hello from {{company}}.")) as call:
        await call.agent_done(1)
        assert call.transport.kinds()[0] == "audio"
        greeting = call.items("agent")[0]
        assert greeting.text == "Hello from Acme."
        assert greeting.heard_text == "Hello from Acme."
        assert greeting.data["kind"] == "greeting"
        call.transport.hang_up_caller()
        outcome = await call.outcome()
    assert outcome.end_reason == "caller_hangup"
    assert outcome.first_response_ms is not None and outcome.first_response_ms > 0


async def test_caller_turns_are_answered_in_order() -> None:
    spec = scripted_spec(
        transcripts=["What time do you open?", "Thanks."],
        rules=[
            ScriptedRule(match="open", say="We open at nine."),
            ScriptedRule(match="thanks", say="You're welcome."),
        ],
    )
    async with simulated_call(spec) as call:
        await call.agent_done(1)
        await call.transport.speak(500)
        await call.agent_done(2)
        await call.transport.speak(400)
        await call.agent_done(3)
        roles_and_texts = [(item.role, item.text) for item in call.items()]
    assert roles_and_texts == [
        ("agent", "Hi there."),
        ("caller", "What time do you open?"),
        ("agent", "We open at nine."),
        ("caller", "Thanks."),
        ("agent", "You're welcome."),
    ]
    history = [(m.role, m.content) for m in call.last_request_messages()]
    assert history == [
        ("system", "You are Acme's assistant."),
        ("assistant", "Hi there."),
        ("user", "What time do you open?"),
        ("assistant", "We open at nine."),
        ("user", "Thanks."),
    ]


async def test_the_cached_greeting_needs_no_tts_and_providers_connect_after_it() -> None:
    cache = LineCache()
    spec = scripted_spec(first_message="Welcome to Acme. How can I help?")
    async with simulated_call(spec, cache=cache) as first:
        await first.agent_done(1)
    async with simulated_call(spec, cache=cache) as second:
        await second.agent_done(1)
        first_audio = second.transport.log[0].at
    assert first.tts.texts[:2] == ["Welcome to Acme.", "How can I help?"]
    assert "Welcome to Acme." not in second.tts.texts
    assert "How can I help?" not in second.tts.texts
    for opened_at in (second.stt.opened_at, second.llm.opened_at, second.tts.opened_at):
        assert opened_at is not None and opened_at >= first_audio


async def test_memory_notes_follow_the_system_prompt() -> None:
    spec = scripted_spec(transcripts=["Hi."])
    async with simulated_call(spec, memory=("Prefers mornings.",)) as call:
        await call.agent_done(1)
        await call.transport.speak(300)
        await call.agent_done(2)
    system = call.llm.requests[0].messages[0]
    assert system.role == "system"
    assert system.content.startswith("You are Acme's assistant.")
    assert system.content.endswith("- Prefers mornings.")


async def test_typed_text_is_answered_like_speech() -> None:
    spec = scripted_spec(rules=[ScriptedRule(match="price", say="It is ten dollars.")])
    async with simulated_call(spec) as call:
        await call.agent_done(1)
        call.transport.type_text("What is the price?")
        await call.agent_done(2)
    assert call.items("caller")[0].data["source"] == "text"
    assert call.agent_texts()[-1] == "It is ten dollars."
    assert call.stt.finalizes == 0


async def test_keypad_digits_reach_the_llm_as_one_input() -> None:
    spec = scripted_spec(rules=[ScriptedRule(match="keypad: 1 2 3 #", say="Got it.")])
    async with simulated_call(spec) as call:
        await call.agent_done(1)
        for digit in "123#":
            call.transport.press(digit)
        await call.agent_done(2)
    assert [item.text for item in call.items("dtmf")] == ["123#"]
    assert call.agent_texts()[-1] == "Got it."
    assert call.last_request_messages()[-1].content == "[keypad: 1 2 3 #]"


async def test_keypad_input_completes_after_a_pause() -> None:
    spec = scripted_spec(rules=[ScriptedRule(match="keypad: 4 2", say="Got it.")])
    async with simulated_call(spec, options=RuntimeOptions(dtmf_timeout_s=0.3)) as call:
        await call.agent_done(1)
        call.transport.press("4")
        call.transport.press("2")
        await call.agent_done(2)
    assert [item.text for item in call.items("dtmf")] == ["42"]


async def test_silence_gets_a_reprompt_then_a_goodbye_and_hang_up() -> None:
    spec = scripted_spec(limits=Limits(idle_timeout_s=1.0, idle_reprompts=1))
    async with simulated_call(spec) as call:
        outcome = await call.outcome(within=15)
    assert outcome.end_reason == "idle_timeout"
    assert call.agent_texts() == ["Hi there.", "Are you still there?", "Goodbye!"]
    assert call.items("agent")[-1].heard_text == "Goodbye!"
    assert call.transport.kinds()[-1] == "hangup"


async def test_the_time_limit_ends_the_call_with_its_message() -> None:
    # Built without validation: the spec's minimum of 10 s would make a slow test.
    spec = scripted_spec(
        limits=Limits.model_construct(**{**Limits().model_dump(), "max_duration_s": 1})
    )
    async with simulated_call(spec) as call:
        outcome = await call.outcome(within=15)
    assert outcome.end_reason == "max_duration"
    assert call.agent_texts()[-1] == Limits().max_duration_message
    assert call.transport.kinds()[-1] == "hangup"


async def test_an_llm_failure_mid_turn_is_answered_with_the_apology() -> None:
    spec = scripted_spec(
        transcripts=["What are your hours?", "Hello?"],
        rules=[ScriptedRule(match="hours", say="We open at nine every day.")],
    )
    async with simulated_call(spec, llm_fail_on={0}) as call:
        await call.agent_done(1)
        await call.transport.speak(400)
        await call.agent_done(2)
        await call.transport.speak(300)
        await call.agent_done(3)
    apology = Limits().apology_message
    assert call.agent_texts()[1].endswith(apology)
    assert call.agent_texts()[2] == "Okay."


async def test_a_recognizer_failure_is_answered_with_the_apology() -> None:
    spec = scripted_spec(transcripts=["What are your hours?", "Hello?"])
    async with simulated_call(spec, stt_fail_on={0}) as call:
        await call.agent_done(1)
        await call.transport.speak(400)
        await call.agent_done(2)
        await call.transport.speak(300)
        await call.agent_done(3)
    assert call.agent_texts()[1:] == [Limits().apology_message, "Okay."]
    assert call.items("agent")[1].data["kind"] == "apology"


async def test_turn_metrics_account_for_the_latency() -> None:
    spec = scripted_spec(
        transcripts=["Yes."], rules=[ScriptedRule(match="yes", say="Great, done.")]
    )
    async with simulated_call(spec) as call:
        await call.agent_done(1)
        await call.transport.speak(400)
        await call.agent_done(2)
        await eventually(lambda: call.recorder.metrics)
    metrics = call.recorder.metrics[0]
    assert metrics.turn == 1 and not metrics.interrupted
    parts = [
        metrics.end_of_turn_wait_ms,
        metrics.stt_ms,
        metrics.llm_first_token_ms,
        metrics.first_clause_ms,
        metrics.tts_first_byte_ms,
    ]
    assert all(part is not None and part >= 0 for part in parts)
    assert metrics.turn_latency_ms is not None and metrics.overhead_ms is not None
    assert sum(p for p in parts if p is not None) + metrics.overhead_ms == pytest.approx(
        metrics.turn_latency_ms
    )
    assert call.transport.events_of("turn.metrics")[0].turn == 1


async def test_a_call_at_8_khz_is_heard_and_answered() -> None:
    spec = scripted_spec(transcripts=["Hello."], rules=[ScriptedRule(match="hello", say="Hi!")])
    async with simulated_call(spec, rate=8000) as call:
        await call.agent_done(1)
        await call.transport.speak(400)
        await call.agent_done(2)
        sent = sum(e.samples for e in call.transport.log if e.kind == "audio")
    assert call.agent_texts() == ["Hi there.", "Hi!"]
    # 12 characters of scripted speech at 25 ms each, at 8 kHz (give or take the filter).
    assert sent == pytest.approx(len("Hi there.Hi!") * 0.025 * 8000, rel=0.05)


async def test_a_provider_that_cannot_connect_ends_the_call_with_an_apology() -> None:
    async with simulated_call(scripted_spec(), llm_open_fails=True) as call:
        outcome = await call.outcome()
    assert outcome.end_reason == "error"
    assert outcome.error is not None and "model server is down" in outcome.error
    assert call.agent_texts()[-1] == Limits().apology_message
    assert call.transport.kinds()[-1] == "hangup"
    ended = call.transport.events_of("session.ended")
    assert ended[0].reason == "error"


async def test_hanging_up_mid_answer_records_what_was_heard() -> None:
    spec = scripted_spec(
        transcripts=["Tell me everything."],
        rules=[
            ScriptedRule(
                match="everything",
                say="Well, there is a lot to tell you about our company and its long history.",
            )
        ],
    )
    async with simulated_call(spec) as call:
        await call.agent_done(1)
        await call.transport.speak(400)
        await eventually(lambda: len(call.items("agent")) == 2)
        await asyncio.sleep(0.5)
        call.transport.hang_up_caller()
        outcome = await call.outcome()
    answer = call.items("agent")[1]
    assert outcome.end_reason == "caller_hangup"
    assert answer.interrupted
    assert answer.heard_text and answer.text.startswith(answer.heard_text)
    assert answer.heard_text != answer.text


async def test_text_typed_before_the_greeting_is_answered_instead_of_greeted_over() -> None:
    spec = scripted_spec(rules=[ScriptedRule(match="hours", say="Nine to five.")])
    async with simulated_call(spec) as call:
        call.transport.type_text("What are your hours?")
        await call.agent_done(1)
        await asyncio.sleep(0.3)
        items = [(item.role, item.text, item.interrupted) for item in call.items()]
    assert items[:2] == [
        ("caller", "What are your hours?", False),
        ("agent", "Nine to five.", False),
    ]
