"""The process's Prometheus metrics (`GET /metrics`), in a registry of their own.

Labels stay low-cardinality: channel, direction, end reason, provider role and vendor name,
a latency part; never a session, workspace or phone number. Calls feed them through
`CallMetrics`, an observer of their events; providers and webhooks count their own.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from voxline.runtime.events import (
    AgentInterrupted,
    AgentResumed,
    CallEvent,
    SessionEnded,
    TranscriptBackchannel,
    TurnMetricsEvent,
)

REGISTRY = CollectorRegistry(auto_describe=True)

_LATENCY_BUCKETS = (0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.8, 1.0, 1.5, 2.0, 3.0, 5.0, 10.0)

LIVE_CALLS = Gauge(
    "voxline_live_calls",
    "Calls this process is running now.",
    ["channel", "direction"],
    registry=REGISTRY,
)
CALLS_STARTED = Counter(
    "voxline_calls_started",
    "Calls this process started running.",
    ["channel", "direction"],
    registry=REGISTRY,
)
CALLS_ENDED = Counter(
    "voxline_calls_ended",
    "Calls this process finished, by how they ended.",
    ["channel", "direction", "reason"],
    registry=REGISTRY,
)
TURN_LATENCY = Histogram(
    "voxline_turn_latency_seconds",
    "End of caller speech to the first agent audio sent, per answered turn.",
    registry=REGISTRY,
    buckets=_LATENCY_BUCKETS,
)
TURN_PART = Histogram(
    "voxline_turn_part_seconds",
    "The parts of turn latency: end_of_turn_wait, stt, llm_first_token, first_clause, "
    "tts_first_byte, overhead.",
    ["part"],
    registry=REGISTRY,
    buckets=_LATENCY_BUCKETS,
)
FIRST_RESPONSE = Histogram(
    "voxline_first_response_seconds",
    "Start of the conversation to the first agent audio sent (the stored firstResponseMs "
    "adds the set-up before it).",
    registry=REGISTRY,
    buckets=_LATENCY_BUCKETS,
)
BARGE_INS = Counter("voxline_barge_ins", "Agent messages the caller cut short.", registry=REGISTRY)
FALSE_INTERRUPTIONS = Counter(
    "voxline_false_interruptions",
    "Interruptions that brought no words (a noise, an acknowledgement): the agent stopped, "
    "then resumed the unheard rest of its message (turnTaking.interruptions."
    "resumeAfterFalseInterruption, on by default). Also counted in voxline_barge_ins_total.",
    registry=REGISTRY,
)
BACKCHANNELS = Counter(
    "voxline_backchannels",
    "Caller acknowledgements over the agent that did not stop it.",
    registry=REGISTRY,
)
PROVIDER_ERRORS = Counter(
    "voxline_provider_errors",
    "Provider requests that failed, by role (stt, llm, tts) and vendor.",
    ["role", "provider"],
    registry=REGISTRY,
)
PROVIDER_FALLBACKS = Counter(
    "voxline_provider_fallbacks",
    "Requests handed to the next provider of a fallback chain, by the one that failed.",
    ["role", "provider"],
    registry=REGISTRY,
)
PROVIDER_SKIPS = Counter(
    "voxline_provider_circuit_skips",
    "Requests that passed over a provider whose circuit was open.",
    ["role", "provider"],
    registry=REGISTRY,
)
WEBHOOK_DELIVERIES = Counter(
    "voxline_webhook_deliveries",
    "Session webhooks, by outcome: delivered, refused (4xx), failed (given up).",
    ["outcome"],
    registry=REGISTRY,
)
DISPATCH_QUEUE = Gauge(
    "voxline_dispatch_queue_depth",
    "Outbound tasks due now and waiting to be dialed, in the shared database (every process "
    "reports the same queue: aggregate with max, not sum).",
    registry=REGISTRY,
)
DISPATCH_CREATES = Counter(
    "voxline_dispatch_creates",
    "Outbound calls this process asked Twilio to create, by outcome: created, throttled "
    "(retried later), refused (the task failed), failed (an error or 5xx), timed_out (no "
    "answer in time: reconciled against Twilio's calls, it may have been placed). The dial "
    "rate is "
    'rate(voxline_dispatch_creates_total{outcome="created"}[1m]).',
    ["outcome"],
    registry=REGISTRY,
)
for _outcome in ("created", "throttled", "refused", "failed", "timed_out"):
    DISPATCH_CREATES.labels(_outcome)  # exposed at 0 from the start
LOOP_LAG = Histogram(
    "voxline_event_loop_lag_seconds",
    "How late the event loop woke a sleeping task (sampled when the lag monitor runs).",
    registry=REGISTRY,
    buckets=(0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0),
)

_PARTS = (
    ("end_of_turn_wait", "end_of_turn_wait_ms"),
    ("stt", "stt_ms"),
    ("llm_first_token", "llm_first_token_ms"),
    ("first_clause", "first_clause_ms"),
    ("tts_first_byte", "tts_first_byte_ms"),
    ("overhead", "overhead_ms"),
)


def exposition() -> bytes:
    """The metrics in Prometheus text format."""
    return generate_latest(REGISTRY)


class CallMetrics:
    """Counts one call: started when made, ended with its `session.ended` event."""

    def __init__(self, channel: str, direction: str) -> None:
        self._labels = (channel, direction)
        self._live = True
        CALLS_STARTED.labels(channel, direction).inc()
        LIVE_CALLS.labels(channel, direction).inc()

    def observe(self, event: CallEvent) -> None:
        """A call event observer (see `runtime.journal.EventObserver`)."""
        if isinstance(event, TurnMetricsEvent):
            if event.turn_latency_ms is not None:
                TURN_LATENCY.observe(event.turn_latency_ms / 1000)
            for part, field in _PARTS:
                value = getattr(event, field)
                if value is not None:
                    TURN_PART.labels(part).observe(value / 1000)
        elif isinstance(event, AgentInterrupted):
            BARGE_INS.inc()
        elif isinstance(event, AgentResumed):
            FALSE_INTERRUPTIONS.inc()
        elif isinstance(event, TranscriptBackchannel):
            BACKCHANNELS.inc()
        elif isinstance(event, SessionEnded):
            if event.first_response_ms is not None:
                FIRST_RESPONSE.observe(event.first_response_ms / 1000)
            self.end(event.reason)

    def end(self, reason: str) -> None:
        """The call is over (once; later calls change nothing)."""
        if self._live:
            self._live = False
            LIVE_CALLS.labels(*self._labels).dec()
            CALLS_ENDED.labels(*self._labels, reason).inc()
