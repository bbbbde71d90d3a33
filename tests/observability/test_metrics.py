"""A call's events as the process's Prometheus metrics."""

from __future__ import annotations

from voxline.observability.metrics import REGISTRY, CallMetrics, exposition
from voxline.runtime.events import (
    AgentInterrupted,
    AgentResumed,
    SessionEnded,
    TranscriptBackchannel,
    TurnMetricsEvent,
)


def _value(name: str, labels: dict[str, str] | None = None) -> float:
    return REGISTRY.get_sample_value(name, labels or {}) or 0.0


def test_a_calls_events_are_counted_and_its_end_frees_its_live_slot() -> None:
    live = {"channel": "web", "direction": "outbound"}
    names = (
        "voxline_barge_ins_total",
        "voxline_false_interruptions_total",
        "voxline_backchannels_total",
        "voxline_turn_latency_seconds_count",
    )
    before = {name: _value(name) for name in names}
    ended_before = _value("voxline_calls_ended_total", {**live, "reason": "caller_hangup"})

    metrics = CallMetrics("web", "outbound")
    assert _value("voxline_live_calls", live) >= 1
    live_during = _value("voxline_live_calls", live)
    metrics.observe(AgentInterrupted(response="r2", heard_text="Sure,", text="Sure, our hours"))
    metrics.observe(AgentResumed(text="our hours"))
    metrics.observe(AgentInterrupted(response="r3", heard_text="We", text="We open at nine"))
    metrics.observe(TranscriptBackchannel(text="Yeah."))
    metrics.observe(TurnMetricsEvent(turn=1, turn_latency_ms=640, stt_ms=200))
    metrics.observe(SessionEnded(reason="caller_hangup", first_response_ms=120))
    metrics.observe(SessionEnded(reason="caller_hangup"))  # a second end changes nothing

    counted = {name: _value(name) - before[name] for name in names}
    assert counted == {
        "voxline_barge_ins_total": 2,
        "voxline_false_interruptions_total": 1,
        "voxline_backchannels_total": 1,
        "voxline_turn_latency_seconds_count": 1,
    }
    assert _value("voxline_live_calls", live) == live_during - 1
    assert _value("voxline_calls_ended_total", {**live, "reason": "caller_hangup"}) == (
        ended_before + 1
    )


def test_the_exposition_names_every_metric_even_before_it_counts() -> None:
    text = exposition().decode()
    for name in (
        "voxline_false_interruptions_total",
        "voxline_dispatch_queue_depth",
        'voxline_dispatch_creates_total{outcome="created"}',
        'voxline_dispatch_creates_total{outcome="throttled"}',
    ):
        assert name in text
