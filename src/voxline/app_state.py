"""What one server process holds for its lifetime, built at start-up and closed at shutdown."""

from __future__ import annotations

import logging
import sys
from dataclasses import dataclass
from typing import TextIO

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
        engine.start_sweeping()
        if settings.preload_models:
            await _preload(engine, database)
        monitor = LoopLagMonitor() if settings.lag_monitor else None
        if monitor is not None:
            monitor.start()
        return cls(
            settings=settings,
            database=database,
            secret=settings.resolved_secret(),
            engine=engine,
            lag_monitor=monitor,
        )

    async def aclose(self) -> None:
        if self.lag_monitor is not None:
            await self.lag_monitor.aclose()
        await self.engine.aclose()
        await self.database.dispose()


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
    async with database.transaction() as session:
        specs = await all_agent_specs(session)
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
