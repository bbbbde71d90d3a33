"""The operator console: its page and assets (`/console`), and in development mode a key
for it without pasting one (`POST /v1/dev/console-key`, loopback only).

The console is a static single-page client of the public API (`src/voxline/console/`);
everything it shows comes from `/v1`, so it sees exactly what its API key may see.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse
from pydantic import Field
from sqlalchemy import select

from voxline.api.browser import require_dev_request
from voxline.api.deps import DatabaseDep
from voxline.api.errors import ApiError, error_responses
from voxline.api.models import ApiModel
from voxline.store.api_keys import create_api_key
from voxline.store.models import Workspace
from voxline.store.seed import DEMO_WORKSPACE

router = APIRouter()

_CONSOLE_DIR = Path(__file__).resolve().parent.parent / "console"
_ASSETS = {
    "console.js": "text/javascript",
    "console.css": "text/css",
}


class ConsoleKey(ApiModel):
    api_key: str = Field(description="A new API key of the development workspace.")
    workspace_id: str


@router.get("/console", include_in_schema=False)
async def console_page() -> FileResponse:
    """The console's one page; its views are addressed by the URL fragment (#/calls, ...)."""
    return _file("index.html", "text/html")


@router.get("/console/assets/{name}", include_in_schema=False)
async def console_asset(name: str) -> FileResponse:
    if name not in _ASSETS:
        raise ApiError(404, f"Unknown route: GET /console/assets/{name}")
    return _file(name, _ASSETS[name])


@router.post(
    "/v1/dev/console-key",
    tags=["development"],
    summary="Development mode, loopback only: an API key for the console without pasting one",
    description="A new key of the demo workspace (or, without it, the oldest workspace).",
    responses=error_responses(403, 404),
)
async def create_console_key(request: Request, database: DatabaseDep) -> ConsoleKey:
    require_dev_request(request)
    async with database.transaction() as db:
        demo = await db.scalar(select(Workspace).where(Workspace.name == DEMO_WORKSPACE))
        workspace = demo or await db.scalar(
            select(Workspace).order_by(Workspace.created_at, Workspace.id).limit(1)
        )
        if workspace is None:
            raise ApiError(404, "This server has no workspace yet.")
        key = await create_api_key(db, workspace.id)
    return ConsoleKey(api_key=key.secret, workspace_id=workspace.id)


def _file(name: str, media_type: str) -> FileResponse:
    # Revalidated on every load, so a server upgrade never runs a stale console.
    return FileResponse(
        _CONSOLE_DIR / name, media_type=media_type, headers={"Cache-Control": "no-cache"}
    )
