"""/v1/debug/runtime: the process's event-loop lag and live calls, for benchmarks and tuning.

Off unless the server runs with VOXLINE_LAG_MONITOR=true (then any API key may read it:
it describes the process, not a workspace's data); otherwise it answers 404.
"""

from __future__ import annotations

import os
from typing import Annotated

from fastapi import APIRouter, Query, Request
from pydantic import Field

from voxline.api.deps import PrincipalDep, get_state
from voxline.api.errors import ApiError, error_responses
from voxline.api.models import ApiModel

router = APIRouter(prefix="/v1/debug", tags=["debug"], responses=error_responses(401, 404, 422))


class LoopLag(ApiModel):
    """Event-loop lag samples (how late a sleeping task woke) in a time window."""

    since_s: float = Field(description="Start of the window, on the server's monotonic clock.")
    until_s: float
    samples: int
    p50_ms: float | None
    p99_ms: float | None
    max_ms: float | None


class RuntimeStats(ApiModel):
    pid: int = Field(description="The server process, e.g. to read its CPU and memory.")
    active_calls: int
    clock_s: float = Field(description="Now on the server's monotonic clock: pass as `since`.")
    loop_lag: LoopLag


@router.get("/runtime", summary="Event-loop lag and live calls (VOXLINE_LAG_MONITOR only)")
async def runtime_stats(
    request: Request,
    _principal: PrincipalDep,
    since: Annotated[
        float | None,
        Query(description="Only lag samples from then on (a previous answer's clockS)."),
    ] = None,
) -> RuntimeStats:
    state = get_state(request)
    monitor = state.lag_monitor
    if monitor is None:
        raise ApiError(
            404, "The runtime monitor is off: start the server with VOXLINE_LAG_MONITOR=true."
        )
    summary = monitor.summary(since)
    return RuntimeStats(
        pid=os.getpid(),
        active_calls=state.engine.active_calls,
        clock_s=monitor.now(),
        loop_lag=LoopLag(
            since_s=summary.since_s,
            until_s=summary.until_s,
            samples=summary.samples,
            p50_ms=summary.p50_ms,
            p99_ms=summary.p99_ms,
            max_ms=summary.max_ms,
        ),
    )
