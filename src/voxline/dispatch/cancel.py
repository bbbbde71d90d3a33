"""Canceling tasks: ended `canceled` in the store first, then their live calls hung up
through Twilio's REST API (a call still being created is hung up by its dispatcher)."""

from __future__ import annotations

import logging

from sqlalchemy import select

from voxline.dispatch.outcomes import request_cancel
from voxline.store import tasks as task_store
from voxline.store.database import Database
from voxline.store.models import TaskRow
from voxline.store.task_state import LIVE, TaskStatus
from voxline.store.types import utcnow
from voxline.telephony.twilio.rest import TwilioApiError, TwilioRestClient

logger = logging.getLogger(__name__)


async def cancel_task(
    database: Database, twilio: TwilioRestClient | None, workspace_id: str, task_id: str
) -> None:
    """Cancel one task of `workspace_id` (`NotFound` otherwise); a no-op once it has ended."""
    async with database.transaction() as db:
        task = await task_store.get_task(db, task_id, workspace_id=workspace_id, for_update=True)
        attempt = await request_cancel(db, task)
        call_sid = attempt.call_sid if attempt is not None else None
    if call_sid is not None:
        await hang_up(twilio, call_sid)


async def cancel_batch(
    database: Database, twilio: TwilioRestClient | None, workspace_id: str, batch_id: str
) -> None:
    """Cancel every task of the batch that has not ended."""
    call_sids: list[str] = []
    async with database.transaction() as db:
        batch = await task_store.get_batch(db, batch_id, workspace_id=workspace_id)
        batch.canceled_at = batch.canceled_at or utcnow()
        open_statuses = [TaskStatus.WAITING.value, *(status.value for status in LIVE)]
        tasks = await db.scalars(
            select(TaskRow)
            .where(TaskRow.batch_id == batch.id, TaskRow.status.in_(open_statuses))
            .with_for_update()
        )
        for task in tasks:
            attempt = await request_cancel(db, task)
            if attempt is not None and attempt.call_sid is not None:
                call_sids.append(attempt.call_sid)
    for call_sid in call_sids:
        await hang_up(twilio, call_sid)


async def hang_up(twilio: TwilioRestClient | None, call_sid: str) -> None:
    """End a live call through Twilio; its final status callback ends the attempt."""
    if twilio is None:
        logger.error("cannot hang up call %s: Twilio is not configured", call_sid)
        return
    try:
        await twilio.hang_up(call_sid)
    except (TwilioApiError, ValueError) as exc:
        logger.warning("hanging up call %s failed: %s", call_sid, exc)
