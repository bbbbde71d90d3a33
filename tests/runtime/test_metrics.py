import pytest

from voxline.runtime.metrics import TurnTiming, turn_metrics


def test_text_before_the_endpoint_leaves_stt_off_the_critical_path() -> None:
    timing = TurnTiming(
        speech_end=10.0,
        stt_start=10.18,
        stt_done=10.22,
        endpoint=10.5,
        llm_start=10.5,
        llm_first_token=10.7,
        first_clause=10.8,
        tts_start=10.8,
        tts_first_byte=10.85,
        first_audio=10.9,
    )
    metrics = turn_metrics(3, timing, interrupted=False)
    assert metrics.turn == 3
    assert metrics.end_of_turn_wait_ms == pytest.approx(500)
    assert metrics.stt_ms == 0
    assert metrics.llm_first_token_ms == pytest.approx(200)
    assert metrics.first_clause_ms == pytest.approx(100)
    assert metrics.tts_first_byte_ms == pytest.approx(50)
    assert metrics.turn_latency_ms == pytest.approx(900)
    assert metrics.overhead_ms == pytest.approx(50)


def test_an_endpoint_waiting_for_the_text_puts_stt_on_the_critical_path() -> None:
    timing = TurnTiming(
        speech_end=10.0,
        stt_start=10.18,
        stt_done=10.48,
        endpoint=10.48,
        llm_start=10.48,
        llm_first_token=10.68,
        first_clause=10.7,
        tts_start=10.7,
        tts_first_byte=10.75,
        first_audio=10.75,
    )
    metrics = turn_metrics(1, timing, interrupted=False)
    assert metrics.end_of_turn_wait_ms == pytest.approx(180)
    assert metrics.stt_ms == pytest.approx(300)
    assert metrics.llm_first_token_ms == pytest.approx(200)
    assert metrics.overhead_ms == pytest.approx(0, abs=1e-6)


def test_text_arriving_after_the_endpoint_adds_its_remainder() -> None:
    timing = TurnTiming(speech_end=0.0, stt_start=0.18, endpoint=0.5, stt_done=0.7)
    metrics = turn_metrics(1, timing, interrupted=False)
    assert metrics.end_of_turn_wait_ms == pytest.approx(180)
    assert metrics.stt_ms == pytest.approx(520)


def test_work_done_speculatively_before_confirmation_adds_nothing() -> None:
    timing = TurnTiming(
        speech_end=10.0,
        stt_start=10.18,
        stt_done=10.22,
        llm_start=10.22,
        llm_first_token=10.27,
        first_clause=10.28,
        tts_start=10.28,
        tts_first_byte=10.29,
        endpoint=10.3,
        first_audio=10.301,
    )
    metrics = turn_metrics(1, timing, interrupted=False)
    assert metrics.end_of_turn_wait_ms == pytest.approx(300)
    assert metrics.llm_first_token_ms == 0
    assert metrics.first_clause_ms == 0
    assert metrics.tts_first_byte_ms == 0
    assert metrics.overhead_ms == pytest.approx(1)


def test_an_interrupted_turn_without_audio_has_no_latency() -> None:
    metrics = turn_metrics(2, TurnTiming(speech_end=1.0, endpoint=1.5), interrupted=True)
    assert metrics.interrupted
    assert metrics.end_of_turn_wait_ms == pytest.approx(500)
    assert metrics.turn_latency_ms is None and metrics.overhead_ms is None


def test_a_turn_without_caller_speech_has_no_parts() -> None:
    metrics = turn_metrics(1, TurnTiming(first_audio=2.0), interrupted=False)
    assert metrics.turn_latency_ms is None and metrics.end_of_turn_wait_ms is None
