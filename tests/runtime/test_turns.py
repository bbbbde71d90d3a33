from voxline.agent_spec import Interruptions, TurnTaking
from voxline.runtime.turns import (
    PauseDetected,
    SpeechResumed,
    SpeechStarted,
    TurnDetector,
    TurnEnded,
    TurnEvent,
    TurnState,
)

WINDOW_MS = 20.0
TT = TurnTaking(
    vad_threshold=0.5,
    speech_start_ms=60,
    end_of_turn_silence_ms=500,
    min_end_of_turn_silence_ms=250,
    max_end_of_turn_silence_ms=1200,
    interruptions=Interruptions(min_speech_ms=200),
)


def detector(tt: TurnTaking = TT) -> TurnDetector:
    return TurnDetector(tt, window_ms=WINDOW_MS, pause_ms=180)


def feed(
    det: TurnDetector, probability: float, ms: float, *, agent_speaking: bool = False
) -> list[tuple[float, TurnEvent]]:
    """Push `ms` of windows; the events with the time (ms into this feed) they came at."""
    events = []
    for index in range(int(ms // WINDOW_MS)):
        for event in det.push(probability, agent_speaking=agent_speaking):
            events.append(((index + 1) * WINDOW_MS, event))
    return events


def test_speech_starts_after_speech_start_ms_of_voice() -> None:
    det = detector()
    events = feed(det, 0.9, 100)
    assert events == [(60.0, SpeechStarted(60.0))]
    assert det.state is TurnState.SPEAKING


def test_a_short_blip_does_not_start_speech() -> None:
    det = detector()
    assert feed(det, 0.9, 40) + feed(det, 0.0, 100) == []
    assert det.state is TurnState.SILENT


def test_speech_over_the_agent_needs_min_speech_ms() -> None:
    det = detector()
    assert feed(det, 0.9, 180, agent_speaking=True) == []
    assert feed(det, 0.9, 20, agent_speaking=True) == [(20.0, SpeechStarted(200.0))]


def test_backchannel_shorter_than_min_speech_does_not_start_speech_over_the_agent() -> None:
    det = detector()
    assert feed(det, 0.9, 160, agent_speaking=True) == []
    assert feed(det, 0.0, 200, agent_speaking=True) == []
    assert det.state is TurnState.SILENT


def test_with_interruptions_disabled_speech_over_the_agent_never_starts() -> None:
    det = detector(TT.model_copy(update={"interruptions": Interruptions(enabled=False)}))
    assert feed(det, 0.9, 1000, agent_speaking=True) == []
    assert feed(det, 0.9, 20) == [(20.0, SpeechStarted(1020.0))]


def test_hysteresis_keeps_speech_through_a_dip_above_the_lower_threshold() -> None:
    det = detector()
    feed(det, 0.9, 100)
    feed(det, 0.4, 400)  # between threshold - 0.15 and threshold: still voiced
    assert det.state is TurnState.SPEAKING


def test_a_short_pause_is_reported_then_the_default_endpoint_ends_the_turn() -> None:
    det = detector()
    feed(det, 0.9, 100)
    events = feed(det, 0.0, 600)
    assert events == [(180.0, PauseDetected(180.0)), (500.0, TurnEnded(500.0, 500))]
    assert det.state is TurnState.SILENT


def test_a_complete_transcript_ends_the_turn_at_once_when_silence_already_suffices() -> None:
    det = detector()
    feed(det, 0.9, 100)
    feed(det, 0.0, 300)
    assert det.set_transcript("Yes, that's right.") == [TurnEnded(300.0, 250)]


def test_a_complete_transcript_shortens_the_remaining_wait() -> None:
    det = detector()
    feed(det, 0.9, 100)
    feed(det, 0.0, 200)
    assert det.set_transcript("What time do you open?") == []
    assert feed(det, 0.0, 60) == [(60.0, TurnEnded(260.0, 250))]


def test_a_trailing_transcript_lengthens_the_wait() -> None:
    det = detector()
    feed(det, 0.9, 100)
    feed(det, 0.0, 200)
    det.set_transcript("I'd like a table and")
    assert feed(det, 0.0, 900) == []
    assert feed(det, 0.0, 100) == [(100.0, TurnEnded(1200.0, 1200))]


def test_speaking_again_after_a_pause_resumes_the_turn() -> None:
    det = detector()
    feed(det, 0.9, 100)
    feed(det, 0.0, 200)
    assert feed(det, 0.9, 100) == [(60.0, SpeechResumed(60.0))]
    assert det.state is TurnState.SPEAKING


def test_resuming_forgets_the_transcript_of_the_previous_segment() -> None:
    det = detector()
    feed(det, 0.9, 100)
    feed(det, 0.0, 200)
    det.set_transcript("I'd like a table and")
    feed(det, 0.9, 100)
    assert det.endpoint_ms == 500


def test_a_blip_during_a_pause_counts_as_silence() -> None:
    det = detector()
    feed(det, 0.9, 100)
    events = feed(det, 0.0, 200) + feed(det, 0.9, 40) + feed(det, 0.0, 260)
    assert [type(event) for _, event in events] == [PauseDetected, TurnEnded]


def test_transcripts_are_ignored_while_the_caller_speaks() -> None:
    det = detector()
    feed(det, 0.9, 100)
    assert det.set_transcript("Yes.") == []
    assert det.endpoint_ms == 500


def test_an_endpoint_shorter_than_the_pause_reports_both_at_once() -> None:
    tt = TT.model_copy(update={"end_of_turn_silence_ms": 100})
    det = detector(tt)
    feed(det, 0.9, 100)
    assert feed(det, 0.0, 100) == [(100.0, PauseDetected(100.0)), (100.0, TurnEnded(100.0, 100))]


def test_the_recognizers_utterance_end_in_a_pause_ends_the_turn_early() -> None:
    det = detector()
    feed(det, 0.9, 100)
    feed(det, 0.0, 200)
    assert det.utterance_end() == [TurnEnded(200.0, 500, recognizer=True)]
    assert det.state is TurnState.SILENT


def test_the_recognizers_utterance_end_over_speech_changes_nothing() -> None:
    det = detector()
    feed(det, 0.9, 100)
    assert det.utterance_end() == []
    assert det.state is TurnState.SPEAKING


def test_the_recognizers_utterance_end_with_nothing_said_changes_nothing() -> None:
    det = detector()
    feed(det, 0.0, 200)
    assert det.utterance_end() == []
    assert det.state is TurnState.SILENT
