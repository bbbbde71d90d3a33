"""A finished session waiting for its analysis, and a worker to run it (on both databases)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import asdict, dataclass
from typing import Any

import httpx
import pytest
from sqlalchemy import update

from tests.analysis.fakes import StubRegistry
from voxline.agent_spec import AgentSpec, CallAnalysis, ScriptedLlm
from voxline.analysis.worker import AnalysisPolicy, AnalysisWorker
from voxline.calls.credentials import CallCredentials
from voxline.calls.webhooks import SessionWebhooks
from voxline.runtime.recording import TranscriptItem
from voxline.security.secret_box import SecretBox
from voxline.store.agents import create_agent
from voxline.store.analyses import enqueue_analysis
from voxline.store.database import Database
from voxline.store.instances import create_instance
from voxline.store.models import SessionAnalysisRow, TranscriptItemRow
from voxline.store.session_state import Channel, Direction, SessionStatus
from voxline.store.sessions import create_session, finish, mark_in_progress
from voxline.store.upsert import upsert
from voxline.store.workspaces import create_workspace

BOOKING = CallAnalysis(
    data_schema={
        "type": "object",
        "properties": {"booked": {"type": "boolean"}},
        "required": ["booked"],
    },
    llm=ScriptedLlm(),
)
CALL = [
    TranscriptItem(0, "agent", "Hello, Acme Dental.", 0, heard_text="Hello, Acme Dental."),
    TranscriptItem(1, "caller", "Can I come on Tuesday?", 900),
    TranscriptItem(
        2, "agent", "Booked you for Tuesday at nine.", 1400, heard_text="Booked you for Tuesday"
    ),
]


@dataclass
class World:
    database: Database
    workspace_id: str
    webhook_secret: bytes
    agent_id: str
    instance_id: str
    other_instance_id: str

    async def finished_call(
        self,
        items: list[TranscriptItem] = CALL,
        *,
        analysis: CallAnalysis = BOOKING,
        instance_id: str | None = None,
        webhook_url: str | None = None,
    ) -> str:
        """A completed session of the instance, its transcript stored, its analysis queued."""
        async with self.database.transaction() as db:
            row = await create_session(
                db,
                workspace_id=self.workspace_id,
                agent_id=self.agent_id,
                channel=Channel.PHONE,
                direction=Direction.INBOUND,
                instance_id=instance_id or self.instance_id,
            )
        async with self.database.transaction() as db:
            for entry in items:
                values = {"session_id": row.id, **asdict(entry)}
                await upsert(db, TranscriptItemRow, values, ("session_id", "seq"))
        async with self.database.transaction() as db:
            await mark_in_progress(db, row.id)
            await finish(db, row.id, status=SessionStatus.COMPLETED, end_reason="caller_hangup")
            await enqueue_analysis(
                db,
                session_id=row.id,
                workspace_id=self.workspace_id,
                instance_id=row.instance_id,
                spec=analysis,
                language="en",
                webhook_url=webhook_url,
            )
        return row.id


@pytest.fixture
async def world(database: Database) -> World:
    async with database.transaction() as db:
        # The database is shared by the test run: jobs other tests left due would be claimed
        # (oldest first) before this test's own.
        await db.execute(
            update(SessionAnalysisRow)
            .where(SessionAnalysisRow.status.in_(["pending", "running"]))
            .values(status="failed", error="left by another test")
        )
        workspace = await create_workspace(db, f"analysis-{uuid.uuid4().hex[:10]}")
        agent = await create_agent(db, workspace.id, AgentSpec(name="Dental", analysis=BOOKING))
        instances = [
            await create_instance(
                db, workspace.id, agent_id=agent.id, external_ref=None, variables={}, memory=[]
            )
            for _ in range(2)
        ]
    return World(
        database,
        workspace.id,
        workspace.webhook_secret.encode(),
        agent.id,
        instances[0].id,
        instances[1].id,
    )


WorkerFactory = Callable[..., AnalysisWorker]


@pytest.fixture
async def make_worker(database: Database) -> AsyncIterator[WorkerFactory]:
    """Workers answering with the given model; closed at the end."""
    made: list[AnalysisWorker] = []
    async with httpx.AsyncClient() as http:
        webhooks = SessionWebhooks(http, attempts=1)

        def make(llm: Any, **policy: Any) -> AnalysisWorker:
            worker = AnalysisWorker(
                database,
                StubRegistry(llm),  # type: ignore[arg-type]
                CallCredentials({}, SecretBox(b"test-server-secret")),
                webhooks,
                AnalysisPolicy(**{"timeout_s": 5.0, "retry_backoff_s": 0.0, **policy}),
            )
            made.append(worker)
            return worker

        yield make
        for worker in made:
            await worker.aclose()
        await webhooks.aclose()


@pytest.fixture(autouse=True)
def _loopback_llm_fakes(loopback_egress: None) -> None:
    """Opens loopback to the egress policy: the analysis models' fakes listen on 127.0.0.1."""
