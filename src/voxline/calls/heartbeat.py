"""`Heartbeat`: this process's liveness in the database, and the sweep for the dead.

Every `timeout_s / 3` the process beats, then ends the live sessions of processes that have
not beaten for `timeout_s` (`failed/server_crash`, transcript kept, `session.ended` sent).
Process clocks must agree to well within `timeout_s` (NTP).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
from datetime import timedelta

from voxline.calls.webhooks import SessionWebhooks
from voxline.store.agents import agent_spec
from voxline.store.database import Database
from voxline.store.models import AgentRow, Workspace
from voxline.store.processes import CRASH_REASON, beat, end_orphaned_sessions, forget
from voxline.store.session_state import SessionStatus
from voxline.store.types import utcnow

logger = logging.getLogger(__name__)

_STOP_S = 20.0


class Heartbeat:
    def __init__(
        self,
        database: Database,
        process_id: str,
        webhooks: SessionWebhooks,
        *,
        timeout_s: float,
    ) -> None:
        self.process_id = process_id
        self._database = database
        self._webhooks = webhooks
        self._timeout = timedelta(seconds=timeout_s)
        self._interval_s = timeout_s / 3
        self._task: asyncio.Task[None] | None = None
        self._stop = asyncio.Event()
        self._failing = False

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._forever(), name="voxline-heartbeat")

    async def beat(self) -> None:
        """Tell the database this process is alive."""
        async with self._database.transaction() as db:
            await beat(
                db, self.process_id, host=socket.gethostname(), pid=os.getpid(), now=utcnow()
            )

    async def sweep(self) -> list[str]:
        """End the live sessions of processes that stopped beating; returns their IDs."""
        now = utcnow()
        async with self._database.transaction() as db:
            rows = await end_orphaned_sessions(db, alive_since=now - self._timeout, now=now)
            ended: list[tuple[str, str, bytes]] = []
            for row in rows:
                agent = await db.get(AgentRow, row.agent_id)
                webhook = None if agent is None else agent_spec(agent).webhook_url
                if webhook is not None:
                    workspace = await db.get_one(Workspace, row.workspace_id)
                    ended.append((row.id, str(webhook), workspace.webhook_secret.encode()))
        for row in rows:
            logger.warning(
                "session %s: its server process stopped; ended as %s", row.id, CRASH_REASON
            )
        for session_id, url, secret in ended:
            self._webhooks.session_ended(
                url, secret, session_id, SessionStatus.FAILED, CRASH_REASON
            )
        return [row.id for row in rows]

    async def aclose(self) -> None:
        """Stop beating (never mid-transaction: a cancelled SQLite write can keep its lock)
        and leave the table; call it once this process's calls have all ended."""
        self._stop.set()
        if self._task is not None:
            done, _ = await asyncio.wait([self._task], timeout=_STOP_S)
            if not done:
                self._task.cancel()
                await asyncio.gather(self._task, return_exceptions=True)
        try:
            async with self._database.transaction() as db:
                await forget(db, self.process_id)
        except Exception as exc:
            # Swept once its beat is stale, like a crashed process's row.
            logger.warning("could not remove this process's heartbeat: %s", type(exc).__name__)

    async def _forever(self) -> None:
        while not self._stop.is_set():
            try:
                await self.beat()
                await self.sweep()
                if self._failing:
                    logger.warning("heartbeat: the database is reachable again")
                self._failing = False
            except Exception as exc:
                if not self._failing:
                    logger.warning("heartbeat failed (%s); retrying", type(exc).__name__)
                self._failing = True
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self._interval_s):
                    await self._stop.wait()
