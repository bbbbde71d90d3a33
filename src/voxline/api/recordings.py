"""A session's recording (`GET /v1/sessions/{id}/recording`, with byte ranges for seeking) and
its live audio while the call runs (`GET /v1/sessions/{id}/listen`)."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator

from fastapi import APIRouter, Request
from fastapi.responses import StreamingResponse

from voxline.api.deps import DatabaseDep, PrincipalDep, get_state
from voxline.api.errors import ApiError, error_responses
from voxline.recordings.storage import recording_key
from voxline.recordings.writer import RATE
from voxline.store import sessions as repo

router = APIRouter(
    prefix="/v1/sessions", tags=["recordings"], responses=error_responses(401, 404, 422)
)

_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")
MEDIA_TYPE = "audio/ogg"
LISTEN_MEDIA_TYPE = f"audio/L16;rate={RATE};channels=2"


@router.get(
    "/{session_id}/recording",
    summary="The call's recording: stereo Ogg/Opus, caller left, agent right",
    response_class=StreamingResponse,
    responses={
        200: {"content": {MEDIA_TYPE: {}}},
        206: {"description": "The requested byte range", "content": {MEDIA_TYPE: {}}},
        **error_responses(416),
    },
)
async def get_recording(
    request: Request, principal: PrincipalDep, database: DatabaseDep, session_id: str
) -> StreamingResponse:
    async with database.transaction() as db:
        await repo.get_session(db, session_id, workspace_id=principal.workspace_id)
    storage = get_state(request).engine.recordings.storage
    key = recording_key(principal.workspace_id, session_id)
    size = await storage.size(key)
    if size is None:
        raise ApiError(404, f"Session {session_id!r} has no recording (yet).")
    headers = {"Accept-Ranges": "bytes", "Cache-Control": "private, no-cache"}
    requested = request.headers.get("range")
    if requested is None:
        headers["Content-Length"] = str(size)
        return StreamingResponse(storage.read(key, 0, size), media_type=MEDIA_TYPE, headers=headers)
    start, end = _byte_range(requested, size)
    headers["Content-Length"] = str(end - start)
    headers["Content-Range"] = f"bytes {start}-{end - 1}/{size}"
    return StreamingResponse(
        storage.read(key, start, end), status_code=206, media_type=MEDIA_TYPE, headers=headers
    )


@router.get(
    "/{session_id}/listen",
    summary="Listen in: the live call's audio as it happens",
    description=f"Raw interleaved PCM16 stereo at {RATE} Hz (caller left, agent right), "
    "about half a second behind the call, until it ends. 409 if the call is not being "
    "recorded by this process.",
    response_class=StreamingResponse,
    responses={200: {"content": {LISTEN_MEDIA_TYPE: {}}}, **error_responses(409)},
)
async def listen(
    request: Request, principal: PrincipalDep, database: DatabaseDep, session_id: str
) -> StreamingResponse:
    async with database.transaction() as db:
        await repo.get_session(db, session_id, workspace_id=principal.workspace_id)
    hub = get_state(request).engine.recordings.hub
    if not hub.is_live(session_id):
        raise ApiError(
            409,
            f"Session {session_id!r} is not live and recorded on this server: "
            "listen-in needs a recorded call in progress.",
        )

    async def frames() -> AsyncIterator[bytes]:
        async with hub.listen(session_id) as queue:
            while (chunk := await queue.get()) is not None:
                yield chunk

    return StreamingResponse(
        frames(), media_type=LISTEN_MEDIA_TYPE, headers={"Cache-Control": "no-store"}
    )


def _byte_range(header: str, size: int) -> tuple[int, int]:
    """(start, end exclusive) of a single `bytes=` range; a 416 if it cannot be served."""
    match = _RANGE.match(header.strip())
    if match is None or (not match[1] and not match[2]):
        raise _unsatisfiable(size)
    if not match[1]:
        start, end = max(size - int(match[2]), 0), size
    else:
        start = int(match[1])
        end = min(int(match[2]) + 1, size) if match[2] else size
    if start >= size or start >= end:
        raise _unsatisfiable(size)
    return start, end


def _unsatisfiable(size: int) -> ApiError:
    return ApiError(
        416, "The requested range is not satisfiable.", headers={"Content-Range": f"bytes */{size}"}
    )
