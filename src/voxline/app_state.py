"""What one server process holds for its lifetime, built at start-up and closed at shutdown."""

from __future__ import annotations

import asyncio
import logging
import sys
from dataclasses import dataclass
from typing import TextIO

from voxline.analysis.worker import AnalysisPolicy, AnalysisWorker
from voxline.calls.engine import CallEngine
from voxline.config import Settings
from voxline.loop_lag import LoopLagMonitor
from voxline.providers.base import ProviderError
from voxline.store.agents import all_agent_specs
from voxline.store.database import Database
from voxline.store.migrate import upgrade
from voxline.store.seed import DemoSeed, seed_demo

logger = logging.getLogger(__name__)


@dataclass
class AppState:
    settings: Settings
    database: Database
    secret: bytes
    """Signs relay tokens; shared by every process of a deployment."""
    engine: CallEngine
    lag_monitor: LoopLagMonitor | None = None
    """Samples event-loop lag when `settings.lag_monitor` is on."""
    analysis: AnalysisWorker | None = None
    """Runs post-call analyses unless `settings.analysis_workers` is 0."""

    @classmethod
    async def start(cls, settings: Settings, *, console: TextIO | None = None) -> AppState:
        """Open the database, migrate it to head and, on first start, seed the demo (its key
        is printed on `console`, standard output by default)."""
        database = Database(settings.resolved_database_url())
        try:
            await upgrade(database)
            if settings.seed_demo_agent:
                seed = await seed_demo(database, settings.data_dir)
                if seed is not None:
                    _announce(seed, console or sys.stdout)
        except BaseException:
            await database.dispose()
            raise
        engine = CallEngine(settings, database)
        # Registered before any call claims ownership, so no sweep takes this process for dead.
        await engine.heartbeat.beat()
        engine.start_sweeping()
        await engine.start_live()
        if settings.preload_models:
            await _preload(engine, database)
        monitor = LoopLagMonitor() if settings.lag_monitor else None
        if monitor is not None:
            monitor.start()
        analysis = _analysis_worker(settings, engine)
        return cls(
            settings=settings,
            database=database,
            secret=settings.resolved_secret(),
            engine=engine,
            lag_monitor=monitor,
            analysis=analysis,
        )

    @property
    def draining(self) -> asyncio.Event:
        """Set once the process is shutting down: take no new calls or outbound tasks."""
        return self.engine.draining

    async def aclose(self) -> None:
        if self.lag_monitor is not None:
            await self.lag_monitor.aclose()
        if self.analysis is not None:
            await self.analysis.aclose()
        await self.engine.aclose()
        await self.database.dispose()


def _analysis_worker(settings: Settings, engine: CallEngine) -> AnalysisWorker | None:
    """The process's analysis worker, started and woken by the engine; None when off."""
    if settings.analysis_workers == 0:
        return None
    policy = AnalysisPolicy(
        workers=settings.analysis_workers,
        timeout_s=settings.analysis_timeout_s,
        lease_s=settings.analysis_lease_s,
        max_attempts=settings.analysis_max_attempts,
        memory_budget_chars=settings.memory_budget_chars,
    )
    worker = AnalysisWorker(
        engine.database, engine.registry, engine.credentials, engine.webhooks, policy
    )
    engine.on_analysis_queued = worker.wake
    worker.start()
    return worker


def _announce(seed: DemoSeed, console: TextIO) -> None:
    # Straight to the console, never through logging: the key is a secret, shown this once.
    console.write(
        "\n"
        "  voxline: created the demo workspace and agent.\n"
        f"  Demo agent:   {seed.agent_id}\n"
        f"  Demo API key: {seed.api_key}\n"
        f"  (shown once; also saved to {seed.key_file})\n"
        "\n"
    )
    console.flush()


async def _preload(engine: CallEngine, database: Database) -> None:
    """Load and warm the models of every stored agent, so the first call is as fast as the
    tenth, then cache each agent's greeting in the background (`AgentWarmer`). A model that
    cannot load is logged, not fatal: its agents' calls fail clearly."""
    async with database.transaction() as db:
        specs = await all_agent_specs(db)
    seen: set[str] = set()
    for spec in specs:
        slots = [slot.spec.model_dump_json() for slot in spec.provider_slots()]
        key = f"{spec.language}:{spec.turn_taking.vad}:{slots}"
        if key in seen:
            continue
        seen.add(key)
        try:
            await engine.warm_up(spec)
        except ProviderError as exc:
            logger.error("could not preload the models of agent %r: %s", spec.name, exc)
    for spec in specs:
        engine.warmer.schedule(spec)
