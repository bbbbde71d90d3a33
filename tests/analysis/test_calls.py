"""Whole calls through the engine: a finished call queues its analysis, whose summary the
next call of the same instance carries in its prompt (as the LLM server received it)."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.fakes.openai_api import FakeOpenAiApi, Reply
from tests.runtime.fakes import FakeTransport, eventually
from voxline.agent_spec import (
    AgentSpec,
    CallAnalysis,
    OpenAiLlm,
    ScriptedStt,
    ScriptedTts,
    TurnTaking,
)
from voxline.app_state import AppState
from voxline.calls.engine import CallEngine
from voxline.config import Settings
from voxline.store.agents import create_agent
from voxline.store.analyses import AnalysisStatus, SessionAnalysis, session_analysis
from voxline.store.instances import create_instance
from voxline.store.session_state import Channel, Direction
from voxline.store.sessions import create_session
from voxline.store.workspaces import create_workspace

SCHEMA = {
    "type": "object",
    "properties": {"booked": {"type": "boolean"}, "when": {"type": ["string", "null"]}},
    "required": ["booked", "when"],
}
SUMMARY = "Ada booked a cleaning for Tuesday at nine."


@pytest.fixture
async def api() -> AsyncIterator[FakeOpenAiApi]:
    async with FakeOpenAiApi(api_key=None) as api:
        yield api


@pytest.fixture
async def engine(database_url: str, tmp_path: Path) -> AsyncIterator[CallEngine]:
    """The engine of a server process, with its analysis worker running."""
    settings = Settings(
        _env_file=None,
        data_dir=tmp_path,
        database_url=database_url,
        seed_demo_agent=False,
        preload_models=False,
    )
    state = await AppState.start(settings)
    assert state.analysis is not None
    try:
        yield state.engine
    finally:
        await state.aclose()


async def _call(engine: CallEngine, session_id: str, caller_says: str, reply: str) -> None:
    """A web call: the greeting, one typed line from the caller, the reply heard, hang up."""
    transport = FakeTransport()
    transport.start_caller()
    call = asyncio.create_task(engine.run(await engine.load(session_id), transport))
    try:
        await eventually(lambda: transport.events_of("agent.text"))
        transport.type_text(caller_says)
        await eventually(
            lambda: reply in " ".join(e.text for e in transport.events_of("agent.text"))
        )
        await eventually(lambda: transport.pending_marks == 0)
        transport.hang_up_caller()
        await asyncio.wait_for(call, 10)
    finally:
        await transport.stop_caller()


async def _analysis(engine: CallEngine, session_id: str) -> SessionAnalysis:
    for _ in range(500):
        async with engine.database.transaction() as db:
            analysis = await session_analysis(db, session_id)
        if analysis is not None and analysis.status in (AnalysisStatus.DONE, AnalysisStatus.FAILED):
            return analysis
        await asyncio.sleep(0.01)
    raise AssertionError(f"the analysis of {session_id} did not finish: {analysis}")


async def test_the_next_call_starts_knowing_what_the_last_one_booked(
    engine: CallEngine, api: FakeOpenAiApi
) -> None:
    spec = AgentSpec(
        name="Acme Dental",
        system_prompt="You are Acme Dental's receptionist.",
        first_message="Hello, Acme Dental.",
        stt=ScriptedStt(),
        llm=OpenAiLlm(model=api.model, base_url=api.base_url),
        tts=ScriptedTts(first_byte_ms=0, ms_per_character=1),
        turn_taking=TurnTaking(vad="energy"),
        analysis=CallAnalysis(data_schema=SCHEMA),
    )
    async with engine.database.transaction() as db:
        workspace = await create_workspace(db, f"calls-{uuid.uuid4().hex[:10]}")
        agent = await create_agent(db, workspace.id, spec)
        instance = await create_instance(
            db, workspace.id, agent_id=agent.id, external_ref="ada", variables={}, memory=[]
        )
        first, second = [
            (
                await create_session(
                    db,
                    workspace_id=workspace.id,
                    agent_id=agent.id,
                    channel=Channel.WEB,
                    direction=Direction.INBOUND,
                    instance_id=instance.id,
                )
            ).id
            for _ in range(2)
        ]
    answer = {"summary": SUMMARY, "data": {"booked": True, "when": "Tuesday 9:00"}}
    api.script(
        Reply(text=["Booked you for Tuesday", " at nine."]),
        Reply(text=[json.dumps(answer)]),
        Reply(text=["Welcome back, Ada."]),
    )

    await _call(engine, first, "Can I book a cleaning on Tuesday morning?", "at nine.")
    analysis = await _analysis(engine, first)
    assert analysis.status == AnalysisStatus.DONE, analysis.error
    assert analysis.data == {"booked": True, "when": "Tuesday 9:00"}
    # The analysis used the agent's own model (no analysis.llm), with the call as data.
    assert "Can I book a cleaning" in api.completions()[1].body["messages"][1]["content"]

    await _call(engine, second, "Hi, it's Ada again.", "Welcome back")
    system = api.completions()[2].body["messages"][0]
    assert system["role"] == "system"
    assert "You are Acme Dental's receptionist." in system["content"]
    assert SUMMARY in system["content"]
