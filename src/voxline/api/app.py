"""The FastAPI application: process state in the lifespan, one router per resource.

Adding a resource is one line in `_ROUTERS`.
"""

from __future__ import annotations

import gc
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import APIRouter, FastAPI

from voxline import __version__
from voxline.api import (
    agents,
    browser,
    console,
    debug,
    health,
    instances,
    recordings,
    secrets,
    sessions,
    twilio,
)
from voxline.api.errors import install_error_handlers
from voxline.app_state import AppState
from voxline.config import Settings

_ROUTERS: tuple[APIRouter, ...] = (
    health.router,
    agents.router,
    instances.router,
    twilio.router,
    sessions.router,
    recordings.router,
    secrets.router,
    debug.router,
    browser.router,
    console.router,
)

_GC_GEN0_THRESHOLD = 20_000

_DESCRIPTION = """\
A self-hostable voice-agent server. Every `/v1` endpoint takes `Authorization: Bearer <API key>`
and sees only that key's workspace. JSON is camelCase; errors are
`{"error": {"type", "message", "param"}}`; lists are pages `{"data", "hasMore", "nextCursor"}`.
"""


def create_app(settings: Settings | None = None, *, server_process: bool = False) -> FastAPI:
    """The application; its lifespan opens, migrates and (first time) seeds the database.

    `server_process`: this app owns the process (`voxline serve`), so it may tune the garbage
    collector for it once start-up is done."""
    resolved = settings if settings is not None else Settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        state = await AppState.start(resolved)
        app.state.voxline = state
        if server_process:
            _tune_garbage_collector()
        try:
            yield
        finally:
            await state.aclose()

    app = FastAPI(
        title="voxline",
        version=__version__,
        description=_DESCRIPTION,
        lifespan=lifespan,
    )
    install_error_handlers(app)
    for router in _ROUTERS:
        app.include_router(router)
    return app


def _tune_garbage_collector() -> None:
    """Full collections of a heap holding models and ORM metadata stall the event loop for
    60-120 ms, and every call with it. Everything alive after start-up lives for the whole
    process: freeze it out of the collector's scans, and collect young objects less often."""
    gc.collect()
    gc.freeze()
    _, gen1, gen2 = gc.get_threshold()
    gc.set_threshold(_GC_GEN0_THRESHOLD, gen1, gen2)
