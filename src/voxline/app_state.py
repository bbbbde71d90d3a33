"""What one server process holds for its lifetime, built at start-up and closed at shutdown."""

from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import TextIO

from voxline.config import Settings
from voxline.store.database import Database
from voxline.store.migrate import upgrade
from voxline.store.seed import DemoSeed, seed_demo


@dataclass
class AppState:
    settings: Settings
    database: Database

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
        return cls(settings=settings, database=database)

    async def aclose(self) -> None:
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
