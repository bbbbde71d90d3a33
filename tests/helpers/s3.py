"""A local S3-compatible server (moto's, in its own process) for the recordings' bucket tests."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager

import httpx

from voxline.simulator.server_process import free_port

CREDENTIALS = {"AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test"}
REGION = "us-east-1"


@contextmanager
def running_s3_server() -> Iterator[str]:
    """moto's S3 server on a free loopback port; yields its endpoint URL."""
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    endpoint = f"http://127.0.0.1:{port}"
    try:
        for _ in range(300):
            try:
                httpx.get(endpoint, timeout=1.0)
                break
            except httpx.TransportError:
                time.sleep(0.05)
        else:
            raise AssertionError("moto's S3 server did not start")
        yield endpoint
    finally:
        process.terminate()
        process.wait(timeout=10)
