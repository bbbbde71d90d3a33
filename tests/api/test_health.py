from __future__ import annotations

from pathlib import Path

import httpx
from sqlalchemy import text

from tests.api.conftest import assert_error, make_settings
from voxline.api.app import create_app
from voxline.app_state import AppState
from voxline.calls.engine import CallEngine
from voxline.store.database import Database


async def test_health_is_ok(anonymous: httpx.AsyncClient) -> None:
    response = await anonymous.get("/health")
    assert (response.status_code, response.json()) == (200, {"status": "ok"})


async def test_ready_reports_the_schema_revision(anonymous: httpx.AsyncClient) -> None:
    response = await anonymous.get("/ready")
    assert response.status_code == 200
    assert response.json() == {
        "status": "ready",
        "revision": "0005_analysis",
        "spool": {"depth": 0, "bytes": 0, "full": False},
    }


async def test_ready_is_503_when_migrations_are_not_at_head(
    empty_database_url: str, tmp_path: Path
) -> None:
    app = create_app(make_settings(empty_database_url, tmp_path))
    async with app.router.lifespan_context(app):
        state: AppState = app.state.voxline
        async with state.database.transaction() as db:
            await db.execute(text("DELETE FROM alembic_version"))
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            response = await client.get("/ready")
    assert_error(response, 503, "unavailable_error")
    assert "voxline db upgrade" in response.json()["error"]["message"]


async def test_ready_is_503_when_the_database_is_unreachable(tmp_path: Path) -> None:
    # Port 1 on loopback refuses connections at once.
    unreachable = "postgresql+asyncpg://postgres@127.0.0.1:1/none"
    settings = make_settings(unreachable, tmp_path)
    app = create_app(settings)
    database = Database(unreachable)
    app.state.voxline = AppState(
        settings=settings,
        database=database,
        secret=settings.resolved_secret(),
        engine=CallEngine(settings, database),
    )
    try:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            response = await client.get("/ready")
    finally:
        await app.state.voxline.aclose()
    assert_error(response, 503, "unavailable_error")
    assert response.headers["retry-after"]
    assert "unreachable; 0 call records wait" in response.json()["error"]["message"]
