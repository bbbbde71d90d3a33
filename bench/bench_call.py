"""A phone call to the embedded defaults, measured as the caller hears it (issue 5).

A simulated Twilio caller calls an agent on Whisper tiny.en + llama.cpp Gemma 3 270M + Piper
(Silero VAD) over the real media-stream WebSocket, says `--turns` lines synthesized with Piper
in real time, waits for each answer to end, and hangs up. Per turn it prints the server's
latency accounting (GET /v1/sessions/:id: end-of-turn wait, STT, LLM first token, first
clause, TTS first byte, overhead, turn latency) beside the latency the caller measured (end of
its audio -> first agent audio heard), then medians, p95 and the first response, against the
targets (first response < 1.5 s, aim 0.3 s; median turn latency < 900 ms), and the false
endpoints: caller lines the server cut into more than one turn while the caller was still
speaking (each transcript turn is matched to the script line it holds most words of).

`--new-agent` calls an agent created `--created-before` seconds (default 1) before the call
with a greeting no agent had, so the first response shows what a new agent's first call costs
(its greeting is synthesized in the background from its creation on); without it the agent
has the seeded demo's greeting.

The server is started here (`voxline serve`, models preloaded) unless `--server` is given.
Run: `.venv/bin/python bench/bench_call.py [--turns 12] [--new-agent] [--server URL --api-key KEY]`.
Writes bench/results/call.json.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import difflib
import json
import re
import statistics
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

from harness import (
    RESULTS_DIR,
    Server,
    create_agent,
    describe_machine,
    distribution,
    fmt,
    local_server,
    machine,
    percentile,
)
from voxline.agent_spec import WhisperStt
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
NEW_AGENT_GREETING = "Good day, Bright Smile Dental, this is desk {desk}. What can I do for you?"
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
        "false_endpoints": false_endpoints(
            [turn.line.text for turn in report.turns[1:] if turn.line is not None],
            [item.text for turn in report.turns for item in turn.caller_items],
        ),
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


def _words(text: str) -> list[str]:
    return re.findall(r"[a-z0-9']+", text.lower())


def false_endpoints(lines: list[str], caller_turns: list[str]) -> list[tuple[str, list[str]]]:
    """The script lines whose words the server split over consecutive transcript turns, with
    those turns: each turn is assigned the line it shares the most words with (in order)."""
    owners: list[int | None] = []
    for turn in caller_turns:
        said = _words(turn)
        scores = [
            difflib.SequenceMatcher(a=_words(line), b=said, autojunk=False).get_matching_blocks()
            for line in lines
        ]
        matched = [sum(block.size for block in blocks) for blocks in scores]
        best = max(range(len(lines)), key=lambda i: matched[i]) if lines else None
        owners.append(best if best is not None and matched[best] > 0 else None)
    split: list[tuple[str, list[str]]] = []
    index = 0
    while index < len(caller_turns):
        end = index + 1
        while end < len(caller_turns) and owners[end] is not None and owners[end] == owners[index]:
            end += 1
        owner = owners[index]
        if owner is not None and end - index > 1:
            split.append((lines[owner], caller_turns[index:end]))
        index = end
    return split


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
    print(f"false endpoints:           {len(summary['false_endpoints'])}")
    for line, turns in summary["false_endpoints"]:
        print(f"    {line!r} cut into {' | '.join(repr(t) for t in turns)}")
    for target, met in summary["targets"].items():
        print(f"  {'PASS' if met else 'FAIL'}  {target}")


async def main(args: argparse.Namespace) -> None:
    print(describe_machine(), flush=True)
    texts = (CALLER_LINES * (args.turns // len(CALLER_LINES) + 1))[: args.turns]
    lines = [CallerLine(text, synthesize_caller_speech(text)) for text in texts]
    with _server(args) as server:
        update: dict[str, Any] = {"name": "Bench receptionist"}
        if args.new_agent:
            # A greeting of this run's own: nothing of it can be cached before the agent exists.
            update["first_message"] = NEW_AGENT_GREETING.format(desk=10 + time.time_ns() % 90)
        spec = demo_agent_spec().model_copy(update=update)
        if args.encoder_window_s is not None and isinstance(spec.stt, WhisperStt):
            stt = spec.stt.model_copy(update={"encoder_window_s": args.encoder_window_s})
            spec = spec.model_copy(update={"stt": stt})
        agent_id = create_agent(server, spec.model_dump(mode="json", by_alias=True))
        if args.new_agent:
            await asyncio.sleep(args.created_before)
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
        "new_agent": args.new_agent,
        "created_before_s": args.created_before if args.new_agent else None,
        "encoder_window_s": getattr(spec.stt, "encoder_window_s", None),
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
    parser.add_argument(
        "--new-agent", action="store_true", help="call an agent with a greeting of its own"
    )
    parser.add_argument(
        "--created-before",
        type=float,
        default=1.0,
        help="seconds between the new agent's creation and its call (with --new-agent)",
    )
    parser.add_argument(
        "--encoder-window-s",
        type=int,
        help="the agent's Whisper encoderWindowS (default: the spec's default)",
    )
    parser.add_argument("--out", type=Path, default=RESULTS_DIR / "call.json")
    parsed = parser.parse_args()
    parsed.turns = max(10, parsed.turns)
    asyncio.run(main(parsed))
