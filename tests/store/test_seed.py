from __future__ import annotations

import stat
from pathlib import Path

from voxline.store.agents import agent_spec, get_agent
from voxline.store.api_keys import authenticate
from voxline.store.database import Database
from voxline.store.migrate import upgrade
from voxline.store.seed import seed_demo


async def test_first_seed_creates_workspace_key_and_demo_agent(
    empty_database_url: str, tmp_path: Path
) -> None:
    database = Database(empty_database_url)
    try:
        await upgrade(database)
        seed = await seed_demo(database, tmp_path)
        assert seed is not None
        async with database.transaction() as db:
            key = await authenticate(db, seed.api_key)
            agent = await get_agent(db, seed.workspace_id, seed.agent_id)
        assert key.workspace_id == seed.workspace_id
        spec = agent_spec(agent)
        assert spec.name == "Demo receptionist"
        assert (spec.stt.provider, spec.llm.provider, spec.tts.provider) == (
            "whisper",
            "llama_cpp",
            "piper",
        )
        assert spec.first_message
    finally:
        await database.dispose()


async def test_key_file_holds_the_key_and_is_private(
    empty_database_url: str, tmp_path: Path
) -> None:
    database = Database(empty_database_url)
    try:
        await upgrade(database)
        seed = await seed_demo(database, tmp_path)
    finally:
        await database.dispose()
    assert seed is not None
    assert seed.key_file.read_text().strip() == seed.api_key
    assert stat.S_IMODE(seed.key_file.stat().st_mode) == 0o600


async def test_second_seed_does_nothing(empty_database_url: str, tmp_path: Path) -> None:
    database = Database(empty_database_url)
    try:
        await upgrade(database)
        first = await seed_demo(database, tmp_path)
        second = await seed_demo(database, tmp_path / "again")
    finally:
        await database.dispose()
    assert first is not None
    assert second is None
    assert not (tmp_path / "again").exists()
