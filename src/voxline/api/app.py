"""The FastAPI application: process state in the lifespan, one router per resource.

Adding a resource is one line in `_ROUTERS`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import APIRouter, FastAPI

from voxline import __version__
from voxline.api import agents, browser, debug, health, instances, secrets, sessions, twilio
from voxline.api.errors import install_error_handlers
from voxline.app_state import AppState
from voxline.config import Settings

_ROUTERS: tuple[APIRouter, ...] = (
    health.router,
    agents.router,
    instances.router,
    twilio.router,
    sessions.router,
    secrets.router,
    debug.router,
    browser.router,
)

_DESCRIPTION = """\
A self-hostable voice-agent server. Every `/v1` endpoint takes `Authorization: Bearer <API key>`
and sees only that key's workspace. JSON is camelCase; errors are
`{"error": {"type", "message", "param"}}`; lists are pages `{"data", "hasMore", "nextCursor"}`.
"""


def create_app(settings: Settings | None = None) -> FastAPI:
    """The application; its lifespan opens, migrates and (first time) seeds the database."""
    resolved = settings if settings is not None else Settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        state = await AppState.start(resolved)
        app.state.voxline = state
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
