"""The story of a simulated call: each caller line with what the server heard, the agent's
answer as recorded, and the latency the caller measured, side by side with the server's own.

Transcript items are matched to caller lines by time: an item recorded after line n ended
(and before line n+1 did) belongs to turn n; items before the first line are the greeting.
The server's turn metrics follow its caller items in order (metrics turn k is the k-th).
"""

from __future__ import annotations

import bisect
import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field

from voxline.runtime.recording import TranscriptItem, TurnMetrics
from voxline.simulator.conversation import CallerLine, ConversationOutcome
from voxline.simulator.metrics import Gap, Turn
from voxline.simulator.playout import SAMPLE_RATE
from voxline.simulator.sessions import SessionRecord
from voxline.simulator.twilio_peer import SimulatedTwilioCall

_WIDTH = 8


@dataclass(slots=True)
class TurnReport:
    """The greeting (`line` None) or one caller line, with everything known about it."""

    line: CallerLine | None
    heard: Turn | None = None
    caller_items: list[TranscriptItem] = field(default_factory=list)
    agent_items: list[TranscriptItem] = field(default_factory=list)
    metrics: TurnMetrics | None = None


@dataclass(frozen=True, slots=True)
class CallReport:
    call_sid: str
    first_response_s: float | None
    turns: list[TurnReport]
    gaps: list[Gap]
    clears: int
    outcome: ConversationOutcome
    session: SessionRecord | None

    def latencies_ms(self) -> list[float]:
        """Caller-measured turn latencies (answered, not overlapped), in milliseconds."""
        return [
            turn.heard.latency * 1000
            for turn in self.turns
            if turn.heard is not None
            and turn.heard.latency is not None
            and not turn.heard.overlapped
        ]


def build_report(
    call: SimulatedTwilioCall,
    lines: Sequence[CallerLine],
    outcome: ConversationOutcome,
    session: SessionRecord | None,
) -> CallReport:
    """Join what the caller measured on `call` with what the server recorded, if known."""
    turns = [TurnReport(line=None)] + [TurnReport(line=line) for line in lines]
    for report, heard in zip(turns[1:], call.turns(), strict=False):
        report.heard = heard
    if session is not None:
        ends = [u.ended_at for u in call.utterances if u.ended_at is not None]
        _attribute(turns, ends, session)
    return CallReport(
        call_sid=call.call_sid,
        first_response_s=call.first_response,
        turns=turns,
        gaps=call.playout_gaps(),
        clears=len(call.clears),
        outcome=outcome,
        session=session,
    )


def _attribute(turns: list[TurnReport], ends: list[float], session: SessionRecord) -> None:
    metrics = {entry.turn: entry for entry in session.metrics}
    caller_turn = 0
    for item in session.transcript:
        index = min(bisect.bisect_right(ends, item.at_ms / 1000), len(turns) - 1)
        report = turns[index]
        if item.role == "caller":
            caller_turn += 1
            if not report.caller_items:
                report.metrics = metrics.get(caller_turn)
            report.caller_items.append(item)
        elif item.role == "agent":
            report.agent_items.append(item)


def format_report(report: CallReport) -> str:
    """The report as text for a terminal."""
    out: list[str] = [_headline(report), ""]
    for index, turn in enumerate(report.turns):
        out.append("[greeting]" if turn.line is None else f"[turn {index}]")
        out.extend(_turn_lines(turn, report))
        out.append("")
    out.extend(_summary(report))
    return "\n".join(out)


def _headline(report: CallReport) -> str:
    who = "the agent" if report.outcome.ended_by == "agent" else "the caller"
    head = f"Call {report.call_sid}: ended by {who}"
    if report.session is not None:
        reason = f" ({report.session.end_reason})" if report.session.end_reason else ""
        head += f"; session {report.session.id} {report.session.status}{reason}"
    return head


def _turn_lines(turn: TurnReport, report: CallReport) -> list[str]:
    out: list[str] = []
    if turn.line is not None:
        seconds = len(turn.line.pcm) / SAMPLE_RATE
        out.append(_row("caller", f"{turn.line.text}  ({seconds:.1f} s of speech)"))
    if report.session is not None:
        if turn.line is not None:
            heard = " / ".join(item.text for item in turn.caller_items) or "(no transcript)"
            out.append(_row("heard", heard))
        for item in turn.agent_items:
            out.append(_row("agent", item.text or "(silence)"))
            if item.interrupted:
                out.append(_row("", f'interrupted; the caller heard: "{item.heard_text or ""}"'))
        if not turn.agent_items:
            out.append(_row("agent", "(nothing recorded)"))
    out.append(_row("", _latency_text(turn, report)))
    return out


def _latency_text(turn: TurnReport, report: CallReport) -> str:
    if turn.line is None:
        heard = _ms(report.first_response_s)
        server = report.session.first_response_ms if report.session is not None else None
        text = f"first response: {heard} as heard"
        return text + (f" (server: {server:.0f} ms)" if server is not None else "")
    if turn.heard is None or turn.heard.latency is None:
        return "no answer heard"
    text = f"latency: {_ms(turn.heard.latency)} as heard"
    if turn.heard.overlapped:
        text += " (the agent was still talking as the caller stopped)"
    if turn.metrics is not None and turn.metrics.turn_latency_ms is not None:
        text += f" (server: {_server_parts(turn.metrics)})"
    return text


def _server_parts(metrics: TurnMetrics) -> str:
    parts = (
        ("wait", metrics.end_of_turn_wait_ms),
        ("stt", metrics.stt_ms),
        ("llm", metrics.llm_first_token_ms),
        ("clause", metrics.first_clause_ms),
        ("tts", metrics.tts_first_byte_ms),
        ("overhead", metrics.overhead_ms),
    )
    known = " + ".join(f"{name} {value:.0f}" for name, value in parts if value is not None)
    return f"{metrics.turn_latency_ms:.0f} ms = {known}"


def _summary(report: CallReport) -> list[str]:
    latencies = report.latencies_ms()
    out: list[str] = []
    if latencies:
        out.append(
            f"Turn latency as heard (end of caller audio -> first agent audio): median "
            f"{statistics.median(latencies):.0f} ms, max {max(latencies):.0f} ms "
            f"over {len(latencies)} turn(s)"
        )
    out.append(f"First response as heard: {_ms(report.first_response_s)}")
    if report.outcome.unanswered:
        numbers = ", ".join(str(index + 1) for index in report.outcome.unanswered)
        out.append(f"Unanswered turns: {numbers}")
    if report.gaps:
        longest = max(gap.duration for gap in report.gaps) * 1000
        out.append(f"Playout gaps inside answers: {len(report.gaps)} (longest {longest:.0f} ms)")
    else:
        out.append("Playout gaps inside answers: none")
    out.append(f"Clears (barge-ins honoured): {report.clears}")
    if report.session is None:
        out.append("(No server transcript: pass an API key to fetch the session.)")
    return out


def _row(label: str, text: str) -> str:
    return f"  {label:<{_WIDTH}}{text}"


def _ms(seconds: float | None) -> str:
    return "-" if seconds is None else f"{seconds * 1000:.0f} ms"
