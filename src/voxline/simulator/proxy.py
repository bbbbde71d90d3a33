"""Several `voxline serve` processes behind one haproxy, as docs/deploy.md lays them out: what
the fleet test and `bench/bench_load.py --through-proxy` run against."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from voxline.simulator.server_process import free_port, wait_ready

_UP_S = 30.0
"""How long haproxy may take to answer for its backends."""


class ProxyMissing(RuntimeError):
    pass


def haproxy_config(port: int, backends: Sequence[str], *, bind: str = "127.0.0.1") -> str:
    """The proxy configuration of docs/deploy.md: HTTP, WebSockets and SSE on one port,
    `backends` (host:port) chosen by fewest connections and checked on /ready."""
    servers = "\n".join(
        f"    server voxline{index + 1} {address} check" for index, address in enumerate(backends)
    )
    return f"""\
global
    # Each proxied connection holds two descriptors: keep 2 x maxconn under the fd limit.
    maxconn 5000

defaults
    mode http
    timeout connect 5s
    # A Twilio media stream or a browser session lasts as long as its call; an SSE stream sends
    # a comment every 15 s. Idle limits well above both:
    timeout client 1h
    timeout server 1h
    timeout tunnel 1h
    timeout http-request 10s

frontend voxline
    bind {bind}:{port}
    # What the processes take as the caller's address and scheme (Twilio signatures are
    # checked against VOXLINE_PUBLIC_BASE_URL, the URL of this frontend).
    option forwardfor
    default_backend voxline

backend voxline
    # Long-lived WebSockets: send each new connection to the process with the fewest.
    balance leastconn
    option httpchk GET /ready
    http-check expect status 200
{servers}
"""


@contextmanager
def running_haproxy(
    backends: Sequence[str], work_dir: Path, *, port: int | None = None
) -> Iterator[str]:
    """haproxy in front of `backends` (host:port); yields its base URL once every backend is
    up behind it. ProxyMissing if haproxy is not installed (Debian: apt-get install haproxy)."""
    binary = shutil.which("haproxy", path=f"{os.environ.get('PATH', '')}:/usr/sbin:/sbin")
    if binary is None:
        raise ProxyMissing("haproxy is not installed: apt-get install -y haproxy")
    port = port if port is not None else free_port()
    config = work_dir / "haproxy.cfg"
    config.write_text(haproxy_config(port, backends))
    log_path = work_dir / "haproxy.log"
    with log_path.open("w") as log:
        process = subprocess.Popen([binary, "-db", "-f", str(config)], stdout=log, stderr=log)
    base_url = f"http://127.0.0.1:{port}"
    try:
        wait_ready(base_url, process, log_path, _UP_S, "haproxy")
        yield base_url
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
