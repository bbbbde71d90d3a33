from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from tests.api.conftest import make_settings
from voxline.api.app import create_app


async def _start_and_list_agents(url: str, data_dir: Path, key: str | None) -> int:
    app = create_app(make_settings(url, data_dir, seed=True))
    async with app.router.lifespan_context(app):
        if key is None:
            return 0
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            response = await client.get("/v1/agents", headers={"Authorization": f"Bearer {key}"})
            names = [agent["name"] for agent in response.json()["data"]]
            assert names == ["Demo receptionist"]
            return response.status_code


async def test_first_start_prints_the_demo_key_once_and_it_works(
    empty_database_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    await _start_and_list_agents(empty_database_url, tmp_path, None)
    first = capsys.readouterr().out
    key = (tmp_path / "demo-api-key").read_text().strip()
    assert first.count("vx_live_") == 1
    assert key in first

    assert await _start_and_list_agents(empty_database_url, tmp_path, key) == 200
    assert "vx_live_" not in capsys.readouterr().out


async def test_start_without_seeding_creates_no_key_file(
    empty_database_url: str, tmp_path: Path
) -> None:
    app = create_app(make_settings(empty_database_url, tmp_path, seed=False))
    async with app.router.lifespan_context(app):
        pass
    assert not (tmp_path / "demo-api-key").exists()
