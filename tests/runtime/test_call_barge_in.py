"""Simulated calls: barge-in, backchannels, false interruptions, speculation."""

from __future__ import annotations

import asyncio

from voxline.agent_spec import ScriptedRule

from .calls import scripted_spec, simulated_call
from .fakes import eventually

LONG_REPLY = (
    "Sure, our opening hours are from nine in the morning until five in the evening, "
    "every day except Sunday."
)
HOURS = ScriptedRule(match="hours", say=LONG_REPLY)


async def test_barge_in_cuts_the_agent_and_keeps_only_the_heard_words() -> None:
    spec = scripted_spec(
        transcripts=["What are your hours?", "Do you open on Sunday?"], rules=[HOURS]
    )
    async with simulated_call(spec) as call:
        await call.agent_done(1)
        await call.transport.speak(400)
        await eventually(lambda: len(call.items("agent")) == 2)
        await asyncio.sleep(1.0)
        await call.transport.speak(400)
        await call.agent_done(3)
        reply = call.items("agent")[1]
        kinds = call.transport.kinds()
    assert reply.interrupted
    assert reply.heard_text
    assert LONG_REPLY.startswith(reply.heard_text)
    assert len(reply.heard_text) < len(LONG_REPLY) - 20
    clear_at = kinds.index("clear")
    assert "audio" in kinds[:clear_at]
    interrupted = call.transport.events_of("agent.interrupted")
    assert interrupted[0].heard_text == reply.heard_text
    messages = [(m.role, m.content) for m in call.last_request_messages()]
    assert messages[-3:] == [
        ("user", "What are your hours?"),
        ("assistant", reply.heard_text),
        ("user", "Do you open on Sunday?"),
    ]


async def test_no_audio_of_an_interrupted_reply_is_sent_after_the_clear() -> None:
    spec = scripted_spec(transcripts=["What are your hours?", "Stop."], rules=[HOURS])
    async with simulated_call(spec) as call:
        await call.agent_done(1)
        await call.transport.speak(400)
        await eventually(lambda: len(call.items("agent")) == 2)
        await asyncio.sleep(0.6)
        await call.transport.speak(400)
        await call.agent_done(3)
        label = call.items("agent")[1].data["response"]
        log = call.transport.log
    clear_at = next(i for i, entry in enumerate(log) if entry.kind == "clear")
    later_marks = [e.name for e in log[clear_at:] if e.kind == "mark"]
    assert later_marks
    assert not any(name.startswith(f"{label}.") for name in later_marks)


async def test_a_backchannel_does_not_interrupt_the_agent() -> None:
    spec = scripted_spec(transcripts=["What are your hours?", "Uh huh."], rules=[HOURS])
    async with simulated_call(spec) as call:
        await call.agent_done(1)
        await call.transport.speak(400)
        await eventually(lambda: len(call.items("agent")) == 2)
        sent_before = call.stt.samples_sent
        await asyncio.sleep(0.5)
        await call.transport.speak(120)
        await call.agent_done(2)
        reply = call.items("agent")[1]
        assert call.stt.samples_sent == sent_before
    assert not reply.interrupted
    assert reply.heard_text == LONG_REPLY
    assert "clear" not in call.transport.kinds()
    assert [item.text for item in call.items("caller")] == ["What are your hours?"]


async def test_a_false_interruption_resumes_the_unheard_rest() -> None:
    spec = scripted_spec(transcripts=["What are your hours?", ""], rules=[HOURS])
    async with simulated_call(spec) as call:
        await call.agent_done(1)
        await call.transport.speak(400)
        await eventually(lambda: len(call.items("agent")) == 2)
        await asyncio.sleep(1.0)
        await call.transport.speak(300)
        await call.agent_done(3)
        cut, resumed = call.items("agent")[1:3]
        await call.transport.speak(300)  # the next transcript is "What are your hours?" again
        await eventually(lambda: len(call.llm.requests) >= 2)
    assert cut.interrupted
    assert resumed.data["kind"] == "resume"
    assert f"{cut.heard_text} {resumed.text}" == LONG_REPLY
    assert [event.text for event in call.transport.events_of("agent.resumed")] == [resumed.text]
    assert not resumed.interrupted
    assert [item.text for item in call.items("caller")] == ["What are your hours?"]
    assistant = [m.content for m in call.llm.requests[-1].messages if m.role == "assistant"]
    assert assistant[-1] == LONG_REPLY


async def test_a_speculative_reply_is_dropped_when_the_caller_goes_on() -> None:
    spec = scripted_spec(
        transcripts=["I would like", "a table for two."],
        rules=[ScriptedRule(match="table", say="Sure, for when?")],
    )
    async with simulated_call(spec) as call:
        await call.agent_done(1)
        await call.transport.speak(400)
        await eventually(lambda: len(call.llm.requests) == 1)  # speculating on "I would like"
        await call.transport.pause(150)
        await call.transport.speak(400)
        await call.agent_done(2)
        speculative_label = "r2"
    assert [(m.role, m.content) for m in call.llm.requests[0].messages][-1] == (
        "user",
        "I would like",
    )
    assert [item.text for item in call.items("caller")] == ["I would like a table for two."]
    assert call.agent_texts() == ["Hi there.", "Sure, for when?"]
    marks = [e.name for e in call.transport.log if e.kind == "mark"]
    assert not any(name.startswith(f"{speculative_label}.") for name in marks)
    history = [(m.role, m.content) for m in call.last_request_messages()]
    assert history[-1] == ("user", "I would like a table for two.")
    assert ("user", "I would like") not in history
