"""Simulated calls with backchannels on: caller speech over the agent is listened to first."""

from __future__ import annotations

import asyncio

from voxline.agent_spec import Interruptions, ScriptedRule, TurnTaking

from .calls import SimulatedCall, scripted_spec, simulated_call
from .fakes import eventually

LONG_REPLY = (
    "Sure, our opening hours are from nine in the morning until five in the evening, "
    "every day except Sunday, and on public holidays we open at ten."
)
HOURS = ScriptedRule(match="hours", say=LONG_REPLY)
OTHER = ScriptedRule(match="something else", say="Of course, go ahead.")


def listening_spec(*transcripts: str, max_ms: int = 800) -> object:
    interruptions = Interruptions(
        min_speech_ms=200, backchannels=True, backchannel_max_ms=max_ms, listening_volume=0.25
    )
    return scripted_spec(
        transcripts=["What are your hours?", *transcripts],
        rules=[HOURS, OTHER],
        turn_taking=TurnTaking(vad="energy", interruptions=interruptions),
    )


async def _ask_and_talk_over(call: SimulatedCall, ms: int) -> None:
    await call.agent_done(1)
    await call.transport.speak(400)
    await eventually(lambda: len(call.items("agent")) == 2)
    await asyncio.sleep(0.8)
    await call.transport.speak(ms)


async def test_a_backchannel_leaves_the_answer_whole_and_is_recorded_as_one() -> None:
    async with simulated_call(listening_spec("Yeah.")) as call:  # type: ignore[arg-type]
        await _ask_and_talk_over(call, 300)
        await call.agent_done(2)
        reply = call.items("agent")[1]
        backchannels = call.transport.events_of("transcript.backchannel")
    assert "clear" not in call.transport.kinds()
    assert not reply.interrupted and reply.heard_text == LONG_REPLY
    callers = call.items("caller")
    assert [(item.text, item.data.get("backchannel")) for item in callers] == [
        ("What are your hours?", None),
        ("Yeah.", True),
    ]
    assert [event.text for event in backchannels] == ["Yeah."]  # type: ignore[union-attr]
    user_messages = [m.content for m in call.llm.requests[-1].messages if m.role == "user"]
    assert "Yeah." not in user_messages


async def test_the_agent_lowers_its_voice_while_it_listens_then_speaks_on() -> None:
    async with simulated_call(listening_spec("Mm-hmm.")) as call:  # type: ignore[arg-type]
        await _ask_and_talk_over(call, 300)
        await call.agent_done(2)
    peaks = [entry.peak for entry in call.transport.log if entry.kind == "audio"]
    loudest = max(peaks)
    assert any(0 < peak < loudest * 0.4 for peak in peaks)  # lowered while listening
    assert peaks[-1] > loudest * 0.4 or peaks[-2] > loudest * 0.4  # back to full voice


async def test_real_words_over_the_agent_stop_it_at_once_and_become_the_turn() -> None:
    spec = listening_spec("Sorry, can I ask something else?")
    async with simulated_call(spec) as call:  # type: ignore[arg-type]
        await call.agent_done(1)
        await call.transport.speak(400)
        await eventually(lambda: len(call.items("agent")) == 2)
        await asyncio.sleep(0.8)
        started = asyncio.get_running_loop().time()
        speaking = asyncio.ensure_future(call.transport.speak(1500))
        await eventually(lambda: "clear" in call.transport.kinds(), within=3)
        decided_after = asyncio.get_running_loop().time() - started
        await speaking
        await call.agent_done(3)
    assert decided_after < 0.6  # during the caller's first words, not after them
    assert call.items("agent")[1].interrupted
    assert [item.text for item in call.items("caller")][-1] == "Sorry, can I ask something else?"
    assert call.items("agent")[2].text == "Of course, go ahead."


async def test_speech_over_the_agent_longer_than_the_limit_stops_it() -> None:
    async with simulated_call(listening_spec("Mm-hmm.", max_ms=600)) as call:  # type: ignore[arg-type]
        await _ask_and_talk_over(call, 1500)
        await eventually(lambda: "clear" in call.transport.kinds(), within=3)
        await call.agent_done(3)
    assert call.items("agent")[1].interrupted


async def test_a_cough_over_the_agent_changes_nothing() -> None:
    async with simulated_call(listening_spec("")) as call:  # type: ignore[arg-type]
        await _ask_and_talk_over(call, 250)
        await call.agent_done(2)
    assert "clear" not in call.transport.kinds()
    assert call.items("agent")[1].heard_text == LONG_REPLY
    assert [item.text for item in call.items("caller")] == ["What are your hours?"]


async def test_a_lone_word_over_the_agent_is_taken_for_a_backchannel() -> None:
    """The trade-off of docs/turn-taking.md: hums are heard as a word or two."""
    async with simulated_call(listening_spec("in a moment")) as call:  # type: ignore[arg-type]
        await _ask_and_talk_over(call, 300)
        await call.agent_done(2)
    assert "clear" not in call.transport.kinds()
    assert call.items("caller")[-1].data.get("backchannel") is True
