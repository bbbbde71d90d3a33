"""An outbound call's variables: the task's, merged over its instance's."""

from __future__ import annotations

import uuid
from datetime import timedelta

from voxline.agent_spec import AgentSpec, ScriptedLlm
from voxline.calls.engine import CallEngine
from voxline.store import tasks as task_store
from voxline.store.agents import create_agent
from voxline.store.instances import create_instance
from voxline.store.session_state import Channel, Direction
from voxline.store.sessions import create_session
from voxline.store.types import utcnow
from voxline.store.workspaces import create_workspace


async def test_task_variables_override_the_instances(engine: CallEngine) -> None:
    async with engine.database.transaction() as db:
        workspace = await create_workspace(db, f"calls-{uuid.uuid4().hex[:10]}")
        agent = await create_agent(db, workspace.id, AgentSpec(name="Out", llm=ScriptedLlm()))
        instance = await create_instance(
            db,
            workspace.id,
            agent_id=agent.id,
            external_ref=None,
            variables={"name": "Ada", "slot": "Monday"},
            memory=[],
        )
        (task,) = await task_store.create_tasks(
            db,
            workspace_id=workspace.id,
            agent_id=agent.id,
            from_number="+14155550100",
            tasks=[task_store.NewTask("+14155550101", instance.id, {"slot": "Tuesday"})],
            options=task_store.TaskOptions(),
        )
        attempt = task_store.new_attempt(task, owner="t", lease_until=utcnow() + timedelta(1))
        session = await create_session(
            db,
            workspace_id=workspace.id,
            agent_id=agent.id,
            channel=Channel.PHONE,
            direction=Direction.OUTBOUND,
            instance_id=instance.id,
        )
        attempt.session_id = session.id
        db.add(attempt)
    setup = await engine.load(session.id)
    assert setup.variables == {"name": "Ada", "slot": "Tuesday"}
