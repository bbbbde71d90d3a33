"""A `voxline serve` subprocess on a free loopback port: what end-to-end tests, `bench/` and
anyone measuring a real server process start their calls against."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx

_VOXLINE = (sys.executable, "-m", "voxline.cli")


@dataclass
class LocalServer:
    """A running server: its URL, an API key of its workspace, its pid, environment and log."""

    base_url: str
    api_key: str
    pid: int
    env: dict[str, str]
    log_path: Path
    process: subprocess.Popen[bytes] = field(repr=False)

    def client(self, timeout: float = 10.0) -> httpx.Client:
        """A client that authenticates with `api_key`."""
        return httpx.Client(
            base_url=self.base_url,
            headers={"Authorization": f"Bearer {self.api_key}"},
            timeout=timeout,
        )

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_exit(self, timeout: float) -> int:
        """Wait for the process to exit (after a signal); its exit status."""
        return self.process.wait(timeout=timeout)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextmanager
def running_server(
    data_dir: Path,
    env: Mapping[str, str],
    *,
    workspace: str = "default",
    startup_timeout: float = 60.0,
) -> Iterator[LocalServer]:
    """Create an API key for `workspace`, start `voxline serve` with `data_dir` and `env`
    (over this process's environment) and wait until it is ready; stop it on exit."""
    port = free_port()
    base_url = f"http://127.0.0.1:{port}"
    full_env = {
        **os.environ,
        "VOXLINE_DATA_DIR": str(data_dir),
        "VOXLINE_PUBLIC_BASE_URL": base_url,
        "VOXLINE_PORT": str(port),
        **env,
    }
    created = subprocess.run(
        [*_VOXLINE, "keys", "create", "--workspace", workspace],
        env=full_env,
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    api_key = created.stdout.strip().splitlines()[-1]
    log_path = data_dir / "server.log"
    with log_path.open("w") as log:
        process = subprocess.Popen([*_VOXLINE, "serve"], env=full_env, stdout=log, stderr=log)
    try:
        wait_ready(base_url, process, log_path, startup_timeout, "voxline serve")
        yield LocalServer(base_url, api_key, process.pid, full_env, log_path, process)
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


def wait_ready(
    base_url: str,
    process: subprocess.Popen[bytes],
    log_path: Path,
    timeout: float,
    what: str,
) -> None:
    """Wait until `base_url`/ready answers 200; RuntimeError (with the end of `log_path`) if
    `process` (`what`) exits first or `timeout` passes."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{what} exited early:\n{log_path.read_text()[-4000:]}")
        try:
            if httpx.get(f"{base_url}/ready", timeout=1.0).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"{what} was not ready in {timeout:.0f} s (log: {log_path})")
