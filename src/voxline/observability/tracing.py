"""OpenTelemetry traces of calls, exported with OTLP/HTTP (`VOXLINE_OTLP_ENDPOINT`).

A call is a span (`call`) from its start to `session.ended`; each answered turn is a child
span (`turn`) ending when its first audio was sent and lasting its turn latency, with `stt`,
`llm` (to the first token) and `tts` (to the first byte) spans inside, laid out from the
`turn.metrics` timings along the critical path. Needs the `otel` extra.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from voxline.runtime.events import CallEvent, SessionEnded, SessionStarted, TurnMetricsEvent

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.trace import Span, Tracer

_INSTALL_HINT = "traces need the 'otel' extra: pip install 'voxline[otel]'"
_MS = 1_000_000


class TracingUnavailable(RuntimeError):
    pass


class CallTracing:
    """The process's tracer, exporting to `endpoint` in batches."""

    def __init__(self, endpoint: str, *, service_name: str = "voxline") -> None:
        try:
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
            from opentelemetry.sdk.resources import Resource
            from opentelemetry.sdk.trace import TracerProvider
            from opentelemetry.sdk.trace.export import BatchSpanProcessor
        except ImportError as exc:
            raise TracingUnavailable(_INSTALL_HINT) from exc
        self._provider: TracerProvider = TracerProvider(
            resource=Resource.create({"service.name": service_name})
        )
        self._provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=endpoint)))
        self._tracer: Tracer = self._provider.get_tracer("voxline.calls")

    def call(self, session_id: str) -> CallTrace:
        """The trace of one call: give it the call's events (`CallTrace.observe`)."""
        return CallTrace(self._tracer, session_id)

    def shutdown(self) -> None:
        """Export what is pending, then stop (blocks: run it in a thread)."""
        self._provider.shutdown()


class CallTrace:
    """One call's spans, made from its events (an event observer: returns at once)."""

    def __init__(self, tracer: Tracer, session_id: str) -> None:
        self._tracer = tracer
        self._session_id = session_id
        self._span: Span | None = None

    def observe(self, event: CallEvent) -> None:
        if isinstance(event, SessionStarted):
            self._span = self._tracer.start_span(
                "call",
                attributes={
                    "voxline.session_id": self._session_id,
                    "voxline.agent_id": event.agent_id,
                    "voxline.channel": event.channel,
                    "voxline.direction": event.direction,
                },
            )
        elif isinstance(event, TurnMetricsEvent) and self._span is not None:
            self._turn(self._span, event)
        elif isinstance(event, SessionEnded) and self._span is not None:
            self._end(self._span, event)
            self._span = None

    def _turn(self, call: Span, event: TurnMetricsEvent) -> None:
        from opentelemetry import trace

        if event.turn_latency_ms is None:
            return
        end = time.time_ns()
        start = end - int(event.turn_latency_ms * _MS)
        context = trace.set_span_in_context(call)
        turn = self._tracer.start_span(
            "turn",
            context=context,
            start_time=start,
            attributes={
                "voxline.turn": event.turn,
                "voxline.interrupted": event.interrupted,
                "voxline.end_of_turn_wait_ms": event.end_of_turn_wait_ms or 0.0,
                "voxline.overhead_ms": event.overhead_ms or 0.0,
            },
        )
        inside = trace.set_span_in_context(turn)
        at = start
        for name, duration_ms in (
            ("stt", event.stt_ms),
            ("llm", event.llm_first_token_ms),
            ("tts", event.tts_first_byte_ms),
        ):
            if duration_ms is None:
                continue
            until = min(end, at + int(duration_ms * _MS))
            span = self._tracer.start_span(name, context=inside, start_time=at)
            span.end(end_time=until)
            at = until
        turn.end(end_time=end)

    def _end(self, call: Span, event: SessionEnded) -> None:
        from opentelemetry.trace import Status, StatusCode

        call.set_attribute("voxline.end_reason", event.reason)
        if event.first_response_ms is not None:
            call.set_attribute("voxline.first_response_ms", event.first_response_ms)
        if event.reason == "error":
            call.set_status(Status(StatusCode.ERROR, event.error or "the call failed"))
        call.end()
