"""FastAPI dependencies: the process state, the database, the caller's workspace, paging."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, Query, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from voxline.api.errors import ApiError
from voxline.app_state import AppState
from voxline.ids import IdPrefix, id_pattern, is_valid_id
from voxline.store.api_keys import AuthenticationFailed, authenticate
from voxline.store.database import Database
from voxline.store.errors import excerpt
from voxline.store.pagination import MAX_PAGE_SIZE

_bearer = HTTPBearer(
    auto_error=False, description="An API key: `Authorization: Bearer vx_live_...`."
)
_CHALLENGE = {"WWW-Authenticate": "Bearer"}


def get_state(request: Request) -> AppState:
    """The process state the app's lifespan built."""
    state: AppState = request.app.state.voxline
    return state


def get_database(state: Annotated[AppState, Depends(get_state)]) -> Database:
    return state.database


DatabaseDep = Annotated[Database, Depends(get_database)]
StateDep = Annotated[AppState, Depends(get_state)]


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling: a live API key, and the workspace it belongs to."""

    workspace_id: str
    api_key_id: str


async def require_api_key(
    database: DatabaseDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal:
    """The caller, from `Authorization: Bearer <key>`; a 401 unless the key is live."""
    if credentials is None:
        raise ApiError(
            401,
            "No API key provided: send it as 'Authorization: Bearer <key>'.",
            headers=_CHALLENGE,
        )
    try:
        async with database.transaction() as db:
            key = await authenticate(db, credentials.credentials)
    except AuthenticationFailed as exc:
        raise ApiError(401, str(exc), headers=_CHALLENGE) from exc
    return Principal(workspace_id=key.workspace_id, api_key_id=key.id)


PrincipalDep = Annotated[Principal, Depends(require_api_key)]

Limit = Annotated[int, Query(ge=1, le=MAX_PAGE_SIZE, description="Page size (1 to 100).")]


def cursor_query(pattern: str) -> Any:
    """The `after` query parameter of a list: a previous page's `nextCursor`. Its pattern is
    in the schema; `check_cursor` answers a value that breaks it with 400."""
    return Query(
        description="A cursor: the `nextCursor` of the previous page.",
        json_schema_extra={"pattern": pattern},
    )


AgentCursor = Annotated[str | None, cursor_query(id_pattern("agent"))]
InstanceCursor = Annotated[str | None, cursor_query(id_pattern("inst"))]
SessionCursor = Annotated[str | None, cursor_query(id_pattern("sess"))]
TaskCursor = Annotated[str | None, cursor_query(id_pattern("task"))]


def check_cursor(after: str | None, prefix: IdPrefix) -> str | None:
    """`after` if it is a cursor of this kind of resource; a 400 naming `after` otherwise."""
    if after is not None and not is_valid_id(after, prefix):
        raise ApiError(
            400,
            f"Invalid cursor {excerpt(after)}: pass a previous page's nextCursor.",
            param="after",
        )
    return after
