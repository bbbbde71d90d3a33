"""The outbound dispatcher: one loop per process, many processes per database.

Each round it (1) reconciles attempts whose create lease expired without a CallSid against
Twilio's calls list, so a crash between writing an attempt and recording its call never
dials twice; (2) claims due tasks within the shared limits (`store.dispatch_queue`) and
creates their calls at their paced slots; (3) looks up live calls without news (a lost
final callback); (4) acts on machine verdicts pending for calls this process holds; and
(5) delivers the webhook outbox. Twilio's 429 / 20429 is retried later without spending an
attempt; a 5xx or an unreachable Twilio is reconciled like a crash; a refused number fails
the task with Twilio's code and message.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import time
import uuid
from datetime import datetime, timedelta

import httpx
from sqlalchemy import delete
from sqlalchemy.ext.asyncio import AsyncSession

from voxline.calls.live import LiveCalls
from voxline.config import Settings
from voxline.dispatch import delivery, machine
from voxline.dispatch.cancel import hang_up
from voxline.dispatch.outcomes import apply_status_callback, end_attempt
from voxline.observability.metrics import DISPATCH_CREATES, DISPATCH_QUEUE
from voxline.store import dispatch_queue
from voxline.store import tasks as task_store
from voxline.store.database import Database
from voxline.store.dispatch_queue import Claim
from voxline.store.models import TaskAttemptRow, TaskRow
from voxline.store.task_state import AttemptStatus, TaskStatus
from voxline.store.types import utcnow
from voxline.telephony.twilio.rest import CallInfo, TwilioApiError, TwilioRestClient

logger = logging.getLogger(__name__)

STATUS_EVENTS = ("initiated", "ringing", "answered", "completed")
_MACHINE_DETECTION = {"hang_up": "Enable", "leave_message": "DetectMessageEnd"}
_THROTTLED = 20429
_MAX_THROTTLE_BACKOFF_S = 60.0
_CLOCK_SKEW = timedelta(seconds=30)
_HORIZON = timedelta(seconds=1)


class Dispatcher:
    """Dials due tasks through `twilio`; `start()` runs the loop, `aclose()` stops it."""

    def __init__(
        self,
        settings: Settings,
        database: Database,
        twilio: TwilioRestClient | None,
        http: httpx.AsyncClient,
        live: LiveCalls | None = None,
        draining: asyncio.Event | None = None,
    ) -> None:
        self._settings = settings
        self._draining = draining if draining is not None else asyncio.Event()
        """Once set (a deploy's first signal), no new task is claimed; callbacks, verdicts
        and webhooks are still served."""
        self._database = database
        self._twilio = twilio
        self._http = http
        self._live = live if live is not None else LiveCalls()
        self.owner = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self._account = settings.twilio_account_sid or "none"
        self._lease = timedelta(seconds=settings.dispatch_lease_seconds)
        self._creates: set[asyncio.Task[None]] = set()
        self._loop: asyncio.Task[None] | None = None
        self._last_stale_check = 0.0
        self._spacing = asyncio.Lock()
        self._last_create = 0.0

    def start(self) -> None:
        if self._twilio is None:
            logger.warning(
                "outbound dispatcher idle: set VOXLINE_TWILIO_ACCOUNT_SID and "
                "VOXLINE_TWILIO_AUTH_TOKEN to place calls"
            )
        if self._loop is None:
            self._loop = asyncio.create_task(self._run_forever())

    async def aclose(self) -> None:
        if self._loop is not None:
            self._loop.cancel()
            await asyncio.gather(self._loop, return_exceptions=True)
        for task in list(self._creates):
            task.cancel()
        await asyncio.gather(*self._creates, return_exceptions=True)

    async def _run_forever(self) -> None:
        interval = self._settings.dispatch_poll_interval_seconds
        while True:
            try:
                await self.run_once()
            except Exception:
                logger.exception("dispatcher round failed")
            await asyncio.sleep(interval)

    async def run_once(self) -> list[Claim]:
        """One round; returns the attempts claimed (their creates run in the background)."""
        claims: list[Claim] = []
        if self._twilio is not None:
            await self._reconcile_expired(self._twilio)
            claims = [] if self._draining.is_set() else await self._claim()
            for claim in claims:
                task = asyncio.create_task(self._create(self._twilio, claim))
                self._creates.add(task)
                task.add_done_callback(self._creates.discard)
            await self._check_stale(self._twilio)
        await machine.apply_pending(self._database, self._live, self._twilio)
        await delivery.deliver_due(self._database, self._http)
        await self._measure_queue()
        return claims

    async def wait_for_creates(self) -> None:
        """Until the creates started so far are done."""
        await asyncio.gather(*self._creates, return_exceptions=True)

    # --- claiming and creating ------------------------------------------------------------

    async def _claim(self) -> list[Claim]:
        now = utcnow()
        async with self._database.transaction() as db:
            return await dispatch_queue.claim_due(
                db,
                owner=self.owner,
                account=self._account,
                calls_per_second=self._settings.twilio_calls_per_second,
                horizon=_HORIZON,
                lease=self._lease,
                now=now,
                in_flight=len(self._creates),
            )

    async def _measure_queue(self) -> None:
        """Last in a round, so that a failing count can never hold back a call."""
        try:
            async with self._database.transaction() as db:
                DISPATCH_QUEUE.set(await dispatch_queue.count_due(db, utcnow()))
        except Exception as exc:
            logger.debug("could not measure the dispatch queue: %s", exc)

    async def _create(self, twilio: TwilioRestClient, claim: Claim) -> None:
        if not await self._await_slot(claim):
            return
        await self._space()
        base = self._settings.resolved_public_base_url()
        status_url = f"{base}/v1/sessions/twilio/task/{claim.task_id}/status"
        detection = _MACHINE_DETECTION.get(claim.machine_detection)
        try:
            # Never outlive the lease: past it another process may reconcile and redial.
            async with asyncio.timeout(self._lease.total_seconds() / 2):
                info = await twilio.create_call(
                    to=claim.to_number,
                    from_=claim.from_number,
                    url=f"{base}/v1/sessions/twilio/task/{claim.task_id}/connect",
                    status_callback=status_url,
                    status_callback_events=STATUS_EVENTS,
                    machine_detection=detection,
                    timeout=claim.ring_timeout_seconds,
                    async_amd_callback=status_url if detection is not None else None,
                )
        except TwilioApiError as exc:
            await self._create_failed(twilio, claim, exc)
            return
        except TimeoutError:
            DISPATCH_CREATES.labels("timed_out").inc()
            logger.warning("task %s: Twilio did not answer the create; reconciling", claim.task_id)
            await self._expire_lease(claim)
            await self._reconcile_expired(twilio)
            return
        except Exception:
            DISPATCH_CREATES.labels("failed").inc()
            logger.exception("task %s: creating its call failed", claim.task_id)
            await self._expire_lease(claim)
            return
        DISPATCH_CREATES.labels("created").inc()
        if await self._created(claim, info.sid):
            await hang_up(twilio, info.sid)

    async def _space(self) -> None:
        """Keep this process's creates a pace interval apart: creates whose slots a stalled
        loop woke late would otherwise go out together, over the account's rate."""
        async with self._spacing:
            interval = 1 / self._settings.twilio_calls_per_second
            wait = self._last_create + interval - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
            self._last_create = time.monotonic()

    async def _await_slot(self, claim: Claim) -> bool:
        """Wait for the create's slot in the shared pace; False if the attempt is no longer
        ours to create (its task canceled, or reconciled by another process)."""
        async with self._database.transaction() as db:
            task = await task_store.get_task(db, claim.task_id, for_update=True)
            if task.cancel_requested:
                await _cancel_unplaced(db, task, claim.number)
                return False
            slot = await dispatch_queue.confirm_slot(
                db,
                owner=self.owner,
                account=self._account,
                claim=claim,
                calls_per_second=self._settings.twilio_calls_per_second,
                lease=self._lease,
                now=utcnow(),
            )
        if slot is None:
            return False
        delay = (slot - utcnow()).total_seconds()
        if delay > 0:
            await asyncio.sleep(delay)
        return True

    async def _created(self, claim: Claim, call_sid: str) -> bool:
        """Record the CallSid; True if the task was canceled meanwhile (hang it up)."""
        async with self._database.transaction() as db:
            task = await task_store.get_task(db, claim.task_id, for_update=True)
            attempt = await db.get(
                TaskAttemptRow, (claim.task_id, claim.number), with_for_update=True
            )
            if attempt is not None and attempt.call_sid is None:
                attempt.call_sid = call_sid
                attempt.lease_owner = None
                attempt.lease_expires_at = None
                attempt.updated_at = utcnow()
            task.throttled = 0
            return task.cancel_requested

    async def _create_failed(
        self, twilio: TwilioRestClient, claim: Claim, exc: TwilioApiError
    ) -> None:
        if exc.status == 429 or exc.code == _THROTTLED:
            DISPATCH_CREATES.labels("throttled").inc()
            logger.info("task %s: Twilio throttled the create; retrying later", claim.task_id)
            await self._give_back(claim)
        elif exc.status == 0 or exc.status >= 500:
            DISPATCH_CREATES.labels("failed").inc()
            logger.warning("task %s: create failed (%s); reconciling", claim.task_id, exc)
            await self._expire_lease(claim)
            await self._reconcile_expired(twilio)
        else:
            DISPATCH_CREATES.labels("refused").inc()
            logger.warning("task %s: Twilio refused the call: %s", claim.task_id, exc)
            await self._refused(claim, exc)

    async def _give_back(self, claim: Claim) -> None:
        """Forget an attempt Twilio never placed: the task waits again, no attempt spent."""
        async with self._database.transaction() as db:
            task = await task_store.get_task(db, claim.task_id, for_update=True)
            await _forget_attempt(db, task, claim.number)

    async def _expire_lease(self, claim: Claim) -> None:
        async with self._database.transaction() as db:
            attempt = await db.get(
                TaskAttemptRow, (claim.task_id, claim.number), with_for_update=True
            )
            if attempt is not None and attempt.call_sid is None:
                attempt.lease_expires_at = utcnow() - timedelta(seconds=1)

    async def _refused(self, claim: Claim, exc: TwilioApiError) -> None:
        async with self._database.transaction() as db:
            task = await task_store.get_task(db, claim.task_id, for_update=True)
            attempt = await db.get(
                TaskAttemptRow, (claim.task_id, claim.number), with_for_update=True
            )
            if attempt is None or AttemptStatus(attempt.status).is_terminal:
                return
            attempt.error_code = exc.code
            attempt.error_message = exc.message
            reason = f"twilio_{exc.code or exc.status}: {exc.message}"[:300]
            await end_attempt(
                db, task, attempt, AttemptStatus.FAILED, utcnow(), ended_reason=reason, retry=False
            )

    # --- reconciling ------------------------------------------------------------------------

    async def _reconcile_expired(self, twilio: TwilioRestClient) -> None:
        async with self._database.transaction() as db:
            expired = await dispatch_queue.claim_expired(
                db, owner=self.owner, lease=self._lease, now=utcnow()
            )
            pending = [
                (task.id, attempt.number, task.to_number, task.from_number, attempt.started_at)
                for attempt, task in expired
            ]
        for task_id, number, to, from_, started_at in pending:
            try:
                calls = await twilio.list_calls(to, from_, (started_at - _CLOCK_SKEW).date())
            except TwilioApiError as exc:
                logger.warning("task %s: cannot reconcile yet: %s", task_id, exc)
                continue
            await self._settle(task_id, number, started_at, calls)

    async def _settle(
        self, task_id: str, number: int, started_at: datetime, calls: list[CallInfo]
    ) -> None:
        async with self._database.transaction() as db:
            task = await task_store.get_task(db, task_id, for_update=True)
            attempt = await db.get(TaskAttemptRow, (task_id, number), with_for_update=True)
            if attempt is None or attempt.call_sid is not None:
                return
            for call in calls:
                created = call.date_created
                if created is not None and created < started_at - _CLOCK_SKEW:
                    continue
                if await task_store.attempt_by_call_sid(db, call.sid) is not None:
                    continue
                logger.info("task %s: adopting call %s found at Twilio", task_id, call.sid)
                attempt.call_sid = call.sid
                attempt.lease_owner = None
                attempt.lease_expires_at = None
                attempt.updated_at = utcnow()
                await db.flush()
                await apply_status_callback(db, task, _as_callback(call, "reconcile"))
                return
            logger.info("task %s: attempt %d never reached Twilio; dialing again", task_id, number)
            await _forget_attempt(db, task, number)

    async def _check_stale(self, twilio: TwilioRestClient) -> None:
        loop = asyncio.get_running_loop()
        every = self._settings.dispatch_stale_call_seconds / 2
        if loop.time() - self._last_stale_check < every:
            return
        self._last_stale_check = loop.time()
        older_than = utcnow() - timedelta(seconds=self._settings.dispatch_stale_call_seconds)
        async with self._database.transaction() as db:
            stale = await dispatch_queue.stale_live(db, older_than=older_than)
        for task_id, call_sid in stale:
            try:
                call = await twilio.fetch_call(call_sid)
            except TwilioApiError as exc:
                logger.warning("call %s: cannot look it up: %s", call_sid, exc)
                continue
            async with self._database.transaction() as db:
                task = await task_store.get_task(db, task_id, for_update=True)
                attempt = await task_store.attempt_by_call_sid(db, call_sid)
                if attempt is None:
                    continue
                attempt.updated_at = utcnow()
                await apply_status_callback(db, task, _as_callback(call, "fetched"))


async def _forget_attempt(db: AsyncSession, task: TaskRow, number: int) -> None:
    """Delete an attempt Twilio never placed; the task waits again, its attempts unspent,
    after a backoff that grows while Twilio keeps throttling or failing (0.5 s doubling, at
    most a minute)."""
    await db.execute(
        delete(TaskAttemptRow).where(
            TaskAttemptRow.task_id == task.id, TaskAttemptRow.number == number
        )
    )
    task.attempt_count = max(0, task.attempt_count - 1)
    if TaskStatus(task.status).is_terminal:
        return
    task.throttled += 1
    backoff = min(_MAX_THROTTLE_BACKOFF_S, 0.5 * 2 ** min(task.throttled, 10))
    task_store.set_task_status(task, TaskStatus.WAITING)
    task.next_attempt_at = utcnow() + timedelta(seconds=backoff)


async def _cancel_unplaced(db: AsyncSession, task: TaskRow, number: int) -> None:
    """The task was canceled before its call was placed: the attempt ends unplaced."""
    attempt = await db.get(TaskAttemptRow, (task.id, number), with_for_update=True)
    if attempt is not None and not AttemptStatus(attempt.status).is_terminal:
        await end_attempt(db, task, attempt, AttemptStatus.CANCELED, utcnow())


def _as_callback(call: CallInfo, source: str) -> dict[str, str]:
    """A call resource as the status callback that would have reported it."""
    params = {
        "CallSid": call.sid,
        "CallStatus": call.status,
        "SequenceNumber": f"{source}:{call.status}",
    }
    if call.duration is not None:
        params["CallDuration"] = str(call.duration)
    return params
