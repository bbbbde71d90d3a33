"""`CallEngine`: runs a stored session's conversation over a transport, start to finish.

It is the one place that joins the store, the providers and the runtime: it loads the agent
and instance, moves the session `pending -> in_progress -> completed | failed`, records the
transcript as it happens and, whatever goes wrong, finalizes the session. Transports (Twilio,
browser) and the API know nothing of how a call is run beyond `run()`.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta

import httpx

from voxline.agent_spec import AgentSpec
from voxline.audio.silero_vad import VadModelUnavailable, preload_silero
from voxline.calls.credentials import CallCredentials
from voxline.calls.webhooks import SessionWebhooks
from voxline.config import Settings
from voxline.providers.base import ProviderError, ProviderSet, ProviderUnavailable
from voxline.providers.executor import InferenceExecutor
from voxline.providers.registry import ProviderRegistry
from voxline.recordings.service import Recordings
from voxline.runtime.agent import AgentRuntime, CallOutcome
from voxline.runtime.events import SessionEnded
from voxline.runtime.recording import QueuedRecorder
from voxline.runtime.transport import Transport
from voxline.store import sessions as session_store
from voxline.store.agents import agent_spec, get_agent
from voxline.store.database import Database
from voxline.store.instances import get_instance, memory_notes
from voxline.store.models import Workspace
from voxline.store.recorder import StoreRecorder
from voxline.store.session_state import SessionStatus
from voxline.store.types import utcnow
from voxline.telephony.twilio.rest import TwilioRestClient
from voxline.tools import ToolRunner

logger = logging.getLogger(__name__)

_NO_PROVIDERS = "the agent could not start: its providers are unavailable"


@dataclass(frozen=True, slots=True)
class CallSetup:
    """Everything stored that one call needs, loaded before the conversation starts."""

    session_id: str
    workspace_id: str
    agent_id: str
    spec: AgentSpec
    variables: dict[str, str]
    memory: tuple[str, ...]
    signing_secret: bytes
    sealed_secrets: Mapping[str, bytes] = field(default_factory=dict, repr=False)
    """The workspace secrets the agent names, still encrypted (opened only to build)."""


class CallEngine:
    """Process-wide: the shared inference pool, providers, HTTP client and Twilio client."""

    def __init__(self, settings: Settings, database: Database) -> None:
        self.settings = settings
        self.database = database
        self.executor = InferenceExecutor(settings.inference_threads)
        self.registry = ProviderRegistry(self.executor, settings.data_dir / "models")
        self.credentials = CallCredentials.from_settings(settings)
        self.http = httpx.AsyncClient(timeout=httpx.Timeout(10.0, connect=5.0))
        self.twilio = _twilio_client(settings, self.http)
        self.webhooks = SessionWebhooks(self.http)
        self.recordings = Recordings.from_settings(settings)
        self._calls: set[asyncio.Task[object]] = set()
        self._sweeper: asyncio.Task[None] | None = None

    def start_sweeping(self, every_s: float = 60.0) -> None:
        """Periodically fail sessions whose stream never connected (their relay expired)."""
        if self._sweeper is None:
            self._sweeper = asyncio.create_task(self._sweep_forever(every_s))
            self.recordings.start_sweeping()

    async def sweep_stale_sessions(self) -> list[str]:
        """Fail the pending sessions whose relay token has expired; returns their IDs."""
        grace = timedelta(seconds=self.settings.relay_token_ttl_seconds + 30)
        async with self.database.transaction() as db:
            stale = await session_store.fail_stale_pending(db, utcnow() - grace)
        for session_id in stale:
            logger.warning("session %s: the media stream never connected", session_id)
        return stale

    async def _sweep_forever(self, every_s: float) -> None:
        while True:
            await asyncio.sleep(every_s)
            try:
                await self.sweep_stale_sessions()
            except Exception:
                logger.exception("sweeping stale sessions failed")

    @property
    def active_calls(self) -> int:
        return len(self._calls)

    async def warm_up(self, spec: AgentSpec) -> None:
        """Load and exercise the models `spec` uses, so the first call is as fast as the tenth.
        Cloud providers warm up with the server's keys only (no workspace secret is opened)."""
        if spec.turn_taking.vad == "silero":
            try:
                await self.executor.run(preload_silero)
            except VadModelUnavailable as exc:
                raise ProviderUnavailable(str(exc)) from exc
        await self.registry.warm_up(spec, self.credentials.server)

    async def load(self, session_id: str) -> CallSetup:
        """The session's agent, instance and workspace; raises `NotFound` if any is gone."""
        async with self.database.transaction() as db:
            row = await session_store.get_session(db, session_id)
            agent = await get_agent(db, row.workspace_id, row.agent_id)
            variables: dict[str, str] = {}
            memory: tuple[str, ...] = ()
            if row.instance_id is not None:
                instance = await get_instance(db, row.workspace_id, row.instance_id)
                variables = dict(instance.variables)
                memory = tuple(note.text for note in memory_notes(instance))
            workspace = await db.get_one(Workspace, row.workspace_id)
            spec = agent_spec(agent)
            return CallSetup(
                session_id=row.id,
                workspace_id=row.workspace_id,
                agent_id=row.agent_id,
                spec=spec,
                variables=variables,
                memory=memory,
                signing_secret=workspace.webhook_secret.encode(),
                sealed_secrets=await self.credentials.load(db, row.workspace_id, spec),
            )

    async def providers(self, setup: CallSetup) -> ProviderSet:
        """The call's providers, authenticated with the server's keys overlaid by the
        workspace's secrets; ProviderUnavailable naming what is missing or refused."""
        credentials = self.credentials.resolve(setup.workspace_id, setup.sealed_secrets)
        return await self.registry.build(setup.spec, credentials)

    async def run(
        self,
        setup: CallSetup,
        transport: Transport,
        *,
        call_sid: str | None = None,
        stream_sid: str | None = None,
        stream_started: float | None = None,
    ) -> CallOutcome | None:
        """Hold the conversation and finalize the session. Returns None if it never started
        (its providers could not be built). `stream_started` (`time.monotonic()` when the
        transport's stream began) makes the first-response figure include our set-up."""
        task = asyncio.current_task()
        if task is not None:
            self._calls.add(task)
        try:
            return await self._run(setup, transport, call_sid, stream_sid, stream_started)
        finally:
            if task is not None:
                self._calls.discard(task)

    async def _run(
        self,
        setup: CallSetup,
        transport: Transport,
        call_sid: str | None,
        stream_sid: str | None,
        stream_started: float | None,
    ) -> CallOutcome | None:
        # Written while the greeting starts: the caller must not wait on the database.
        marking = asyncio.create_task(
            self._mark_in_progress(setup.session_id, call_sid, stream_sid)
        )
        try:
            providers = await self.providers(setup)
        except ProviderError as exc:
            logger.error("session %s: providers unavailable: %s", setup.session_id, exc)
            await marking
            await self._finish(setup, SessionStatus.FAILED, "error", str(exc), None)
            # The runtime never ran: this is the call's one event. The reason stays generic
            # (the log has it): it may name the workspace's credentials.
            await transport.emit(SessionEnded(seq=1, reason="error", error=_NO_PROVIDERS))
            await transport.hang_up()
            return None

        # Written in the background, batched: a slow database delays neither the call's audio
        # nor its client events (the runtime's journal sends those in order with the writes).
        recorder = QueuedRecorder(StoreRecorder(self.database, setup.session_id))
        tools = ToolRunner(
            setup.spec.tools,
            http=self.http,
            signing_secret=setup.signing_secret,
            session_id=setup.session_id,
            variables=setup.variables,
        )
        recording = None
        if setup.spec.recording.enabled:
            recording = await self.recordings.start(
                setup.workspace_id, setup.session_id, setup.spec.recording.bitrate_kbps * 1000
            )
            transport = recording.wrap(transport)
        runtime = AgentRuntime(
            setup.spec,
            providers,
            transport,
            recorder,
            tools=tools,
            variables=setup.variables,
            memory=setup.memory,
        )
        setup_ms = 0.0 if stream_started is None else (time.monotonic() - stream_started) * 1000
        outcome: CallOutcome | None = None
        try:
            outcome = await runtime.run()
        finally:
            if recording is not None:
                await asyncio.shield(recording.finish())
            # Runs on cancellation (server shutdown) too: nothing already said is lost.
            await asyncio.shield(recorder.aclose())
            await asyncio.shield(marking)
            if outcome is None:
                await asyncio.shield(
                    self._finish(setup, SessionStatus.FAILED, "error", "call interrupted", None)
                )
        if outcome.first_response_ms is not None:
            outcome = dataclasses.replace(
                outcome, first_response_ms=outcome.first_response_ms + setup_ms
            )
        status = SessionStatus.FAILED if outcome.end_reason == "error" else SessionStatus.COMPLETED
        await self._finish(setup, status, outcome.end_reason, outcome.error, outcome)
        return outcome

    async def _mark_in_progress(
        self, session_id: str, call_sid: str | None, stream_sid: str | None
    ) -> None:
        async with self.database.transaction() as db:
            await session_store.mark_in_progress(
                db, session_id, call_sid=call_sid, stream_sid=stream_sid, started_at=utcnow()
            )

    async def _finish(
        self,
        setup: CallSetup,
        status: SessionStatus,
        end_reason: str,
        error: str | None,
        outcome: CallOutcome | None,
    ) -> None:
        try:
            async with self.database.transaction() as db:
                await session_store.finish(
                    db,
                    setup.session_id,
                    status=status,
                    end_reason=end_reason,
                    error=error,
                    first_response_ms=None if outcome is None else outcome.first_response_ms,
                )
        except Exception:
            logger.exception("session %s: could not be finalized", setup.session_id)
            return
        if setup.spec.webhook_url is not None:
            url = str(setup.spec.webhook_url)
            self.webhooks.session_ended(
                url, setup.signing_secret, setup.session_id, status, end_reason
            )

    async def aclose(self) -> None:
        await self.recordings.aclose()
        if self._sweeper is not None:
            self._sweeper.cancel()
            await asyncio.gather(self._sweeper, return_exceptions=True)
        for task in list(self._calls):
            task.cancel()
        if self._calls:
            await asyncio.wait(list(self._calls), timeout=5.0)
        await self.webhooks.aclose()
        await self.http.aclose()
        await self.registry.aclose()
        self.executor.shutdown()


def _twilio_client(settings: Settings, http: httpx.AsyncClient) -> TwilioRestClient | None:
    if settings.twilio_account_sid is None or settings.twilio_auth_token is None:
        return None
    return TwilioRestClient(
        settings.twilio_account_sid,
        settings.twilio_auth_token.get_secret_value(),
        settings.twilio_api_base_url,
        http,
    )
