"""Acting on a machine verdict (Twilio's async AnsweredBy) for a live outbound call.

`hang_up` ends the call: through the conversation when this process holds it, else through
Twilio's REST API (any process can). `leave_message` needs the conversation itself: the
process holding it speaks the message; another process leaves the verdict pending in the
store, and the holder's dispatcher picks it up (`apply_pending`).
"""

from __future__ import annotations

import logging

from sqlalchemy import select

from voxline.calls.live import LiveCalls
from voxline.dispatch.cancel import hang_up
from voxline.dispatch.outcomes import MachineAction
from voxline.store.database import Database
from voxline.store.models import TaskAttemptRow, TaskRow
from voxline.telephony.twilio.rest import TwilioRestClient

logger = logging.getLogger(__name__)

_DEFAULT_MESSAGE = "Sorry we missed you. Goodbye."


async def act(
    live: LiveCalls,
    twilio: TwilioRestClient | None,
    action: MachineAction,
    session_id: str | None,
    call_sid: str | None,
    message: str | None,
) -> bool:
    """Apply `action` now if this process can; True when done (no longer pending)."""
    call = live.get(session_id) if session_id is not None else None
    if action == "hang_up":
        if call is not None and await call.hang_up_now("machine_detected"):
            return True
        if call_sid is not None:
            await hang_up(twilio, call_sid)
            return True
        return False
    if call is None:
        return False
    return await call.say_then_hang_up(message or _DEFAULT_MESSAGE, "voicemail")


async def clear_pending(database: Database, call_sid: str) -> None:
    async with database.transaction() as db:
        attempt = await db.scalar(
            select(TaskAttemptRow).where(TaskAttemptRow.call_sid == call_sid).with_for_update()
        )
        if attempt is not None:
            attempt.amd_pending = False


async def apply_pending(
    database: Database, live: LiveCalls, twilio: TwilioRestClient | None
) -> None:
    """Act on the pending verdicts of the calls this process holds."""
    session_ids = live.session_ids()
    if not session_ids:
        return
    async with database.transaction() as db:
        rows = (
            await db.execute(
                select(TaskAttemptRow, TaskRow)
                .join(TaskRow, TaskRow.id == TaskAttemptRow.task_id)
                .where(
                    TaskAttemptRow.amd_pending.is_(True),
                    TaskAttemptRow.session_id.in_(session_ids),
                )
            )
        ).all()
        pending = [
            (attempt.session_id, attempt.call_sid, task.machine_detection, task.voicemail_message)
            for attempt, task in rows
        ]
    for session_id, call_sid, mode, message in pending:
        action: MachineAction = "hang_up" if mode == "hang_up" else "leave_message"
        if await act(live, twilio, action, session_id, call_sid, message) and call_sid:
            await clear_pending(database, call_sid)
