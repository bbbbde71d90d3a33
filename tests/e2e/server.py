"""A real voxline server process for end-to-end tests, and helpers to place calls on it."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from twilio.request_validator import RequestValidator

_STARTUP_TIMEOUT_S = 60.0


@dataclass
class RunningServer:
    base_url: str
    api_key: str
    env: dict[str, str]
    log_path: Path

    def client(self) -> httpx.Client:
        return httpx.Client(
            base_url=self.base_url,
            headers={"Authorization": f"Bearer {self.api_key}"},
            timeout=10.0,
        )

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


@dataclass(frozen=True)
class ConnectInstructions:
    """What the TwiML told Twilio: where to stream and with which relay token."""

    stream_url: str
    relay: str


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextmanager
def running_server(data_dir: Path, extra_env: Mapping[str, str]) -> Iterator[RunningServer]:
    """Start `voxline serve` in a subprocess on a free port; stop it at the end."""
    port = free_port()
    base_url = f"http://127.0.0.1:{port}"
    env = {
        **os.environ,
        "VOXLINE_DATA_DIR": str(data_dir),
        "VOXLINE_PUBLIC_BASE_URL": base_url,
        "VOXLINE_PORT": str(port),
        "VOXLINE_SEED_DEMO_AGENT": "false",
        "VOXLINE_PRELOAD_MODELS": "false",
        "VOXLINE_LOG_LEVEL": os.environ.get("VOXLINE_TEST_SERVER_LOG_LEVEL", "info"),
        **extra_env,
    }
    voxline = [sys.executable, "-m", "voxline.cli"]
    created = subprocess.run(
        [*voxline, "keys", "create", "--workspace", "e2e"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    api_key = created.stdout.strip().splitlines()[-1]
    log_path = data_dir / "server.log"
    with log_path.open("w") as log:
        process = subprocess.Popen([*voxline, "serve"], env=env, stdout=log, stderr=log)
    try:
        _wait_healthy(base_url, process, log_path)
        yield RunningServer(base_url=base_url, api_key=api_key, env=env, log_path=log_path)
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)


def _wait_healthy(base_url: str, process: subprocess.Popen[bytes], log_path: Path) -> None:
    deadline = time.monotonic() + _STARTUP_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"voxline serve exited early:\n{log_path.read_text()}")
        try:
            if httpx.get(f"{base_url}/ready", timeout=1.0).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"voxline serve did not become ready:\n{log_path.read_text()}")


def signed_webhook(
    server: RunningServer,
    auth_token: str,
    query: str,
    params: Mapping[str, str],
    *,
    signature: str | None = None,
) -> httpx.Response:
    """POST a Twilio voice webhook, signed as Twilio signs it (unless `signature` is given)."""
    url = f"{server.base_url}/v1/sessions/twilio?{query}"
    if signature is None:
        signature = RequestValidator(auth_token).compute_signature(url, dict(params))
    return httpx.post(
        url, data=dict(params), headers={"X-Twilio-Signature": signature}, timeout=10.0
    )


def connect_instructions(twiml: str) -> ConnectInstructions:
    root = ET.fromstring(twiml)
    stream = root.find("./Connect/Stream")
    assert stream is not None, twiml
    parameter = stream.find("./Parameter[@name='relay']")
    assert parameter is not None, twiml
    return ConnectInstructions(stream_url=stream.attrib["url"], relay=parameter.attrib["value"])


def webhook_params(call_sid: str, account_sid: str) -> dict[str, str]:
    return {
        "CallSid": call_sid,
        "AccountSid": account_sid,
        "From": "+14155550123",
        "To": "+18005550100",
        "CallStatus": "ringing",
        "Direction": "inbound",
        "ApiVersion": "2010-04-01",
        "Caller": "+14155550123",
        "Called": "+18005550100",
    }


def scripted_agent(**overrides: Any) -> dict[str, Any]:
    """An agent on scripted providers: deterministic and model-free."""
    agent: dict[str, Any] = {
        "name": "E2E receptionist",
        "systemPrompt": "You are a receptionist.",
        "firstMessage": "Hello, thanks for calling.",
        "stt": {"provider": "scripted", "transcripts": ["what are your hours"], "latencyMs": 50},
        "llm": {
            "provider": "scripted",
            "firstTokenMs": 50,
            "rules": [
                {
                    "match": "hours",
                    "say": "We are open from nine to five, Monday to Friday, and on "
                    "Saturday mornings from nine until noon.",
                },
                {"match": "bye", "say": "Goodbye!", "tool": {"name": "end_call"}},
            ],
        },
        "tts": {"provider": "scripted", "firstByteMs": 20, "msPerCharacter": 55},
        "tools": [{"type": "end_call"}],
        "turnTaking": {"vad": "energy"},
    }
    agent.update(overrides)
    return agent
