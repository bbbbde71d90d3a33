"""A simulated phone call with real synthesized speech and the Silero VAD."""

from __future__ import annotations

from voxline.agent_spec import ScriptedRule, TurnTaking

from ..helpers.speech import synthesize_speech
from .calls import scripted_spec, simulated_call


async def test_real_speech_is_detected_and_answered_at_8_khz() -> None:
    speech = synthesize_speech("What time do you open tomorrow morning?", 8000)
    spec = scripted_spec(
        transcripts=["What time do you open tomorrow morning?"],
        rules=[ScriptedRule(match="open", say="At nine.")],
        turn_taking=TurnTaking(vad="silero"),
    )
    async with simulated_call(spec, rate=8000) as call:
        await call.agent_done(1)
        await call.transport.speak(pcm=speech)
        await call.agent_done(2)
        sent_to_stt = call.stt.samples_sent
    assert [item.text for item in call.items("caller")] == [
        "What time do you open tomorrow morning?"
    ]
    assert call.agent_texts()[-1] == "At nine."
    # STT heard the whole utterance (at its 16 kHz), pre-roll included, not just a part.
    assert sent_to_stt >= speech.shape[0] * 2 * 0.9
