"""The web client in real headless Chromium against a real server in development mode.

Chromium's fake microphone plays a WAV of a caller line (Piper speech); the page must show
the agent's greeting, the caller's line and the agent's answer with its latency. A
screenshot is left in test-artifacts/. Debian's `chromium` is required (scripts/bootstrap.sh
installs it): without it this test fails, it never skips.
"""

from __future__ import annotations

import wave
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import numpy as np
import pytest
from playwright.sync_api import Locator, Page, expect, sync_playwright

from tests.e2e.server import RunningServer, running_server, scripted_agent
from tests.helpers.speech import synthesize_speech
from voxline.audio.frames import pcm16_to_bytes

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
WAV_RATE = 48000
TAIL_SILENCE_S = 6.0  # room for the end of the turn to be detected


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    data_dir = tmp_path_factory.mktemp("voxline-web")
    with running_server(data_dir, {"VOXLINE_DEV_MODE": "true"}) as running:
        yield running


@pytest.fixture(scope="module")
def production_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    data_dir = tmp_path_factory.mktemp("voxline-web-production")
    with running_server(data_dir, {"VOXLINE_DEV_MODE": "false"}) as running:
        yield running


def _caller_wav(directory: Path, lead_silence_s: float) -> Path:
    """A WAV for the fake microphone: silence, the caller's question, silence."""
    speech = synthesize_speech("What are your opening hours?", WAV_RATE)
    lead = np.zeros(int(lead_silence_s * WAV_RATE), dtype=np.int16)
    tail = np.zeros(int(TAIL_SILENCE_S * WAV_RATE), dtype=np.int16)
    path = directory / f"caller-{lead_silence_s}s.wav"
    with wave.open(str(path), "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(WAV_RATE)
        wav.writeframes(pcm16_to_bytes(np.concatenate([lead, speech, tail])))
    return path


def _create_agent(server: RunningServer, **overrides: object) -> str:
    response = httpx.post(
        f"{server.base_url}/v1/agents",
        json=scripted_agent(name="Web receptionist", **overrides),
        headers={"Authorization": f"Bearer {server.api_key}"},
        timeout=10,
    )
    assert response.status_code == 201, response.text
    agent_id: str = response.json()["id"]
    return agent_id


def _chromium_args(wav: Path) -> list[str]:
    return [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--use-fake-ui-for-media-stream",
        "--use-fake-device-for-media-stream",
        f"--use-file-for-fake-audio-capture={wav}%noloop",
    ]


def _bubble(page: Page, kind: str, text: str) -> Locator:
    return page.locator(f"#transcript li.{kind}", has_text=text)


@contextmanager
def _browser(wav: Path) -> Iterator[Page]:
    """A page in headless Chromium whose fake microphone plays `wav`."""
    assert CHROMIUM.exists(), (
        "Debian's chromium is required: apt-get install -y chromium (scripts/bootstrap.sh)"
    )
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=_chromium_args(wav)
        )
        try:
            yield browser.new_page(viewport={"width": 900, "height": 760})
        finally:
            browser.close()


@contextmanager
def _talking(server: RunningServer, agent_id: str, wav: Path) -> Iterator[Page]:
    """The web client in development mode, with a session started on `agent_id`."""
    with _browser(wav) as page:
        page.goto(f"{server.base_url}/")
        _start(page, agent_id)
        yield page


def _start(page: Page, agent_id: str) -> None:
    expect(page.locator(f"#agent option[value='{agent_id}']")).to_have_count(1)
    page.select_option("#agent", agent_id)
    page.click("#start")
    expect(page.locator("#status")).to_contain_text("speak now", timeout=10_000)


def test_a_spoken_question_is_answered_in_the_page(server: RunningServer, tmp_path: Path) -> None:
    agent_id = _create_agent(server)
    with _talking(server, agent_id, _caller_wav(tmp_path, lead_silence_s=3.0)) as page:
        expect(_bubble(page, "agent", "Hello, thanks for calling.")).to_be_visible(timeout=10_000)
        expect(_bubble(page, "caller", "what are your hours")).to_be_visible(timeout=20_000)
        answer = _bubble(page, "agent", "nine to five")
        expect(answer).to_be_visible(timeout=10_000)
        expect(answer.locator(".latency")).to_contain_text(" ms", timeout=15_000)
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "web-client.png"))

        page.fill("#text", "And your hours on Saturday?")
        page.click("#send")
        expect(_bubble(page, "caller", "And your hours on Saturday?")).to_be_visible()
        expect(_bubble(page, "agent", "nine to five")).to_have_count(2, timeout=10_000)

        page.click("#stop")
        expect(page.locator("#status")).to_contain_text("ended", timeout=10_000)
        expect(page.locator("#start")).to_be_enabled()


def test_talking_over_the_agent_cuts_it_off_in_the_page(
    server: RunningServer, tmp_path: Path
) -> None:
    agent_id = _create_agent(server, firstMessage="Welcome to the clinic. " * 6)
    with _talking(server, agent_id, _caller_wav(tmp_path, lead_silence_s=1.5)) as page:
        greeting = _bubble(page, "agent", "Welcome to the clinic.")
        expect(greeting.locator(".unheard")).to_be_visible(timeout=15_000)
        expect(_bubble(page, "agent", "nine to five")).to_be_visible(timeout=20_000)
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "web-client-barge-in.png"))


def test_without_dev_mode_the_page_works_with_a_pasted_api_key(
    production_server: RunningServer, tmp_path: Path
) -> None:
    agent_id = _create_agent(production_server)
    with _browser(_caller_wav(tmp_path, lead_silence_s=30.0)) as page:
        page.goto(f"{production_server.base_url}/talk")
        expect(page.locator("#key-panel")).to_be_visible()
        page.fill("#api-key", production_server.api_key)
        page.click("#key-form button")
        _start(page, agent_id)
        expect(_bubble(page, "agent", "Hello, thanks for calling.")).to_be_visible(timeout=10_000)
        page.fill("#text", "What are your hours?")
        page.click("#send")
        expect(_bubble(page, "agent", "nine to five")).to_be_visible(timeout=10_000)
        assert page.evaluate("sessionStorage.getItem('voxline.apiKey')") == (
            production_server.api_key
        )
