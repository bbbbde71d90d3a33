from __future__ import annotations

import asyncio
import subprocess
import sys
import time
import uuid
from pathlib import Path

import httpx
import pytest

from tests.api.conftest import make_settings
from voxline.api.app import create_app
from voxline.cli import main
from voxline.simulator.server_process import free_port
from voxline.store.database import Database
from voxline.store.migrate import is_at_head


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch, database_url: str, tmp_path: Path) -> tuple[str, Path]:
    monkeypatch.setenv("VOXLINE_DATABASE_URL", database_url)
    monkeypatch.setenv("VOXLINE_DATA_DIR", str(tmp_path))
    return database_url, tmp_path


def _workspace() -> str:
    return f"cli-{uuid.uuid4().hex[:10]}"


async def _status_with_key(database_url: str, data_dir: Path, key: str) -> int:
    app = create_app(make_settings(database_url, data_dir))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            response = await client.get("/v1/agents", headers={"Authorization": f"Bearer {key}"})
            return response.status_code


def _create_key(capsys: pytest.CaptureFixture[str], workspace: str) -> str:
    assert main(["keys", "create", "--workspace", workspace]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert len(lines) == 1, out
    return lines[0]


def test_keys_create_prints_only_a_working_key_on_stdout(
    env: tuple[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    key = _create_key(capsys, _workspace())
    assert key.startswith("vx_live_")
    assert asyncio.run(_status_with_key(*env, key)) == 200


def test_keys_create_explains_on_stderr(
    env: tuple[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    name = _workspace()
    assert main(["keys", "create", "--workspace", name]) == 0
    err = capsys.readouterr().err
    assert f"Created workspace {name!r}" in err
    assert "shown only this once" in err


def test_revoked_key_stops_working(
    env: tuple[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    name = _workspace()
    key = _create_key(capsys, name)
    assert main(["keys", "list", "--workspace", name]) == 0
    listing = capsys.readouterr().out
    key_id = next(word for word in listing.split() if word.startswith("key_"))
    assert key[:12] in listing and key not in listing
    assert main(["keys", "revoke", key_id]) == 0
    assert asyncio.run(_status_with_key(*env, key)) == 401


def test_agents_list_shows_the_workspaces_agents(
    env: tuple[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    name = _workspace()
    key = _create_key(capsys, name)

    async def create_agent() -> None:
        app = create_app(make_settings(*env))
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            headers = {"Authorization": f"Bearer {key}"}
            async with httpx.AsyncClient(
                transport=transport, base_url="http://test", headers=headers
            ) as client:
                response = await client.post("/v1/agents", json={"name": "CLI listed"})
                assert response.status_code == 201

    asyncio.run(create_agent())
    assert main(["agents", "list", "--workspace", name]) == 0
    out = capsys.readouterr().out
    assert "CLI listed" in out
    assert "whisper/llama_cpp/piper" in out


def test_db_upgrade_migrates_an_empty_database(
    monkeypatch: pytest.MonkeyPatch, empty_database_url: str, tmp_path: Path
) -> None:
    monkeypatch.setenv("VOXLINE_DATABASE_URL", empty_database_url)
    monkeypatch.setenv("VOXLINE_DATA_DIR", str(tmp_path))
    assert main(["db", "upgrade"]) == 0

    async def at_head() -> bool:
        database = Database(empty_database_url)
        try:
            return await is_at_head(database)
        finally:
            await database.dispose()

    assert asyncio.run(at_head())


@pytest.mark.parametrize(
    "command",
    [
        [],
        ["serve"],
        ["keys"],
        ["keys", "create"],
        ["keys", "list"],
        ["keys", "revoke"],
        ["agents"],
        ["agents", "list"],
        ["db"],
        ["db", "upgrade"],
        ["tasks"],
        ["tasks", "create"],
        ["tasks", "list"],
        ["tasks", "show"],
        ["tasks", "cancel"],
        ["dispatcher"],
        ["workspaces", "call-limit"],
    ],
)
def test_every_command_has_help(command: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main([*command, "--help"])
    assert exited.value.code == 0
    assert "usage: voxline" in capsys.readouterr().out


def test_missing_command_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main([])
    assert exited.value.code == 2
    assert "COMMAND" in capsys.readouterr().err


def test_unreachable_database_is_a_one_line_error(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("VOXLINE_DATABASE_URL", "postgresql+asyncpg://postgres@127.0.0.1:1/x")
    assert main(["db", "upgrade"]) == 1
    assert capsys.readouterr().err.startswith("voxline: database error:")


def test_unsupported_database_url_is_a_clear_error(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("VOXLINE_DATABASE_URL", "mysql://root@localhost/voxline")
    assert main(["db", "upgrade"]) == 1
    assert "unsupported database driver" in capsys.readouterr().err


def test_serve_starts_a_server_that_answers_with_the_seeded_demo(tmp_path: Path) -> None:
    port = free_port()
    environment = {
        "VOXLINE_DATA_DIR": str(tmp_path),
        "VOXLINE_PRELOAD_MODELS": "false",
        "PATH": "/usr/bin:/bin",
    }
    server = subprocess.Popen(
        [sys.executable, "-m", "voxline.cli", "serve", "--port", str(port)],
        env=environment,
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            assert server.poll() is None, "the server exited early"
            try:
                key = (tmp_path / "demo-api-key").read_text().strip()
                response = httpx.get(
                    f"http://127.0.0.1:{port}/v1/agents",
                    headers={"Authorization": f"Bearer {key}"},
                )
                break
            except (FileNotFoundError, httpx.TransportError):
                assert time.monotonic() < deadline, "the server did not come up"
                time.sleep(0.2)
        assert response.status_code == 200
        assert response.json()["data"][0]["name"] == "Demo receptionist"
    finally:
        server.terminate()
        output, _ = server.communicate(timeout=15)
    assert output.decode().count("Demo API key: vx_live_") == 1
