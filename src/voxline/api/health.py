"""/health (the process is up) and /ready (it should be sent calls: the database is reachable
and fully migrated, nothing waits in the spool, and the process is not draining)."""

from __future__ import annotations

import logging
from typing import Literal

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import Field
from sqlalchemy.exc import SQLAlchemyError

from voxline.api.deps import get_state
from voxline.api.errors import error_response, error_responses
from voxline.api.models import ApiModel
from voxline.calls.engine import CallEngine
from voxline.store.migrate import current_revisions, head_revisions
from voxline.store.outage import RETRY_AFTER_S

logger = logging.getLogger(__name__)

router = APIRouter(tags=["health"])


class Health(ApiModel):
    status: Literal["ok"] = "ok"


class SpoolStatus(ApiModel):
    depth: int = Field(description="Call records waiting on disk for the database.")
    bytes: int = Field(description="Their size on disk.")
    full: bool = Field(description="The spool reached its bound: new calls are refused.")


class Ready(ApiModel):
    status: Literal["ready"] = "ready"
    revision: str = Field(description="The database schema revision.")
    spool: SpoolStatus


@router.get("/health", summary="Liveness: the process answers")
async def health() -> Health:
    return Health()


@router.get(
    "/ready",
    summary="Readiness: send calls here (database reachable and migrated, not draining)",
    response_model=Ready,
    responses=error_responses(503),
)
async def ready(request: Request) -> Ready | JSONResponse:
    state = get_state(request)
    spool = _spool(state.engine)
    draining = state.engine.draining.is_set()
    try:
        current = await current_revisions(state.database)
    except (SQLAlchemyError, OSError) as exc:
        logger.warning("readiness check: database unreachable: %s", type(exc).__name__)
        return _not_ready(
            f"The database is unreachable; {spool.depth} call records wait in the spool."
        )
    expected = head_revisions()
    if current != expected:
        message = (
            f"The database schema is at {sorted(current) or 'no revision'}, "
            f"this server needs {sorted(expected)}: run 'voxline db upgrade'."
        )
        return _not_ready(message)
    if draining:
        return _not_ready("This server is shutting down: it takes no new calls.")
    if spool.depth:
        return _not_ready(f"Writing {spool.depth} spooled call records to the database.")
    return Ready(revision=",".join(sorted(current)), spool=spool)


def _spool(engine: CallEngine) -> SpoolStatus:
    ledger = engine.ledger
    return SpoolStatus(depth=ledger.depth, bytes=ledger.spool_bytes, full=ledger.full)


def _not_ready(message: str) -> JSONResponse:
    return error_response(503, message, headers={"Retry-After": str(RETRY_AFTER_S)})
