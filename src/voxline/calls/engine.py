"""`CallEngine`: runs a stored session's conversation over a transport, start to finish.

It is the one place that joins the store, the providers and the runtime: it loads the agent
and instance, moves the session `pending -> in_progress -> completed | failed`, records the
transcript as it happens and, whatever goes wrong, finalizes the session. Transports (Twilio,
browser) and the API know nothing of how a call is run beyond `run()`.

Everything a call writes goes through the process's `SessionLedger`, so a database outage
delays records (spooled on disk) but loses none. The engine also owns the process's
heartbeat (crash recovery) and its drain on shutdown: `draining` is set on the first signal,
new calls are refused, live ones finish or are ended with `server_shutdown`.

Why one module of ~480 lines: a call's whole life from the store's side (load, providers,
ledger, live registry, recording, drain, abort) is decided here; each of those has its own
module, and this is where they meet.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Literal

import httpx
from redis.asyncio import Redis

from voxline.agent_spec import AgentSpec
from voxline.audio.silero_vad import VadModelUnavailable, preload_silero
from voxline.calls import ledger as records
from voxline.calls.credentials import CallCredentials
from voxline.calls.heartbeat import Heartbeat
from voxline.calls.ledger import LedgerRecorder, SessionLedger
from voxline.calls.live import LiveCalls
from voxline.calls.spool import Spool
from voxline.calls.warming import AgentWarmer
from voxline.calls.webhooks import SessionWebhooks
from voxline.config import Settings
from voxline.ids import new_id
from voxline.live.control import CallControl
from voxline.live.hub import EventHub, EventLog, MemoryLog, RedisLog
from voxline.loop_lag import LoopLagMonitor
from voxline.observability.metrics import LOOP_LAG, CallMetrics
from voxline.observability.tracing import CallTracing
from voxline.providers.base import ProviderError, ProviderSet, ProviderUnavailable
from voxline.providers.executor import InferenceExecutor
from voxline.providers.registry import ProviderRegistry
from voxline.recordings.service import Recordings
from voxline.runtime.agent import AgentRuntime, CallOutcome, EndReason
from voxline.runtime.events import CallEvent, SessionEnded, SessionStarted
from voxline.runtime.journal import EventObserver
from voxline.runtime.recording import QueuedRecorder
from voxline.runtime.transport import Transport
from voxline.store import sessions as session_store
from voxline.store.agents import agent_spec, get_agent
from voxline.store.database import Database
from voxline.store.instances import get_instance, memory_notes
from voxline.store.models import Workspace
from voxline.store.session_state import Direction, SessionStatus
from voxline.store.tasks import task_variables
from voxline.store.types import utcnow
from voxline.telephony.twilio.rest import TwilioRestClient
from voxline.tools import ToolRunner

logger = logging.getLogger(__name__)

_NO_PROVIDERS = "the agent could not start: its providers are unavailable"
SHUTDOWN_REASON: EndReason = "server_shutdown"
_GOODBYE_S = 30.0
"""How long a call ended by the drain may take to say its last line."""
_ABORT_S = 5.0


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
    channel: Literal["phone", "web"]
    direction: Literal["inbound", "outbound"]
    sealed_secrets: Mapping[str, bytes] = field(default_factory=dict, repr=False)
    """The workspace secrets the agent names, still encrypted (opened only to build)."""


class CallEngine:
    """Process-wide: the shared inference pool, providers, HTTP client and Twilio client;
    the calls it runs (`control`), their live events (`live`) and metrics."""

    def __init__(self, settings: Settings, database: Database) -> None:
        self.settings = settings
        self.database = database
        self.executor = InferenceExecutor(settings.inference_threads)
        self.registry = ProviderRegistry(self.executor, settings.data_dir / "models")
        self.credentials = CallCredentials.from_settings(settings)
        self.http = httpx.AsyncClient(timeout=httpx.Timeout(10.0, connect=5.0))
        self.twilio = _twilio_client(settings, self.http)
        self.webhooks = SessionWebhooks(self.http)
        self.process_id = new_id("proc")
        spool = Spool(
            settings.data_dir / "spool", self.process_id, max_bytes=settings.spool_max_bytes
        )
        self.ledger = SessionLedger(database, spool, self.webhooks)
        self.heartbeat = Heartbeat(
            database, self.process_id, self.webhooks, timeout_s=settings.process_timeout_seconds
        )
        self.draining = asyncio.Event()
        """Set on the first shutdown signal: take no new calls (nor outbound tasks)."""
        self.live = LiveCalls()
        self.recordings = Recordings.from_settings(settings)
        self._calls: set[asyncio.Task[object]] = set()
        self._aborted = False
        self._sweeper: asyncio.Task[None] | None = None
        self.warmer = AgentWarmer(
            self.warm_up, lambda spec: self.registry.build(spec, self.credentials.server)
        )
        self.on_analysis_queued: Callable[[], None] | None = None
        """Called when a finished session queues its analysis (wakes the analysis worker)."""
        self.redis = None if settings.redis_url is None else Redis.from_url(settings.redis_url)
        log: EventLog = (
            MemoryLog(settings.live_history_events)
            if self.redis is None
            else RedisLog(self.redis, settings.redis_prefix, settings.live_history_events)
        )
        self.events = EventHub(log)
        """Every call's events, for live streams (any process's calls, through Redis)."""
        self.control = CallControl(
            self.live, redis=self.redis, prefix=settings.redis_prefix, process_id=self.process_id
        )
        self.tracing = (
            None if settings.otlp_endpoint is None else CallTracing(settings.otlp_endpoint)
        )
        self._lag = LoopLagMonitor(0.1, 0.1, observer=LOOP_LAG.observe)

    async def start_live(self) -> None:
        """Take commands for this process's calls (relayed over Redis) and sample the
        event loop's lag for the metrics."""
        await self.control.start()
        self._lag.start()

    def start_sweeping(self, every_s: float = 60.0) -> None:
        """Start the process's background duties: the ledger (replaying any spool a stopped
        process left), the heartbeat and its crash sweep, and failing sessions whose stream
        never connected (their relay expired)."""
        self.ledger.start()
        self.heartbeat.start()
        if self._sweeper is None:
            self._sweeper = asyncio.create_task(self._sweep_forever(every_s))
            self.recordings.start_sweeping()

    def refusal(self) -> str | None:
        """Why a new call must be refused now (draining, spool full); None to take it."""
        if self.draining.is_set():
            return "this server is shutting down"
        if self.ledger.full:
            return "this server cannot record calls right now (database unavailable)"
        return None

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

    def prepare_agent(self, spec: AgentSpec) -> None:
        """With `preload_models`: warm a new or changed agent and cache its greeting, in the
        background (`AgentWarmer`)."""
        if self.settings.preload_models:
            self.warmer.schedule(spec)

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
                if instance.memory_enabled:
                    memory = tuple(note.text for note in memory_notes(instance))
            if row.direction == Direction.OUTBOUND.value:
                variables.update(await task_variables(db, row.id))
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
                channel="web" if row.channel == "web" else "phone",
                direction="outbound" if row.direction == "outbound" else "inbound",
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
        (its providers could not be built) or was cut off by `abort()`. `stream_started`
        (`time.monotonic()` when the transport's stream began) makes the first-response
        figure include our set-up."""
        # Its own task, so that `abort()` can cancel the call without cancelling the caller's
        # (a WebSocket endpoint, which still closes its socket).
        call = asyncio.create_task(
            self._run(setup, transport, call_sid, stream_sid, stream_started)
        )
        self._calls.add(call)
        try:
            return await call
        except asyncio.CancelledError:
            current = asyncio.current_task()
            if call.cancelled() and current is not None and not current.cancelling():
                return None
            raise
        finally:
            self._calls.discard(call)

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
        observers = self._observers(setup)
        for observe in observers:
            observe(
                SessionStarted(
                    agent_id=setup.agent_id, channel=setup.channel, direction=setup.direction
                )
            )
        try:
            providers = await self.providers(setup)
        except ProviderError as exc:
            logger.error("session %s: providers unavailable: %s", setup.session_id, exc)
            await marking
            await self._finish(setup, SessionStatus.FAILED, "error", str(exc), None)
            # The runtime never ran: this is the call's one event. The reason stays generic
            # (the log has it): it may name the workspace's credentials.
            ended = SessionEnded(seq=1, reason="error", error=_NO_PROVIDERS)
            for observe in observers:
                observe(ended)
            await transport.emit(ended)
            await transport.hang_up()
            return None

        # Written in the background, batched: a slow database delays neither the call's audio
        # nor its client events (the runtime's journal sends those in order with the writes).
        recorder = QueuedRecorder(LedgerRecorder(self.ledger, setup.session_id))
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
            observers=observers,
        )
        setup_ms = 0.0 if stream_started is None else (time.monotonic() - stream_started) * 1000
        outcome: CallOutcome | None = None
        self.live.add(setup.session_id, runtime)
        await self.control.claim(setup.session_id)
        try:
            outcome = await runtime.run()
        finally:
            self.live.remove(setup.session_id, runtime)
            await asyncio.shield(self.control.release(setup.session_id))
            if recording is not None:
                await asyncio.shield(recording.finish())
            # Runs on cancellation (server shutdown) too: nothing already said is lost.
            await asyncio.shield(recorder.aclose())
            await asyncio.shield(marking)
            if outcome is None:
                reason, error = (
                    (SHUTDOWN_REASON, "the server stopped during the call")
                    if self._aborted
                    else ("error", "call interrupted")
                )
                await asyncio.shield(self._finish(setup, SessionStatus.FAILED, reason, error, None))
        if outcome.first_response_ms is not None:
            outcome = dataclasses.replace(
                outcome, first_response_ms=outcome.first_response_ms + setup_ms
            )
        status = SessionStatus.FAILED if outcome.end_reason == "error" else SessionStatus.COMPLETED
        await self._finish(setup, status, outcome.end_reason, outcome.error, outcome)
        return outcome

    def _observers(self, setup: CallSetup) -> list[EventObserver]:
        """What watches one call's events: its live events, its metrics and its trace."""
        metrics = CallMetrics(setup.channel, setup.direction)

        def publish(event: CallEvent) -> None:
            self.events.publish(setup.workspace_id, setup.session_id, event)

        observers: list[EventObserver] = [publish, metrics.observe]
        if self.tracing is not None:
            observers.append(self.tracing.call(setup.session_id).observe)
        return observers

    async def _mark_in_progress(
        self, session_id: str, call_sid: str | None, stream_sid: str | None
    ) -> None:
        record = records.started(
            session_id,
            at=utcnow(),
            owner=self.process_id,
            call_sid=call_sid,
            stream_sid=stream_sid,
        )
        await self.ledger.write([record])

    async def _finish(
        self,
        setup: CallSetup,
        status: SessionStatus,
        end_reason: str,
        error: str | None,
        outcome: CallOutcome | None,
    ) -> None:
        first_response_ms = None if outcome is None else outcome.first_response_ms
        webhook_url = setup.spec.webhook_url
        analysis = setup.spec.analysis
        record = records.finished(
            setup.session_id,
            status=status,
            end_reason=end_reason,
            error=error,
            at=utcnow(),
            first_response_ms=first_response_ms,
            webhook_url=None if webhook_url is None else str(webhook_url),
            # Queued with the final status, in one transaction: a finished session never
            # misses its analysis, whichever process runs it.
            analysis=None
            if analysis is None
            else analysis.model_copy(update={"llm": analysis.llm or setup.spec.llm}),
            language=setup.spec.language,
        )
        try:
            await self.ledger.write([record])
        except RuntimeError:
            logger.error("session %s: ended after shutdown, not finalized", setup.session_id)
            return
        if analysis is not None and self.on_analysis_queued is not None:
            self.on_analysis_queued()

    async def drain(self, timeout_s: float, message: str) -> int:
        """Stop taking calls and let live ones finish for up to `timeout_s`; then say
        `message` to each remaining caller and hang up (`server_shutdown`). Returns how many
        calls had to be ended that way."""
        self.draining.set()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        if self._calls:
            logger.warning(
                "draining: %d live calls may go on for up to %.0f s", len(self._calls), timeout_s
            )
        # Re-read each time: a stream answered just before the drain may join it.
        while self._calls and (left := deadline - loop.time()) > 0:
            await asyncio.wait(list(self._calls), timeout=left, return_when=asyncio.FIRST_COMPLETED)
        remaining = list(self._calls)
        if not remaining:
            return 0
        logger.warning("drain timeout: ending %d live calls", len(remaining))
        endings = [
            asyncio.create_task(call.say_then_hang_up(message, SHUTDOWN_REASON))
            for call in self.live.calls()
        ]
        await asyncio.wait(remaining, timeout=_GOODBYE_S)
        await asyncio.gather(*endings, return_exceptions=True)
        if self._calls:
            await self.abort()
        return len(remaining)

    async def abort(self) -> None:
        """End every live call now (`failed/server_shutdown`, transcript kept)."""
        self.draining.set()
        self._aborted = True
        calls = list(self._calls)
        for task in calls:
            task.cancel()
        if calls:
            await asyncio.wait(calls, timeout=_ABORT_S)

    async def aclose(self) -> None:
        await self._lag.aclose()
        await self.control.aclose()
        await self.warmer.aclose()
        await self.recordings.aclose()
        if self._sweeper is not None:
            self._sweeper.cancel()
            await asyncio.gather(self._sweeper, return_exceptions=True)
        await self.abort()
        await self.ledger.aclose()
        await self.heartbeat.aclose()
        await self.webhooks.aclose()
        await self.events.aclose()
        if self.tracing is not None:
            await asyncio.to_thread(self.tracing.shutdown)
        if self.redis is not None:
            await self.redis.aclose()
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
