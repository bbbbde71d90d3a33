"""A phone call to the embedded defaults, measured as the caller hears it (issue 5).

A simulated Twilio caller calls an agent on Whisper tiny.en + llama.cpp Gemma 3 270M + Piper
(Silero VAD) over the real media-stream WebSocket, says `--turns` lines synthesized with Piper
in real time, waits for each answer to end, and hangs up. Per turn it prints the server's
latency accounting (GET /v1/sessions/:id: end-of-turn wait, STT, LLM first token, first
clause, TTS first byte, overhead, turn latency) beside the latency the caller measured (end of
its audio -> first agent audio heard), then medians, p95 and the first response, against the
targets (first response < 1.5 s, aim 0.3 s; median turn latency < 900 ms).

The server is started here (`voxline serve`, models preloaded) unless `--server` is given.
Run: `.venv/bin/python bench/bench_call.py [--turns 12] [--server URL --api-key KEY]`.
Writes bench/results/call.json.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import json
import statistics
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

from harness import (
    RESULTS_DIR,
    Server,
    create_agent,
    distribution,
    fmt,
    local_server,
    machine,
    percentile,
)
from voxline.runtime.recording import TurnMetrics
from voxline.simulator.conversation import CallerLine, ListeningPolicy, converse
from voxline.simulator.dial import dial_with_api_key
from voxline.simulator.report import CallReport, TurnReport, build_report
from voxline.simulator.sessions import SessionsApi
from voxline.simulator.speech import synthesize_caller_speech
from voxline.simulator.twilio_peer import SimulatedTwilioCall
from voxline.store.seed import demo_agent_spec

CALLER_LINES = [
    "Hi, I'd like to book a cleaning for next week.",
    "Do you have anything on Tuesday morning?",
    "What time do you open?",
    "Is ten o'clock possible?",
    "My name is Sam Taylor.",
    "How much does a cleaning cost?",
    "Do you take my insurance?",
    "Is there parking near the office?",
    "Can I bring my daughter too?",
    "She is eight years old.",
    "Should we bring anything with us?",
    "Great, thank you so much.",
]
FIRST_RESPONSE_TARGET_MS = 1500
FIRST_RESPONSE_AIM_MS = 300
MEDIAN_TURN_TARGET_MS = 900
_PARTS = (
    "end_of_turn_wait_ms",
    "stt_ms",
    "llm_first_token_ms",
    "first_clause_ms",
    "tts_first_byte_ms",
    "overhead_ms",
    "turn_latency_ms",
)
_HEADERS = ("wait", "stt", "llm", "clause", "tts", "ovh", "server", "heard")


@contextmanager
def _server(args: argparse.Namespace) -> Iterator[Server]:
    if args.server is not None:
        if args.api_key is None:
            raise SystemExit("--server needs --api-key")
        yield Server(args.server.rstrip("/"), args.api_key, pid=None)
        return
    # Seeding the demo agent (the embedded defaults) makes the server preload those models.
    env = {
        "VOXLINE_PRELOAD_MODELS": "true",
        "VOXLINE_SEED_DEMO_AGENT": "true",
        "VOXLINE_LOG_LEVEL": "warning",
    }
    print("starting voxline serve (loading and warming the embedded models) ...", flush=True)
    with local_server(env, data_dir=args.data_dir) as server:
        yield server


async def _call(
    server: Server,
    agent_id: str,
    lines: list[CallerLine],
    policy: ListeningPolicy,
    wav: Path | None,
) -> CallReport:
    async with httpx.AsyncClient(timeout=30.0) as http:
        dialed = await dial_with_api_key(http, server.base_url, agent_id, server.api_key)
        call = SimulatedTwilioCall(dialed.stream_url, relay=dialed.relay, wav_path=wav)
        async with call:
            outcome = await converse(call, lines, policy)
        assert dialed.session_id is not None
        session = await SessionsApi(http, server.base_url, server.api_key).wait_finished(
            dialed.session_id, 30.0
        )
    return build_report(call, lines, outcome, session)


def _turn_row(turn: TurnReport) -> dict[str, Any]:
    metrics = turn.metrics or TurnMetrics(turn=0)
    heard = turn.heard
    return {
        "line": turn.line.text if turn.line is not None else None,
        "transcript": " / ".join(item.text for item in turn.caller_items),
        "answer": " ".join(item.text for item in turn.agent_items),
        "heard_ms": None if heard is None or heard.latency is None else heard.latency * 1000,
        "overlapped": heard.overlapped if heard is not None else None,
        "server": {part: getattr(metrics, part) for part in _PARTS},
    }


def _print_table(rows: list[dict[str, Any]]) -> None:
    print(f"\n{'#':>2}  " + "".join(f"{h:>7}" for h in _HEADERS) + "   caller -> STT | agent")
    for index, row in enumerate(rows, start=1):
        server = row["server"]
        cells = [server[part] for part in _PARTS] + [row["heard_ms"]]
        said = f"{row['line'][:34]} -> {row['transcript'][:34]!r} | {row['answer'][:40]}"
        print(f"{index:>2}  " + "".join(f"{fmt(c):>7}" for c in cells) + f"   {said}")


def _summary(report: CallReport, rows: list[dict[str, Any]]) -> dict[str, Any]:
    heard = [r["heard_ms"] for r in rows if r["heard_ms"] is not None and not r["overlapped"]]
    server = [
        r["server"]["turn_latency_ms"] for r in rows if r["server"]["turn_latency_ms"] is not None
    ]
    parts = {
        part: _median([r["server"][part] for r in rows if r["server"][part] is not None])
        for part in _PARTS
    }
    first_heard = None if report.first_response_s is None else report.first_response_s * 1000
    first_server = report.session.first_response_ms if report.session is not None else None
    return {
        "turns": len(rows),
        "answered": len(heard),
        "heard_ms": distribution(heard),
        "server_turn_latency_ms": distribution(server),
        "server_part_medians_ms": parts,
        "first_response_ms": {"heard": first_heard, "server": first_server},
        "playout_gaps": len(report.gaps),
        "targets": {
            "first_response_under_1500ms": first_heard is not None
            and first_heard < FIRST_RESPONSE_TARGET_MS,
            "first_response_under_300ms_aim": first_heard is not None
            and first_heard < FIRST_RESPONSE_AIM_MS,
            "median_heard_turn_latency_under_900ms": bool(heard)
            and statistics.median(heard) < MEDIAN_TURN_TARGET_MS,
            "median_server_turn_latency_under_900ms": bool(server)
            and statistics.median(server) < MEDIAN_TURN_TARGET_MS,
        },
    }


def _median(values: list[float]) -> float | None:
    return percentile(values, 0.5)


def _print_summary(summary: dict[str, Any]) -> None:
    heard, server = summary["heard_ms"], summary["server_turn_latency_ms"]
    first = summary["first_response_ms"]
    print(
        f"\nturn latency as heard:     median {fmt(heard['p50'])} ms, p95 {fmt(heard['p95'])} ms"
        f" ({heard['n']} of {summary['turns']} turns answered without overlap)"
    )
    print(f"turn latency, server side: median {fmt(server['p50'])} ms, p95 {fmt(server['p95'])} ms")
    medians = summary["server_part_medians_ms"]
    print(
        "server part medians:       "
        + ", ".join(f"{h} {fmt(medians[p])}" for h, p in zip(_HEADERS, _PARTS, strict=False))
    )
    print(
        f"first response:            {fmt(first['heard'])} ms heard, "
        f"{fmt(first['server'])} ms server"
    )
    print(f"playout gaps:              {summary['playout_gaps']}")
    for target, met in summary["targets"].items():
        print(f"  {'PASS' if met else 'FAIL'}  {target}")


async def main(args: argparse.Namespace) -> None:
    texts = (CALLER_LINES * (args.turns // len(CALLER_LINES) + 1))[: args.turns]
    lines = [CallerLine(text, synthesize_caller_speech(text)) for text in texts]
    with _server(args) as server:
        spec = demo_agent_spec().model_copy(update={"name": "Bench receptionist"})
        agent_id = create_agent(server, spec.model_dump(mode="json", by_alias=True))
        print(f"calling agent {agent_id} with {len(lines)} caller turns ...", flush=True)
        policy = ListeningPolicy(silence_ms=args.silence_ms, answer_timeout_s=30.0)
        report = await _call(server, agent_id, lines, policy, args.save_wav)
    rows = [_turn_row(turn) for turn in report.turns[1:]]
    _print_table(rows)
    summary = _summary(report, rows)
    _print_summary(summary)
    result = {
        "benchmark": "bench_call",
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "machine": machine(),
        "agent": "embedded defaults: whisper tiny.en, llama.cpp gemma3-270m, piper joe, silero",
        "server": "external" if args.server else "local subprocess",
        "greeting": " ".join(item.text for item in report.turns[0].agent_items),
        "summary": summary,
        "turns": rows,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"\nwrote {args.out}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--turns", type=int, default=12, help="caller turns (>= 10)")
    parser.add_argument("--server", help="call this running server instead of starting one")
    parser.add_argument("--api-key", help="an API key of --server")
    parser.add_argument("--data-dir", type=Path, help="the started server's data directory")
    parser.add_argument(
        "--silence-ms", type=float, default=800.0, help="agent silence that ends an answer"
    )
    parser.add_argument("--save-wav", type=Path, help="write the call as a stereo WAV")
    parser.add_argument("--out", type=Path, default=RESULTS_DIR / "call.json")
    parsed = parser.parse_args()
    parsed.turns = max(10, parsed.turns)
    asyncio.run(main(parsed))
