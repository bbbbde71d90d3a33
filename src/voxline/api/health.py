"""/health (the process is up) and /ready (the database is reachable and fully migrated)."""

from __future__ import annotations

import logging
from typing import Literal

from fastapi import APIRouter
from pydantic import Field
from sqlalchemy.exc import SQLAlchemyError

from voxline.api.deps import DatabaseDep
from voxline.api.errors import ApiError, error_responses
from voxline.api.models import ApiModel
from voxline.store.migrate import current_revisions, head_revisions

logger = logging.getLogger(__name__)

router = APIRouter(tags=["health"])


class Health(ApiModel):
    status: Literal["ok"] = "ok"


class Ready(ApiModel):
    status: Literal["ready"] = "ready"
    revision: str = Field(description="The database schema revision.")


@router.get("/health", summary="Liveness: the process answers")
async def health() -> Health:
    return Health()


@router.get(
    "/ready",
    summary="Readiness: the database is reachable and migrations are at head",
    responses=error_responses(503),
)
async def ready(database: DatabaseDep) -> Ready:
    try:
        current = await current_revisions(database)
    except (SQLAlchemyError, OSError) as exc:
        logger.warning("readiness check: database unreachable: %s", type(exc).__name__)
        raise ApiError(503, "The database is unreachable.") from exc
    expected = head_revisions()
    if current != expected:
        raise ApiError(
            503,
            f"The database schema is at {sorted(current) or 'no revision'}, "
            f"this server needs {sorted(expected)}: run 'voxline db upgrade'.",
        )
    return Ready(revision=",".join(sorted(current)))
