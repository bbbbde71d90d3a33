"""/v1/secrets: a workspace's named provider keys (what agents' `apiKeyRef` names).

Values are write-only: stored encrypted, and never returned, listed or logged. A secret named
like a vendor (`openai`, ...) overrides the server's key of that name for the workspace.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Response
from pydantic import Field, SecretStr, field_validator

from voxline.agent_spec import CREDENTIAL_NAME_PATTERN
from voxline.api.deps import DatabaseDep, Limit, PrincipalDep, cursor_query, get_state
from voxline.api.errors import ApiError, error_responses
from voxline.api.models import ApiModel, ListResponse
from voxline.app_state import AppState
from voxline.security.secret_box import SecretBox
from voxline.store import secrets as repo
from voxline.store.errors import excerpt
from voxline.store.pagination import DEFAULT_PAGE_SIZE

router = APIRouter(
    prefix="/v1/secrets",
    tags=["secrets"],
    responses=error_responses(400, 401, 422),
)

_NAME = re.compile(CREDENTIAL_NAME_PATTERN)
# What `repo.check_secret_value` accepts, for the schema (it stays the check).
_VALUE_PATTERN = r"^[^\s\x00-\x1f\x7f]([^\x00-\x1f\x7f]*[^\s\x00-\x1f\x7f])?$"

SecretName = Annotated[
    str,
    Path(
        pattern=CREDENTIAL_NAME_PATTERN,
        description="1 to 64 letters, digits, '_', '.' or '-' (as an agent's `apiKeyRef`).",
    ),
]


class SecretValue(ApiModel):
    """The body of `PUT /v1/secrets/{name}`."""

    value: SecretStr = Field(
        min_length=1,
        max_length=repo.MAX_SECRET_CHARS,
        json_schema_extra={"pattern": _VALUE_PATTERN},
        description="The secret (an API key): no control characters, no surrounding "
        "whitespace. Write-only: no response ever contains it.",
    )

    @field_validator("value")
    @classmethod
    def _storable(cls, value: SecretStr) -> SecretStr:
        repo.check_secret_value(value.get_secret_value())
        return value


class Secret(ApiModel):
    """A stored secret: its name and when it was set. Never its value."""

    name: str
    created_at: datetime
    updated_at: datetime


class SecretList(ListResponse[Secret]):
    pass


def get_secret_box(state: Annotated[AppState, Depends(get_state)]) -> SecretBox:
    """The process's box for workspace secrets (the one calls open them with)."""
    return state.engine.credentials.box


SecretBoxDep = Annotated[SecretBox, Depends(get_secret_box)]


def _to_secret(info: repo.SecretInfo) -> Secret:
    return Secret(name=info.name, created_at=info.created_at, updated_at=info.updated_at)


@router.put(
    "/{name}",
    status_code=201,
    summary="Create or replace a secret",
    response_description="The secret was created.",
    responses={200: {"model": Secret, "description": "The secret's value was replaced."}},
)
async def put_secret(
    name: SecretName,
    body: SecretValue,
    response: Response,
    principal: PrincipalDep,
    database: DatabaseDep,
    box: SecretBoxDep,
) -> Secret:
    async with database.transaction() as db:
        info, created = await repo.put_secret(
            db, box, principal.workspace_id, name, body.value.get_secret_value()
        )
    if not created:
        response.status_code = 200
    return _to_secret(info)


@router.get("", summary="List secrets by name (names and dates only)")
async def list_secrets(
    principal: PrincipalDep,
    database: DatabaseDep,
    limit: Limit = DEFAULT_PAGE_SIZE,
    after: Annotated[str | None, cursor_query(CREDENTIAL_NAME_PATTERN)] = None,
) -> SecretList:
    if after is not None and not _NAME.match(after):
        raise ApiError(
            400,
            f"Invalid cursor {excerpt(after)}: pass a previous page's nextCursor.",
            param="after",
        )
    async with database.transaction() as db:
        page = await repo.list_secrets(db, principal.workspace_id, limit=limit, after=after)
    return SecretList(
        data=[_to_secret(info) for info in page.items],
        has_more=page.has_more,
        next_cursor=page.next_cursor,
    )


@router.delete(
    "/{name}",
    status_code=204,
    summary="Delete a secret",
    responses=error_responses(404),
)
async def delete_secret(
    name: SecretName, principal: PrincipalDep, database: DatabaseDep
) -> Response:
    async with database.transaction() as db:
        await repo.delete_secret(db, principal.workspace_id, name)
    return Response(status_code=204)
