"""Concurrent phone calls on one server process: what voxline itself costs per call (issue 6).

For each N in `--calls` (default 1, 10, 50, 100, 200), N simulated Twilio callers call one
server process at once (starts staggered over `--ramp` seconds) over the real media-stream
WebSocket: greeting, `--turns` caller lines (the same pre-synthesized speech), hang up. The
agent runs on scripted providers of fixed latency (STT 150 ms, LLM first token 250 ms, TTS
first byte 40 ms) with the energy VAD, so everything beyond them is voxline's own cost.

Per N it reports:
- turn latency as heard by the caller (end of caller audio -> first agent audio heard);
- overhead: heard latency minus the provider and end-of-turn parts the server measured for
  that turn (so it includes both network legs and the caller's playout), and the server's
  own `overheadMs`;
- outbound audio gaps: silences inside an answer the caller would hear as breaks;
- the server's event-loop lag (GET /v1/debug/runtime; the server runs with
  VOXLINE_LAG_MONITOR=true), its CPU seconds per call-minute and memory per call (psutil);
- the callers' own loop lag: the simulated callers run in separate processes
  (`--caller-processes`) and need CPU too; on a 2-core machine they share the cores with the
  server, and a saturated caller process makes the caller-side figures worse than the truth.

With `--processes N --through-proxy` the calls go to N server processes sharing PostgreSQL
(`--database-url` of a database of its own, required; it is migrated) and Redis
(`--redis-url`) behind haproxy, configured as docs/deploy.md shows: the server figures are
then summed (CPU, memory) or the worst of the processes (loop lag), and the overhead
includes the proxy's hop.

Run: `.venv/bin/python bench/bench_load.py [--calls 1,10,50] [--profile]`. Writes
bench/results/load.json and load.png (load-<N>p-proxy.* with --processes N --through-proxy;
load-profile.speedscope.json with --profile).
"""

from __future__ import annotations

import argparse
import asyncio
import concurrent.futures
import datetime
import json
import multiprocessing
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import psutil

from harness import (
    RESULTS_DIR,
    Server,
    create_agent,
    describe_machine,
    distribution,
    fmt,
    local_server,
    machine,
    trim_to_voiced,
)
from voxline.audio.pcm import Pcm16
from voxline.loop_lag import LoopLagMonitor
from voxline.simulator.conversation import CallerLine, ListeningPolicy, converse
from voxline.simulator.dial import dial_with_api_key
from voxline.simulator.proxy import running_haproxy
from voxline.simulator.server_process import free_port
from voxline.simulator.speech import synthesize_caller_speech
from voxline.simulator.twilio_peer import SimulatedTwilioCall

STT_MS, LLM_FIRST_TOKEN_MS, TTS_FIRST_BYTE_MS = 150, 250, 40
AGENT: dict[str, Any] = {
    "name": "Load bench agent",
    "systemPrompt": "You are a restaurant host.",
    "firstMessage": "Hello, thanks for calling. How can I help?",
    "stt": {
        "provider": "scripted",
        "latencyMs": STT_MS,
        "transcripts": [
            "I'd like to book a table for tonight.",
            "Do you have anything at seven?",
            "Great, thank you.",
        ],
    },
    "llm": {
        "provider": "scripted",
        "firstTokenMs": LLM_FIRST_TOKEN_MS,
        "tokensPerSecond": 50,
        "defaultReply": "Sure, I can help with that. We have a table at seven. Anything else?",
    },
    "tts": {"provider": "scripted", "firstByteMs": TTS_FIRST_BYTE_MS, "msPerCharacter": 60},
    "turnTaking": {"vad": "energy"},
}
# No commas: a pause inside a line longer than the shortest end-of-turn silence (250 ms)
# would end the caller's turn early and make the agent answer half a line.
CALLER_LINES = [
    "I would like to book a table for tonight.",
    "Do you have anything at seven?",
    "That sounds great thank you.",
]
PROVIDER_PARTS = (
    "endOfTurnWaitMs",
    "sttMs",
    "llmFirstTokenMs",
    "firstClauseMs",
    "ttsFirstByteMs",
)
# A caller process whose own loop is this late cannot time its audio or its listening well.
CALLER_LAG_WARNING_MS = 20.0


@dataclass
class CallResult:
    """What one simulated caller measured (picklable: it crosses process boundaries)."""

    index: int
    session_id: str | None = None
    error: str | None = None
    duration_s: float = 0.0
    first_response_ms: float | None = None
    heard_ms: list[float | None] = field(default_factory=list)
    overlapped: list[bool] = field(default_factory=list)
    gaps_ms: list[float] = field(default_factory=list)
    unanswered: int = 0
    ended_by: str | None = None


@dataclass
class CallerBatch:
    calls: list[CallResult]
    cpu_seconds: float
    loop_lag_p99_ms: float | None
    loop_lag_max_ms: float | None


# --- the callers (in their own processes) ------------------------------------------------


def _warm_up_caller_process() -> int:
    """Imports are done at spawn; this just proves the process is up."""
    return multiprocessing.current_process().pid or 0


def run_callers(
    server_url: str,
    api_key: str,
    agent_id: str,
    plan: list[tuple[int, float]],
    lines: list[tuple[str, Pcm16]],
    silence_ms: float,
) -> CallerBatch:
    """Place the calls of `plan` ((index, wall-clock start) pairs) from this process."""
    return asyncio.run(_callers(server_url, api_key, agent_id, plan, lines, silence_ms))


async def _callers(
    server_url: str,
    api_key: str,
    agent_id: str,
    plan: list[tuple[int, float]],
    lines: list[tuple[str, Pcm16]],
    silence_ms: float,
) -> CallerBatch:
    cpu_before = time.process_time()
    monitor = LoopLagMonitor()
    monitor.start()
    caller_lines = [CallerLine(text, pcm) for text, pcm in lines]
    policy = ListeningPolicy(silence_ms=silence_ms, greeting_timeout_s=15, answer_timeout_s=15)
    limits = httpx.Limits(max_connections=50)
    async with httpx.AsyncClient(timeout=60.0, limits=limits) as http:
        calls = await asyncio.gather(
            *(
                _one_call(http, server_url, api_key, agent_id, index, start, caller_lines, policy)
                for index, start in plan
            )
        )
    lag = monitor.summary()
    await monitor.aclose()
    return CallerBatch(list(calls), time.process_time() - cpu_before, lag.p99_ms, lag.max_ms)


async def _one_call(
    http: httpx.AsyncClient,
    server_url: str,
    api_key: str,
    agent_id: str,
    index: int,
    start: float,
    lines: list[CallerLine],
    policy: ListeningPolicy,
) -> CallResult:
    await asyncio.sleep(max(0.0, start - time.time()))
    result = CallResult(index=index)
    began = time.monotonic()
    try:
        dialed = await dial_with_api_key(http, server_url, agent_id, api_key)
        result.session_id = dialed.session_id
        call = SimulatedTwilioCall(dialed.stream_url, relay=dialed.relay, open_timeout=60)
        async with call:
            outcome = await converse(call, lines, policy)
    except Exception as exc:  # a call that fails is a result of the benchmark, not its end
        result.error = f"{type(exc).__name__}: {exc}"
        return result
    result.duration_s = time.monotonic() - began
    first = call.first_response
    result.first_response_ms = None if first is None else first * 1000
    for turn in call.turns():
        result.heard_ms.append(None if turn.latency is None else turn.latency * 1000)
        result.overlapped.append(turn.overlapped)
    result.gaps_ms = [gap.duration * 1000 for gap in call.playout_gaps()]
    result.unanswered = len(outcome.unanswered)
    result.ended_by = outcome.ended_by
    if call.errors:
        result.error = "; ".join(call.errors[:3])
    return result


# --- the server side -----------------------------------------------------------------------


_SERVER_ENV = {
    "VOXLINE_LAG_MONITOR": "true",
    "VOXLINE_PRELOAD_MODELS": "false",
    "VOXLINE_SEED_DEMO_AGENT": "false",
    "VOXLINE_LOG_LEVEL": "warning",
}


@dataclass(frozen=True)
class Target:
    """Where the callers call (`entry`: a server, or the proxy) and the processes behind it."""

    entry: Server
    processes: list[Server]


@contextmanager
def _target(args: argparse.Namespace) -> Iterator[Target]:
    if args.server is not None:
        if args.api_key is None:
            raise SystemExit("--server needs --api-key")
        server = Server(args.server.rstrip("/"), args.api_key, pid=_remote_pid(args))
        yield Target(server, [server])
    elif args.processes > 1 or args.through_proxy:
        with _fleet(args) as target:
            yield target
    else:
        env = dict(_SERVER_ENV)
        if args.database_url:
            env["VOXLINE_DATABASE_URL"] = args.database_url
        with local_server(env) as server:
            yield Target(server, [server])


@contextmanager
def _fleet(args: argparse.Namespace) -> Iterator[Target]:
    """`--processes` servers sharing PostgreSQL and Redis, behind haproxy if asked."""
    if not args.database_url or not args.database_url.startswith("postgresql"):
        raise SystemExit("--processes N needs --database-url postgresql+asyncpg://... (shared)")
    if args.processes > 1 and not args.through_proxy:
        raise SystemExit("--processes N needs --through-proxy: the callers call one address")
    proxy_port = free_port()
    prefix = f"voxline-bench-{uuid.uuid4().hex[:8]}"
    env = {
        **_SERVER_ENV,
        "VOXLINE_DATABASE_URL": args.database_url,
        "VOXLINE_REDIS_URL": args.redis_url,
        "VOXLINE_REDIS_PREFIX": prefix,
        "VOXLINE_SECRET_KEY": secrets.token_urlsafe(32),
        "VOXLINE_PUBLIC_BASE_URL": f"http://127.0.0.1:{proxy_port}",
    }
    with ExitStack() as stack:
        work = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="voxline-fleet-")))
        # One after the other: the first migrates the shared database.
        processes = []
        for index in range(args.processes):
            (work / f"p{index}").mkdir()
            processes.append(stack.enter_context(local_server(env, data_dir=work / f"p{index}")))
        backends = [server.base_url.removeprefix("http://") for server in processes]
        proxy_url = stack.enter_context(running_haproxy(backends, work, port=proxy_port))
        yield Target(Server(proxy_url, processes[0].api_key, None), processes)


def _remote_pid(args: argparse.Namespace) -> int | None:
    """The server's pid from its debug endpoint, if it runs on this machine with the monitor."""
    stats = _runtime_stats(Server(args.server, args.api_key, None), None)
    pid = stats.get("pid") if stats else None
    return pid if isinstance(pid, int) and psutil.pid_exists(pid) else None


def _runtime_stats(server: Server, since: float | None) -> dict[str, Any] | None:
    params = {} if since is None else {"since": since}
    with server.client() as client:
        response = client.get("/v1/debug/runtime", params=params)
    if response.status_code == 404:
        return None
    response.raise_for_status()
    stats: dict[str, Any] = response.json()
    return stats


def _wait_idle(server: Server, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        stats = _runtime_stats(server, None)
        if stats is None or stats["activeCalls"] == 0:
            return
        time.sleep(0.5)


def _sessions(server: Server, calls: list[CallResult]) -> dict[str, dict[str, Any]]:
    """Each call's session once finished (the last metrics are written at the end)."""
    found: dict[str, dict[str, Any]] = {}
    deadline = time.monotonic() + 60
    with server.client() as client:
        for call in calls:
            if call.session_id is None:
                continue
            while True:
                body: dict[str, Any] = client.get(f"/v1/sessions/{call.session_id}").json()
                if body.get("status") in ("completed", "failed") or time.monotonic() > deadline:
                    found[call.session_id] = body
                    break
                time.sleep(0.2)
    return found


@contextmanager
def _profiled(pid: int | None, enabled: bool, out: Path) -> Iterator[None]:
    """py-spy recording the server for as long as the block runs."""
    if not enabled:
        yield
        return
    if pid is None:
        raise SystemExit("--profile needs the server's pid: run it locally")
    spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    command = [spy, "record", "--pid", str(pid), "--rate", "100", "--nonblocking"]
    command += ["--format", "speedscope", "--output", str(out)]
    profiler = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        yield
    finally:
        profiler.send_signal(signal.SIGINT)
        try:
            profiler.wait(timeout=60)
        except subprocess.TimeoutExpired:
            profiler.kill()
        print(f"profile: {out}")


# --- one load level --------------------------------------------------------------------------


def run_level(
    target: Target,
    agent_id: str,
    calls: int,
    args: argparse.Namespace,
    pool: concurrent.futures.ProcessPoolExecutor,
    lines: list[tuple[str, Pcm16]],
) -> dict[str, Any]:
    server = target.entry
    for backend in target.processes:
        _wait_idle(backend)
    processes = [psutil.Process(b.pid) for b in target.processes if b.pid is not None]
    cpu_before = _cpu_seconds(processes)
    rss_before = sum(p.memory_info().rss for p in processes) if processes else None
    stats_before = [_runtime_stats(backend, None) for backend in target.processes]
    psutil.cpu_percent()  # starts the machine-wide measurement read after the calls
    start = time.time() + 0.5
    step = args.ramp / calls if calls > 1 else 0.0
    plan = [(index, start + index * step) for index in range(calls)]
    workers = min(args.caller_processes, calls)
    futures = [
        pool.submit(
            run_callers,
            server.base_url,
            server.api_key,
            agent_id,
            plan[worker::workers],
            lines,
            args.silence_ms,
        )
        for worker in range(workers)
    ]
    rss_peak = rss_before or 0
    while not all(future.done() for future in futures):
        concurrent.futures.wait(futures, timeout=0.25)
        if processes:
            rss_peak = max(rss_peak, sum(p.memory_info().rss for p in processes))
    cpu_after = _cpu_seconds(processes)
    cpu_used = None if cpu_before is None or cpu_after is None else cpu_after - cpu_before
    machine_busy = psutil.cpu_percent()
    stats_after = [
        _runtime_stats(backend, before["clockS"]) if before else None
        for backend, before in zip(target.processes, stats_before, strict=True)
    ]
    batches: list[CallerBatch] = [future.result() for future in futures]
    results = sorted((c for batch in batches for c in batch.calls), key=lambda c: c.index)
    sessions = _sessions(server, results)
    level = _level_summary(calls, results, sessions, batches)
    call_minutes = sum(c.duration_s for c in results if c.error is None) / 60
    level["machine_cpu_percent"] = machine_busy
    level["caller_cpu_seconds_per_call_minute"] = (
        sum(batch.cpu_seconds for batch in batches) / call_minutes if call_minutes else None
    )
    level["server"] = {
        "processes": len(target.processes),
        "cpu_seconds_per_call_minute": cpu_used / call_minutes
        if cpu_used is not None and call_minutes
        else None,
        "memory_mb_per_call": (rss_peak - rss_before) / calls / 2**20
        if rss_before is not None
        else None,
        "rss_peak_mb": rss_peak / 2**20 if processes else None,
        "loop_lag_ms": _worst_lag([_lag(stats) for stats in stats_after]),
    }
    return level


def _worst_lag(lags: list[dict[str, Any] | None]) -> dict[str, Any] | None:
    """Each figure's worst over the processes (one process: its own)."""
    known = [lag for lag in lags if lag is not None]
    if not known:
        return None
    worst: dict[str, Any] = {"samples": sum(lag["samples"] for lag in known)}
    for key in ("p50", "p99", "max"):
        values = [lag[key] for lag in known if lag[key] is not None]
        worst[key] = max(values) if values else None
    return worst


def _cpu_seconds(processes: list[psutil.Process]) -> float | None:
    if not processes:
        return None
    return float(sum(p.cpu_times().user + p.cpu_times().system for p in processes))


def _lag(stats: dict[str, Any] | None) -> dict[str, Any] | None:
    if stats is None:
        return None
    lag = stats["loopLag"]
    return {
        "samples": lag["samples"],
        "p50": lag["p50Ms"],
        "p99": lag["p99Ms"],
        "max": lag["maxMs"],
    }


def _level_summary(
    calls: int,
    results: list[CallResult],
    sessions: dict[str, dict[str, Any]],
    batches: Sequence[CallerBatch],
) -> dict[str, Any]:
    heard: list[float] = []
    caller_overhead: list[float] = []
    server_overhead: list[float] = []
    transport: list[float] = []
    misaligned = 0
    for call in results:
        session = sessions.get(call.session_id or "")
        metrics = (session or {}).get("metrics", [])
        spoken = [i for i in (session or {}).get("transcript", []) if i["role"] == "caller"]
        aligned = len(spoken) == len(call.heard_ms) == len(metrics)
        misaligned += 0 if aligned or call.error else 1
        for index, latency in enumerate(call.heard_ms):
            if latency is None or call.overlapped[index]:
                continue
            heard.append(latency)
            if not aligned:
                continue
            turn = metrics[index]
            if turn["turnLatencyMs"] is None:
                continue
            parts = sum(turn[name] or 0.0 for name in PROVIDER_PARTS)
            caller_overhead.append(latency - parts)
            transport.append(latency - turn["turnLatencyMs"])
            if turn["overheadMs"] is not None:
                server_overhead.append(turn["overheadMs"])
    gaps = [gap for call in results for gap in call.gaps_ms]
    caller_lag = [b.loop_lag_p99_ms for b in batches if b.loop_lag_p99_ms is not None]
    return {
        "calls": calls,
        "failed": sum(1 for c in results if c.error is not None),
        "errors": sorted({c.error for c in results if c.error is not None})[:5],
        "unanswered_turns": sum(c.unanswered for c in results),
        "misaligned_calls": misaligned,
        "first_response_ms": distribution(
            [c.first_response_ms for c in results if c.first_response_ms is not None]
        ),
        "heard_turn_latency_ms": distribution(heard),
        "caller_overhead_ms": distribution(caller_overhead),
        "heard_minus_server_latency_ms": distribution(transport),
        "server_overhead_ms": distribution(server_overhead),
        "gaps": {
            "count": len(gaps),
            "calls_with_gaps": sum(1 for c in results if c.gaps_ms),
            "longest_ms": max(gaps) if gaps else None,
            "total_ms": sum(gaps),
        },
        "caller_loop_lag_p99_ms": max(caller_lag) if caller_lag else None,
    }


# --- output ------------------------------------------------------------------------------------


# (title, width) of each column; all times in ms, CPU in seconds per call-minute.
_COLUMNS = (
    ("calls", 5),
    ("fail", 4),
    ("heard p50/p95/p99", 17),
    ("ovh caller p50/p99", 18),
    ("ovh server p50/p99", 18),
    ("gaps n/max", 10),
    ("srv lag p50/p99/max", 19),
    ("srv cpu", 7),
    ("srv MB/call", 11),
    ("caller lag p99", 14),
    ("caller cpu", 10),
    ("machine cpu", 11),
)


def _print_header() -> None:
    print("\n" + " | ".join(f"{title:>{width}}" for title, width in _COLUMNS))


def _print_level(level: dict[str, Any]) -> None:
    heard, caller = level["heard_turn_latency_ms"], level["caller_overhead_ms"]
    server_ovh, gaps, server = level["server_overhead_ms"], level["gaps"], level["server"]
    lag = server["loop_lag_ms"] or {}
    cells = (
        str(level["calls"]),
        str(level["failed"]),
        _trio(heard["p50"], heard["p95"], heard["p99"]),
        _trio(caller["p50"], caller["p99"]),
        _trio(server_ovh["p50"], server_ovh["p99"]),
        _trio(gaps["count"], gaps["longest_ms"]),
        _trio(lag.get("p50"), lag.get("p99"), lag.get("max"), digits=1),
        fmt(server["cpu_seconds_per_call_minute"], 2),
        fmt(server["memory_mb_per_call"], 2),
        fmt(level["caller_loop_lag_p99_ms"], 1),
        fmt(level["caller_cpu_seconds_per_call_minute"], 2),
        f"{fmt(level['machine_cpu_percent'])}%",
    )
    row = " | ".join(f"{cell:>{width}}" for cell, (_, width) in zip(cells, _COLUMNS, strict=True))
    print(row, flush=True)
    if level["errors"]:
        print(f"      errors: {level['errors']}")
    lag_p99 = level["caller_loop_lag_p99_ms"]
    if lag_p99 is not None and lag_p99 > CALLER_LAG_WARNING_MS:
        print(
            f"      caller processes lagged (p99 {lag_p99:.0f} ms): caller-side figures "
            "overstate latency and gaps at this level"
        )


def _trio(*values: float | int | None, digits: int = 0) -> str:
    return "/".join(fmt(value, digits) for value in values)


def _plot(levels: list[dict[str, Any]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    counts = [level["calls"] for level in levels]
    fig, (latency, gaps) = plt.subplots(1, 2, figsize=(10, 4))
    for key, label in (("caller_overhead_ms", "caller"), ("server_overhead_ms", "server")):
        for stat, style in (("p50", "-o"), ("p99", "--o")):
            values = [level[key][stat] for level in levels]
            latency.plot(counts, values, style, label=f"{label} overhead {stat}")
    latency.axhline(50, color="grey", linewidth=0.8, linestyle=":", label="50 ms goal (p99)")
    latency.set(xscale="log", xlabel="concurrent calls", ylabel="ms", title="Overhead per turn")
    latency.legend(fontsize=8)
    gaps.plot(counts, [level["gaps"]["count"] for level in levels], "-o", label="gaps")
    gaps.plot(
        counts,
        [level["gaps"]["calls_with_gaps"] for level in levels],
        "--o",
        label="calls with gaps",
    )
    gaps.set(xscale="log", xlabel="concurrent calls", title="Audible gaps inside answers")
    gaps.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)


# --- main ----------------------------------------------------------------------------------------


def main(args: argparse.Namespace) -> None:
    print(describe_machine(), flush=True)
    lines = [(text, trim_to_voiced(synthesize_caller_speech(text))) for text in CALLER_LINES]
    lines = lines[: max(1, args.turns)]
    args.out_dir.mkdir(parents=True, exist_ok=True)
    context = multiprocessing.get_context("spawn")
    levels: list[dict[str, Any]] = []
    with (
        concurrent.futures.ProcessPoolExecutor(args.caller_processes, mp_context=context) as pool,
        _target(args) as target,
    ):
        server = target.entry
        for future in [pool.submit(_warm_up_caller_process) for _ in range(args.caller_processes)]:
            future.result()
        agent_id = create_agent(server, AGENT)
        pids = ", ".join(str(backend.pid) for backend in target.processes)
        via = " behind haproxy" if args.through_proxy else ""
        print(
            f"server pid(s) {pids}{via}, agent {agent_id}, {len(lines)} caller turns per call, "
            f"{args.caller_processes} caller process(es), ramp {args.ramp:.1f} s",
            flush=True,
        )
        _print_header()
        profile = args.out_dir / "load-profile.speedscope.json"
        with _profiled(target.processes[0].pid, args.profile, profile):
            for calls in args.calls:
                level = run_level(target, agent_id, calls, args, pool, lines)
                levels.append(level)
                _print_level(level)
    result = {
        "benchmark": "bench_load",
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "machine": machine(),
        "setup": {
            "providers_ms": {
                "stt": STT_MS,
                "llm_first_token": LLM_FIRST_TOKEN_MS,
                "tts_first_byte": TTS_FIRST_BYTE_MS,
            },
            "vad": "energy",
            "turns_per_call": len(lines),
            "ramp_s": args.ramp,
            "caller_processes": args.caller_processes,
            "database": "external" if args.server else _database_kind(args.database_url),
            "processes": args.processes,
            "through_proxy": args.through_proxy,
        },
        "levels": levels,
    }
    name = f"load-{args.processes}p-proxy" if args.through_proxy else "load"
    (args.out_dir / f"{name}.json").write_text(json.dumps(result, indent=2) + "\n")
    _plot(levels, args.out_dir / f"{name}.png")
    print(f"\nwrote {args.out_dir / f'{name}.json'} and {args.out_dir / f'{name}.png'}")


def _database_kind(url: str | None) -> str:
    """postgresql or sqlite: never the URL itself (it may hold a password)."""
    return "sqlite" if not url else url.split(":", 1)[0].split("+", 1)[0]


def _counts(text: str) -> list[int]:
    counts = [int(part) for part in text.split(",") if part.strip()]
    if not counts or min(counts) < 1:
        raise argparse.ArgumentTypeError("give positive call counts, e.g. 1,10,50")
    return counts


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=_counts, default=[1, 10, 50, 100, 200])
    parser.add_argument("--turns", type=int, default=3, help="caller lines per call (1 to 3)")
    parser.add_argument("--ramp", type=float, default=5.0, help="seconds over which calls start")
    parser.add_argument("--caller-processes", type=int, default=1)
    parser.add_argument("--silence-ms", type=float, default=600.0)
    parser.add_argument("--server", help="load this running server instead of starting one")
    parser.add_argument("--api-key", help="an API key of --server")
    parser.add_argument("--database-url", help="the started server's VOXLINE_DATABASE_URL")
    parser.add_argument("--processes", type=int, default=1, help="server processes (fleet)")
    parser.add_argument(
        "--through-proxy", action="store_true", help="call the processes through haproxy"
    )
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/0", help="for --processes")
    parser.add_argument("--profile", action="store_true", help="record the server with py-spy")
    parser.add_argument("--out-dir", type=Path, default=RESULTS_DIR)
    main(parser.parse_args())
