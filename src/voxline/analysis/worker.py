"""`AnalysisWorker`: the process's bounded pool of post-call analyses.

Jobs are rows (`store.analyses`), so they outlive the process: each is claimed under a lease
that the worker renews while it runs, and a job whose lease ran out (its process died or
stalled) is claimed again by any process. The worker polls for due jobs, and is woken at once
when this process queues one (`wake`).

What a job's outcome may touch is fixed before the model speaks: the session's own analysis
row and the memory of the instance the session ran with. The model's answer only fills in
text and data, checked against the schema, so a caller who talks the model into an odd answer
changes, at most, this call's own result and note.

Retry policy: a model that could not answer (no connection, a vendor error, a timeout) is
tried again after a growing delay, up to `max_attempts` in all; an answer invalid twice fails
at once (asking a third time costs the same and rarely helps).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from voxline.analysis.memory import notes_to_fold, truncated
from voxline.analysis.model import analyse_call, fold_notes
from voxline.analysis.prompt import AnalysisAnswer, InvalidAnswer, heard_transcript
from voxline.calls.credentials import CallCredentials
from voxline.calls.webhooks import SessionWebhooks
from voxline.dispatch import events as task_events
from voxline.providers.base import LanguageModel, ProviderError, ProviderUnavailable
from voxline.providers.registry import ProviderRegistry, UsesCredential
from voxline.store import analyses as jobs
from voxline.store.analyses import ClaimedAnalysis
from voxline.store.database import Database
from voxline.store.errors import NotFound
from voxline.store.instances import (
    MemoryNote,
    add_memory_note,
    fold_memory_notes,
    get_instance,
    memory_notes,
)
from voxline.store.models import Workspace
from voxline.store.secrets import sealed_secrets
from voxline.store.transcripts import transcript_items

logger = logging.getLogger(__name__)

_NOTHING_SAID = "the call has no transcript to analyse"


@dataclass(frozen=True, slots=True)
class AnalysisPolicy:
    """How many jobs at once, how long each answer and lease may last, how often to retry."""

    workers: int = 2
    timeout_s: float = 60.0
    lease_s: float = 120.0
    max_attempts: int = 3
    retry_backoff_s: float = 30.0
    poll_interval_s: float = 5.0
    memory_budget_chars: int = 4000


class AnalysisWorker:
    """Claims due analyses and runs at most `policy.workers` of them at once."""

    def __init__(
        self,
        database: Database,
        registry: ProviderRegistry,
        credentials: CallCredentials,
        webhooks: SessionWebhooks,
        policy: AnalysisPolicy,
    ) -> None:
        if policy.workers < 1:
            raise ValueError("an AnalysisWorker needs at least one worker")
        self._database = database
        self._registry = registry
        self._credentials = credentials
        self._webhooks = webhooks
        self._policy = policy
        self._lease = timedelta(seconds=policy.lease_s)
        self._wakeup = asyncio.Event()
        self._running: set[asyncio.Task[None]] = set()
        self._loop: asyncio.Task[None] | None = None
        self.name = uuid.uuid4().hex[:8]

    def start(self) -> None:
        if self._loop is None:
            self._loop = asyncio.create_task(self._claim_forever())

    def wake(self) -> None:
        """A job was queued: look for work now rather than at the next poll."""
        self._wakeup.set()

    async def run_due(self) -> int:
        """Claim the due jobs there is room for and run them to the end; how many ran."""
        started = await self._claim()
        if started:
            await asyncio.wait(started)
        return len(started)

    async def aclose(self) -> None:
        """Stop claiming and hand running jobs back (pending again, the attempt not counted)
        for any process to take up."""
        tasks = [*self._running, *([self._loop] if self._loop is not None else [])]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def _claim_forever(self) -> None:
        while True:
            # Cleared before claiming: a job queued while the claim runs wakes the next one.
            self._wakeup.clear()
            try:
                await self._claim()
            except Exception:
                logger.exception("claiming analyses failed")
            waits = [asyncio.ensure_future(self._wakeup.wait()), *self._running]
            try:
                await asyncio.wait(
                    waits, timeout=self._policy.poll_interval_s, return_when="FIRST_COMPLETED"
                )
            finally:
                waits[0].cancel()

    async def _claim(self) -> list[asyncio.Task[None]]:
        room = self._policy.workers - len(self._running)
        if room <= 0:
            return []
        async with self._database.transaction() as db:
            claimed = await jobs.claim_analyses(db, limit=room, lease=self._lease)
        started = []
        for job in claimed:
            task = asyncio.create_task(self._run(job), name=f"analysis {job.session_id}")
            self._running.add(task)
            task.add_done_callback(self._running.discard)
            started.append(task)
        return started

    async def _run(self, job: ClaimedAnalysis) -> None:
        renewing = asyncio.create_task(self._renew(job))
        try:
            await self._analyse(job)
        except asyncio.CancelledError:
            # Shutting down: hand the job back now rather than when the lease runs out.
            await asyncio.shield(self._release(job))
            raise
        except Exception as exc:
            logger.exception("session %s: analysis failed unexpectedly", job.session_id)
            await self._failed_attempt(job, f"internal error ({type(exc).__name__})")
        finally:
            renewing.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await renewing

    async def _release(self, job: ClaimedAnalysis) -> None:
        try:
            async with self._database.transaction() as db:
                row = await jobs.held(db, job)
                if row is not None:
                    await jobs.release(db, row)
        except Exception:
            logger.warning("session %s: could not hand the analysis back", job.session_id)

    async def _renew(self, job: ClaimedAnalysis) -> None:
        while True:
            await asyncio.sleep(self._policy.lease_s / 3)
            try:
                async with self._database.transaction() as db:
                    if not await jobs.renew_lease(db, job, self._lease):
                        return
            except Exception:
                logger.warning("session %s: could not renew the analysis lease", job.session_id)

    async def _analyse(self, job: ClaimedAnalysis) -> None:
        async with self._database.transaction() as db:
            items = await transcript_items(db, job.session_id)
            names = {name for name in [_credential_name(job)] if name}
            sealed = await sealed_secrets(db, job.workspace_id, names)
        transcript = heard_transcript(items)
        if not transcript:
            await self._final(job, _NOTHING_SAID)
            return
        try:
            llm = await self._model(job, sealed)
            answer = await analyse_call(llm, job.spec, transcript, timeout_s=self._policy.timeout_s)
        except InvalidAnswer as exc:
            await self._final(job, str(exc))
            return
        except ProviderError as exc:
            await self._failed_attempt(job, str(exc))
            return
        note = await self._final(job, answer)
        if note is None:
            return
        try:
            await self._bound_memory(job, llm)
        except Exception:
            # The analysis is recorded; the next one tries again to bring the memory back.
            logger.exception("instance %s: bounding the memory failed", job.instance_id)

    async def _model(self, job: ClaimedAnalysis, sealed: dict[str, bytes]) -> LanguageModel:
        if job.spec.llm is None:
            raise ProviderUnavailable("the analysis was queued without a model")
        credentials = self._credentials.resolve(job.workspace_id, sealed)
        return await self._registry.language_model(job.spec.llm, job.language, credentials)

    async def _failed_attempt(self, job: ClaimedAnalysis, reason: str) -> None:
        """The attempt failed for a reason that may pass: retry later, or give up."""
        if job.attempts < self._policy.max_attempts:
            delay = timedelta(seconds=self._policy.retry_backoff_s * job.attempts)
            async with self._database.transaction() as db:
                row = await jobs.held(db, job)
                if row is not None:
                    await jobs.retry_later(db, row, reason, delay)
            logger.info(
                "session %s: analysis attempt %d failed (%s); retrying",
                job.session_id,
                job.attempts,
                reason,
            )
            return
        await self._final(job, f"gave up after {job.attempts} attempts: {reason}")

    async def _final(
        self, job: ClaimedAnalysis, outcome: AnalysisAnswer | str
    ) -> MemoryNote | None:
        """Record `outcome` (the answer, with its summary as a memory note, or why the
        analysis failed for good) if the claim still holds, then send `session.analyzed`;
        the note added, if any."""
        note: MemoryNote | None = None
        async with self._database.transaction() as db:
            row = await jobs.held(db, job)
            if row is None:
                logger.warning("session %s: analysis lease lost; result dropped", job.session_id)
                return None
            if isinstance(outcome, AnalysisAnswer):
                await jobs.complete(
                    db, row, summary=outcome.summary, data=outcome.data, success=outcome.success
                )
                note = await self._remember(db, job, outcome.summary)
            else:
                await jobs.fail(db, row, outcome)
            analysis = jobs.analysis_json(jobs.analysis_of(row))
            await task_events.attempt_analyzed(db, job.session_id, analysis)
            secret = (await db.get_one(Workspace, job.workspace_id)).webhook_secret.encode()
        if job.webhook_url is not None:
            self._webhooks.session_analyzed(job.webhook_url, secret, job.session_id, analysis)
        return note

    async def _remember(
        self, db: AsyncSession, job: ClaimedAnalysis, summary: str
    ) -> MemoryNote | None:
        if not job.spec.remember_summary or job.instance_id is None:
            return None
        try:
            instance = await get_instance(db, job.workspace_id, job.instance_id, for_update=True)
        except NotFound:
            return None
        if not instance.memory_enabled:
            return None
        return await add_memory_note(db, instance, summary)

    async def _bound_memory(self, job: ClaimedAnalysis, llm: LanguageModel) -> None:
        """Fold the instance's oldest notes into one once its memory passes the budget: by
        the analysis model, or by plain truncation when the model fails."""
        if job.instance_id is None:
            return
        budget = self._policy.memory_budget_chars
        async with self._database.transaction() as db:
            instance = await get_instance(db, job.workspace_id, job.instance_id)
            old = notes_to_fold(memory_notes(instance), budget)
        if not old:
            return
        try:
            text = await fold_notes(
                llm, [note.text for note in old], timeout_s=self._policy.timeout_s
            )
        except ProviderError as exc:
            logger.warning(
                "instance %s: folding memory failed (%s); truncating instead",
                job.instance_id,
                exc,
            )
            text = truncated(old, budget // 2)
        async with self._database.transaction() as db:
            instance = await get_instance(db, job.workspace_id, job.instance_id, for_update=True)
            await fold_memory_notes(db, instance, [note.id for note in old], text[: budget // 2])


def _credential_name(job: ClaimedAnalysis) -> str | None:
    spec = job.spec.llm
    return spec.credential_name() if isinstance(spec, UsesCredential) else None
