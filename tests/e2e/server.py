"""A real voxline server process for end-to-end tests, and helpers to place calls on it."""

from __future__ import annotations

import os
import xml.etree.ElementTree as ET
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from twilio.request_validator import RequestValidator

from voxline.simulator.server_process import LocalServer
from voxline.simulator.server_process import running_server as start_server

RunningServer = LocalServer


@dataclass(frozen=True)
class ConnectInstructions:
    """What the TwiML told Twilio: where to stream and with which relay token."""

    stream_url: str
    relay: str


@contextmanager
def running_server(data_dir: Path, extra_env: Mapping[str, str]) -> Iterator[LocalServer]:
    """A `voxline serve` process for a test: no demo seed, no model preloading (unless
    `extra_env` asks), log level from VOXLINE_TEST_SERVER_LOG_LEVEL."""
    env = {
        "VOXLINE_SEED_DEMO_AGENT": "false",
        "VOXLINE_PRELOAD_MODELS": "false",
        # The vendor fakes and webhook receivers of these tests listen on loopback.
        "VOXLINE_EGRESS_ALLOW": '["127.0.0.0/8", "::1/128"]',
        "VOXLINE_LOG_LEVEL": os.environ.get("VOXLINE_TEST_SERVER_LOG_LEVEL", "info"),
        **extra_env,
    }
    with start_server(data_dir, env, workspace="e2e") as server:
        yield server


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
