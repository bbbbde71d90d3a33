"""`voxline call` end to end: a real server process on a scripted agent, called the two ways."""

from __future__ import annotations

import wave
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tests.e2e.server import RunningServer, running_server, scripted_agent
from voxline.cli import main
from voxline.simulator.speech import synthesize_caller_speech

AUTH_TOKEN = "test-twilio-auth-token"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    data_dir: Path = tmp_path_factory.mktemp("voxline-call")
    with running_server(data_dir, {"VOXLINE_TWILIO_AUTH_TOKEN": AUTH_TOKEN}) as running:
        yield running


def _agent(server: RunningServer, **overrides: Any) -> str:
    """A scripted agent with a short answer, to keep the calls short."""
    llm = {
        "provider": "scripted",
        "firstTokenMs": 50,
        "rules": [{"match": "hours", "say": "We are open nine to five."}],
    }
    with server.client() as client:
        response = client.post("/v1/agents", json=scripted_agent(llm=llm, **overrides))
        assert response.status_code == 201, response.text
        agent_id: str = response.json()["id"]
        return agent_id


def _script(tmp_path: Path, *lines: str) -> Path:
    path = tmp_path / "script.txt"
    path.write_text("# the caller\n" + "\n\n".join(lines) + "\n")
    return path


def test_a_scripted_call_prints_the_recorded_conversation_and_the_latency_heard(
    server: RunningServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    agent_id = _agent(server)
    # The defaults: the server from VOXLINE_PUBLIC_BASE_URL, the key from the data directory.
    (tmp_path / "demo-api-key").write_text(server.api_key + "\n")
    monkeypatch.setenv("VOXLINE_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("VOXLINE_PUBLIC_BASE_URL", server.base_url)
    script = _script(tmp_path, "What are your opening hours?")
    recording = tmp_path / "call.wav"

    status = main(
        ["call", "--agent", agent_id, "--script", str(script), "--save-wav", str(recording)]
    )

    out = capsys.readouterr().out
    assert status == 0
    assert "completed (caller_hangup)" in out
    assert "Hello, thanks for calling." in out
    assert "What are your opening hours?" in out
    assert "heard   what are your hours" in out
    assert "We are open nine to five." in out
    assert "first response:" in out and "latency:" in out and "as heard (server:" in out
    with wave.open(str(recording), "rb") as wav:
        assert (wav.getnchannels(), wav.getframerate()) == (2, 8000)
        frames = np.frombuffer(wav.readframes(wav.getnframes()), dtype="<i2").reshape(-1, 2)
    assert np.abs(frames[:, 0]).max() > 1000 and np.abs(frames[:, 1]).max() > 1000


def test_a_call_placed_as_twilio_from_a_wav_file_is_accepted_and_answered(
    server: RunningServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    agent_id = _agent(server)
    speech = synthesize_caller_speech("What are your opening hours?", 16000)
    recording = tmp_path / "question.wav"
    with wave.open(str(recording), "wb") as wav:
        wav.setnchannels(2)
        wav.setsampwidth(2)
        wav.setframerate(16000)
        wav.writeframes(np.repeat(speech, 2).astype("<i2").tobytes())

    status = main(
        [
            "call",
            "--agent",
            agent_id,
            "--server",
            server.base_url,
            "--api-key",
            server.api_key,
            "--twilio-auth-token",
            AUTH_TOKEN,
            "--wav",
            str(recording),
        ]
    )

    out = capsys.readouterr().out
    assert status == 0
    assert "question.wav" in out
    assert "We are open nine to five." in out
    assert "latency:" in out


def test_barging_in_interrupts_the_agent_and_is_reported(
    server: RunningServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    agent_id = _agent(server, firstMessage="Welcome to the clinic. " * 6)
    script = _script(tmp_path, "What are your opening hours?")

    status = main(
        [
            "call",
            "--agent",
            agent_id,
            "--server",
            server.base_url,
            "--api-key",
            server.api_key,
            "--script",
            str(script),
            "--barge-in-after",
            "1.0",
        ]
    )

    out = capsys.readouterr().out
    assert status == 0
    assert "interrupted; the caller heard:" in out
    assert "Clears (barge-ins honoured): 1" in out


def test_a_webhook_signed_with_the_wrong_token_is_reported_as_an_error(
    server: RunningServer, capsys: pytest.CaptureFixture[str]
) -> None:
    agent_id = _agent(server)

    status = main(
        [
            "call",
            "--agent",
            agent_id,
            "--server",
            server.base_url,
            "--twilio-auth-token",
            "not-the-token",
        ]
    )

    assert status == 1
    assert "refused the webhook's signature" in capsys.readouterr().err


def test_an_unknown_agent_is_reported_as_an_error(
    server: RunningServer, capsys: pytest.CaptureFixture[str]
) -> None:
    status = main(
        ["call", "--agent", "agent_nope", "--server", server.base_url, "--api-key", server.api_key]
    )

    assert status == 1
    assert "404" in capsys.readouterr().err
