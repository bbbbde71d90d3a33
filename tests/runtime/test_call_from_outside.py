"""Acting on a running call from outside it (machine verdicts of outbound calls)."""

from __future__ import annotations

from .calls import scripted_spec, simulated_call
from .fakes import eventually


async def test_say_then_hang_up_cuts_in_and_says_the_whole_message() -> None:
    spec = scripted_spec(first_message="Hello, this is a long greeting that keeps going on and on.")
    async with simulated_call(spec) as call:
        await eventually(lambda: "audio" in call.transport.kinds())  # the greeting is playing
        assert await call.runtime.say_then_hang_up("Please call us back.", "voicemail")
        outcome = await call.outcome()
        agent = call.items("agent")
    assert outcome.end_reason == "voicemail"
    assert agent[-1].text == "Please call us back."
    assert agent[-1].heard_text == "Please call us back."
    assert agent[0].interrupted  # the greeting was cut off for it
    assert call.transport.hung_up.is_set()


async def test_hang_up_now_ends_the_call() -> None:
    async with simulated_call(scripted_spec()) as call:
        await call.agent_done(1)
        assert await call.runtime.hang_up_now("machine_detected")
        outcome = await call.outcome()
        assert not await call.runtime.hang_up_now("machine_detected")
    assert outcome.end_reason == "machine_detected"
    assert call.transport.hung_up.is_set()
