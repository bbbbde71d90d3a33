"""Backchannels, barge-ins and noises over a speaking agent, as a phone caller makes them.

A simulated Twilio caller calls an agent on the embedded models (Whisper tiny.en, Silero VAD,
Piper) whose scripted LLM answers every question with a long answer (~9 s). Into each answer,
1.2 s after it starts, the caller says one trial sound:
- backchannels ("Yeah.", "Okay.", "Mm-hmm.", ...), in several voices and speeds;
- real barge-ins ("Sorry, can I ask something else?", ...), of several lengths;
- a cough and a click.
It counts, per kind: backchannel false interruptions (the agent's answer was stopped: a
`clear` after the sound began), missed barge-ins (no `clear` within 2.5 s), the time from the
start of a barge-in to the `clear` (p50/p95), and the longest silence the caller heard in the
agent's audio in the 2 s after a backchannel or noise began.

Run: `.venv/bin/python bench/bench_interruptions.py [--trials 20] [--no-backchannels]`
(`--no-backchannels` measures the agent that stops at any speech longer than minSpeechMs, as
voxline did before). Writes bench/results/interruptions[-off].json.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import json
import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import soxr

from harness import (
    RESULTS_DIR,
    Server,
    create_agent,
    describe_machine,
    fmt,
    local_server,
    machine,
    percentile,
)
from voxline.audio.pcm import Pcm16
from voxline.simulator.dial import dial_with_api_key
from voxline.simulator.sessions import SessionsApi
from voxline.simulator.speech import read_caller_wav, synthesize_caller_speech, trim_silence
from voxline.simulator.twilio_peer import SimulatedTwilioCall

RATE = 8000
LONG_ANSWER = (
    "Of course. We open at nine in the morning. We close at five in the evening. On Saturdays "
    "we open at ten. We close at two on Saturdays. We are closed on Sundays. We are closed on "
    "public holidays too. The office is on the second floor. It is next to the pharmacy."
)
"""About 12 s of speech in short sentences: each clause is synthesized while the one before
plays, so the answer has no gaps of its own."""
BACKCHANNELS = ["Yeah.", "Okay.", "Mm-hmm.", "Uh-huh.", "Right.", "I see.", "Sure."]
BARGE_INS = [
    "Sorry, can I ask something else?",
    "Wait, what about Tuesday?",
    "No, I meant next week.",
    "Actually, could you repeat that?",
    "Hold on a second, please.",
]
QUESTION = "What are your opening hours?"
ONSET_AFTER_S = 1.2
WATCH_S = 2.5
SPEEDS = (0.9, 1.0, 1.12)
"""Playback speeds of the synthesized voices (a change of speed and pitch: other voices)."""


@dataclass
class Trial:
    kind: str  # backchannel | barge_in | noise
    label: str
    audio: Pcm16 = field(repr=False)


@dataclass
class Result:
    kind: str
    label: str
    seconds: float
    clear_ms: float | None
    """From the sound's start to the server's `clear`, if one came."""
    gap_ms: float
    """The longest silence in the agent's audio in the 2 s after the sound began."""


def _speed(pcm: Pcm16, factor: float) -> Pcm16:
    if factor == 1.0:
        return pcm
    out: Pcm16 = soxr.resample(pcm, round(RATE * factor), RATE)
    return out


def _espeak(text: str, voice: str) -> Pcm16 | None:
    binary = shutil.which("espeak-ng")
    if binary is None:
        return None
    with tempfile.NamedTemporaryFile(suffix=".wav") as wav:
        subprocess.run([binary, "-v", voice, "-w", wav.name, text], check=True)
        return trim_silence(read_caller_wav(Path(wav.name), RATE))


def _voices(text: str) -> list[tuple[str, Pcm16]]:
    piper = trim_silence(synthesize_caller_speech(text, RATE))
    voices = [(f"piper x{speed}", _speed(piper, speed)) for speed in SPEEDS]
    for voice in ("en-us", "en-us+f3"):
        spoken = _espeak(text, voice)
        if spoken is not None:
            voices.append((f"espeak {voice}", spoken))
    return voices


def _cough(seed: int) -> Pcm16:
    rng = np.random.default_rng(seed)
    n = int(RATE * 0.3)
    envelope = np.exp(-np.linspace(0, 6, n))
    burst = rng.normal(0, 9000, n) * envelope
    return np.clip(burst, -32768, 32767).astype(np.int16)


def _click() -> Pcm16:
    pcm = np.zeros(int(RATE * 0.08), dtype=np.int16)
    pcm[:40] = 20000
    pcm[320:340] = -15000
    return pcm


def trials(count: int) -> list[Trial]:
    """`count` trials of each kind, cycling through phrases and voices."""
    backchannel = [
        Trial("backchannel", f"{text} ({voice})", pcm)
        for text in BACKCHANNELS
        for voice, pcm in _voices(text)
    ]
    barge_in = [
        Trial("barge_in", f"{text} ({voice})", pcm)
        for text in BARGE_INS
        for voice, pcm in _voices(text)
    ]
    noise = [Trial("noise", f"cough {i}", _cough(i)) for i in range(3)]
    noise.append(Trial("noise", "click", _click()))
    chosen: list[Trial] = []
    for pool in (backchannel, barge_in, noise):
        chosen.extend(pool[(i * 7) % len(pool)] for i in range(count))
    return chosen


def _longest_silence(call: SimulatedTwilioCall, start: float, end: float) -> float:
    """The longest stretch in [start, end] with no agent audio playing, in ms."""
    spans = sorted(
        (max(s.start, start), min(s.end, end))
        for s in call.segments
        if s.end > start and s.start < end and np.abs(s.audio.astype(np.int32)).max() > 64
    )
    longest, cursor = 0.0, start
    for begin, finish in spans:
        longest = max(longest, begin - cursor)
        cursor = max(cursor, finish)
    return max(longest, end - cursor) * 1000


async def _while_agent_speaks(call: SimulatedTwilioCall) -> None:
    """Return once agent audio is playing (a loaded machine may leave gaps between clauses:
    speech over silence is no interruption to measure)."""
    for _ in range(250):
        if not call.agent_silent_for(40):
            return
        await asyncio.sleep(0.02)


async def run_trials(server: Server, agent_id: str, chosen: list[Trial]) -> list[Result]:
    question = trim_silence(synthesize_caller_speech(QUESTION, RATE))
    results: list[Result] = []
    async with httpx.AsyncClient(timeout=30.0) as http:
        dialed = await dial_with_api_key(http, server.base_url, agent_id, server.api_key)
        async with SimulatedTwilioCall(dialed.stream_url, relay=dialed.relay) as call:
            await call.wait_for_agent_audio(timeout=10)
            await call.wait_until_agent_silent(600, timeout=20)
            for trial in chosen:
                await call.wait_until_agent_silent(800, timeout=60)
                await call.speak(question)
                started = await call.wait_for_agent_audio(timeout=15)
                await asyncio.sleep(max(0.0, started + ONSET_AFTER_S - call.now()))
                await _while_agent_speaks(call)
                clears_before = len(call.clears)
                utterance = await call.speak(trial.audio)
                assert utterance.started_at is not None
                onset = utterance.started_at
                await asyncio.sleep(max(0.0, onset + WATCH_S - call.now()))
                clears = [t for t in call.clears[clears_before:] if t >= onset]
                clear_ms = (clears[0] - onset) * 1000 if clears else None
                gap = _longest_silence(call, onset, onset + 2.0)
                if clear_ms is not None:  # the agent answers what was said: hear it out
                    assert utterance.ended_at is not None
                    await call.wait_for_agent_audio(timeout=20, since=utterance.ended_at)
                results.append(Result(trial.kind, trial.label, utterance.duration, clear_ms, gap))
                print(
                    f"  {trial.kind:11} {trial.label:48} {utterance.duration * 1000:5.0f} ms "
                    f"clear {fmt(clear_ms):>5} gap {gap:5.0f}",
                    flush=True,
                )
        assert dialed.session_id is not None
        session = await SessionsApi(http, server.base_url, server.api_key).wait_finished(
            dialed.session_id, 30.0
        )
    backchannels = [i.text for i in session.transcript if i.data.get("backchannel")]
    print(f"  the server recorded {len(backchannels)} backchannels: {backchannels}")
    for item in session.transcript:
        if item.role in ("caller", "agent"):
            cut = " (interrupted)" if item.interrupted else ""
            print(f"    {item.role:6} {item.text[:70]}{cut}")
    return results


def summarize(results: list[Result]) -> dict[str, Any]:
    def of(kind: str) -> list[Result]:
        return [r for r in results if r.kind == kind]

    barge = of("barge_in")
    onsets = [r.clear_ms for r in barge if r.clear_ms is not None]
    quiet = of("backchannel") + of("noise")
    return {
        "backchannel_trials": len(of("backchannel")),
        "backchannel_false_interruptions": sum(r.clear_ms is not None for r in of("backchannel")),
        "noise_trials": len(of("noise")),
        "noise_false_interruptions": sum(r.clear_ms is not None for r in of("noise")),
        "barge_in_trials": len(barge),
        "missed_barge_ins": sum(r.clear_ms is None for r in barge),
        "barge_in_onset_to_clear_ms": {
            "p50": percentile(onsets, 0.5),
            "p95": percentile(onsets, 0.95),
            "max": max(onsets) if onsets else None,
        },
        "gap_after_backchannel_ms": {
            "p50": percentile([r.gap_ms for r in of("backchannel")], 0.5),
            "max": max((r.gap_ms for r in of("backchannel")), default=None),
        },
        "gap_after_noise_ms_max": max((r.gap_ms for r in of("noise")), default=None),
        "silences_ms_considered": [round(r.gap_ms) for r in quiet],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--trials", type=int, default=20, help="trials of each kind")
    parser.add_argument("--no-backchannels", action="store_true")
    args = parser.parse_args()
    info = machine()
    print(describe_machine(info), flush=True)
    chosen = trials(args.trials)
    spec: dict[str, Any] = {
        "name": "interruptions bench",
        "firstMessage": "Hello, this is the clinic.",
        "llm": {
            "provider": "scripted",
            "defaultReply": LONG_ANSWER,
            "firstTokenMs": 100,
            "tokensPerSecond": 400,
        },
        "turnTaking": {"interruptions": {"backchannels": not args.no_backchannels}},
        "limits": {"idleTimeoutS": 60},
    }
    env = {"VOXLINE_PRELOAD_MODELS": "true", "VOXLINE_LOG_LEVEL": "warning"}
    print("starting voxline serve (loading the embedded models) ...", flush=True)
    with local_server(env) as server:
        agent_id = create_agent(server, spec)
        results = asyncio.run(run_trials(server, agent_id, chosen))
    summary = summarize(results)
    mode = "off" if args.no_backchannels else "on"
    print(f"\nbackchannel detection {mode}, {args.trials} trials of each kind")
    print("| figure | value |\n| --- | --- |")
    onset = summary["barge_in_onset_to_clear_ms"]
    rows = [
        (
            "backchannels that stopped the agent",
            f"{summary['backchannel_false_interruptions']} / {summary['backchannel_trials']}",
        ),
        (
            "coughs and clicks that stopped the agent",
            f"{summary['noise_false_interruptions']} / {summary['noise_trials']}",
        ),
        ("missed barge-ins", f"{summary['missed_barge_ins']} / {summary['barge_in_trials']}"),
        ("barge-in onset to clear, p50 / p95", f"{fmt(onset['p50'])} / {fmt(onset['p95'])} ms"),
        (
            "longest silence heard after a backchannel, p50 / max",
            f"{fmt(summary['gap_after_backchannel_ms']['p50'])} / "
            f"{fmt(summary['gap_after_backchannel_ms']['max'])} ms",
        ),
    ]
    for name, value in rows:
        print(f"| {name} | {value} |")
    RESULTS_DIR.mkdir(exist_ok=True)
    out = RESULTS_DIR / ("interruptions-off.json" if args.no_backchannels else "interruptions.json")
    out.write_text(
        json.dumps(
            {
                "measured_at": datetime.datetime.now(datetime.UTC).isoformat(),
                "machine": info,
                "summary": summary,
                "trials": [r.__dict__ for r in results],
            },
            indent=2,
        )
    )
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
