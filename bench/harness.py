"""What the call benchmarks share: a voxline server to call (started here, or one already
running), agents on it, speech for the callers, and percentiles.
"""

from __future__ import annotations

import math
import os
import platform
import subprocess
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import numpy as np

from voxline.audio.pcm import Pcm16
from voxline.simulator.server_process import running_server

RESULTS_DIR = Path(__file__).parent / "results"


@dataclass(frozen=True)
class Server:
    """A voxline server to call; `pid` when it runs on this machine (for CPU and memory)."""

    base_url: str
    api_key: str
    pid: int | None
    log_path: Path | None = None

    def client(self, timeout: float = 30.0) -> httpx.Client:
        return httpx.Client(
            base_url=self.base_url,
            headers={"Authorization": f"Bearer {self.api_key}"},
            timeout=timeout,
        )


@contextmanager
def local_server(
    env: Mapping[str, str], *, data_dir: Path | None = None, startup_timeout: float = 600.0
) -> Iterator[Server]:
    """`voxline serve` in a subprocess on a free port, with `data_dir` (default: a new
    temporary directory) as its data directory."""
    with (
        tempfile.TemporaryDirectory(prefix="voxline-bench-") as tmp,
        running_server(
            data_dir or Path(tmp), env, workspace="bench", startup_timeout=startup_timeout
        ) as server,
    ):
        yield Server(server.base_url, server.api_key, server.pid, server.log_path)


def create_agent(server: Server, spec: dict[str, Any]) -> str:
    with server.client() as client:
        response = client.post("/v1/agents", json=spec)
    if response.status_code != 201:
        raise RuntimeError(f"could not create the agent: {response.text}")
    agent_id: str = response.json()["id"]
    return agent_id


def trim_to_voiced(pcm: Pcm16, floor_dbfs: float = -30.0, frame: int = 160) -> Pcm16:
    """`pcm` without trailing 20 ms frames quieter than `floor_dbfs` (RMS): the audio then
    ends where a voice activity detector last hears speech, so that the caller's end of
    audio and the server's end of speech are the same moment."""
    floor = (10 ** (floor_dbfs / 20) * 32768) ** 2
    end = len(pcm)
    while end >= frame:
        block = pcm[end - frame : end].astype(np.float64)
        if float(np.mean(block * block)) >= floor:
            break
        end -= frame
    return pcm[:end]


def percentile(values: Sequence[float], fraction: float) -> float | None:
    """Nearest-rank percentile; None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(0, math.ceil(fraction * len(ordered)) - 1)]


def distribution(values: Sequence[float]) -> dict[str, float | int | None]:
    """Count, median, p95, p99 and max of `values`."""
    return {
        "n": len(values),
        "p50": percentile(values, 0.50),
        "p95": percentile(values, 0.95),
        "p99": percentile(values, 0.99),
        "max": max(values) if values else None,
    }


def machine() -> dict[str, Any]:
    """What the figures were measured on: the CPU model and its AVX2 / AVX-512 flags (from
    lscpu, else /proc/cpuinfo), cores, Python, and the instruction set CTranslate2 (Whisper)
    was forced to with `CT2_FORCE_CPU_ISA`, if it was."""
    try:
        text = subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        cpuinfo = Path("/proc/cpuinfo")
        text = cpuinfo.read_text() if cpuinfo.exists() else ""
    model, flags = platform.processor() or "unknown", set[str]()
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() in ("Model name", "model name"):
            model = value.strip()
        elif key.strip() in ("Flags", "flags"):
            flags = set(value.split())
    return {
        "cpus": os.cpu_count(),
        "cpu": model,
        "avx2": "avx2" in flags,
        "avx512": sorted(flag for flag in flags if flag.startswith("avx512")),
        "ct2_forced_isa": os.environ.get("CT2_FORCE_CPU_ISA"),
        "python": platform.python_version(),
    }


def describe_machine(info: Mapping[str, Any] | None = None) -> str:
    """One line for a benchmark's first output: `machine()` as people read it."""
    info = info if info is not None else machine()
    line = (
        f"CPU: {info['cpu']}; avx2: {'yes' if info['avx2'] else 'no'}; "
        f"avx512: {' '.join(info['avx512']) or 'no'}; {info['cpus']} CPUs; "
        f"Python {info['python']}"
    )
    if info["ct2_forced_isa"]:
        line += f"; Whisper (CTranslate2) forced to {info['ct2_forced_isa']}"
    return line


def fmt(value: float | int | None, digits: int = 0) -> str:
    return "-" if value is None else f"{value:.{digits}f}"
