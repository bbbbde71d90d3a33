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
    live,
    metrics,
    recordings,
    secrets,
    sessions,
    tasks,
    twilio,
    twilio_tasks,
)
from voxline.api.body_limit import BodyLimit
from voxline.api.errors import error_responses, install_error_handlers
from voxline.app_state import AppState
from voxline.config import Settings
from voxline.dispatch.dispatcher import Dispatcher
from voxline.security import egress

_ROUTERS: tuple[APIRouter, ...] = (
    health.router,
    metrics.router,
    agents.router,
    instances.router,
    twilio.router,
    twilio_tasks.router,
    tasks.tasks_router,
    tasks.batches_router,
    live.router,
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
        previous = egress.install(egress.EgressPolicy.from_settings(resolved))
        try:
            state = await AppState.start(resolved)
            app.state.voxline = state
            dispatcher = None
            if resolved.dispatcher_enabled:
                engine = state.engine
                dispatcher = Dispatcher(
                    resolved,
                    state.database,
                    engine.twilio,
                    engine.http,
                    engine.live,
                    draining=engine.draining,
                )
                dispatcher.start()
            if server_process:
                _tune_garbage_collector()
            try:
                yield
            finally:
                if dispatcher is not None:
                    await dispatcher.aclose()
                await state.aclose()
        finally:
            egress.install(previous)

    app = FastAPI(
        title="voxline",
        version=__version__,
        description=_DESCRIPTION,
        lifespan=lifespan,
        responses=error_responses(413),
    )
    app.add_middleware(BodyLimit, max_bytes=resolved.max_request_body_bytes)
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
