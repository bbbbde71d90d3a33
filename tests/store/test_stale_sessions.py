from datetime import timedelta

from voxline.store import sessions as repo
from voxline.store.database import Database
from voxline.store.session_state import Channel, Direction
from voxline.store.types import utcnow
from voxline.store.workspaces import create_workspace


async def test_only_old_pending_sessions_are_failed_as_never_connected(database: Database) -> None:
    async with database.transaction() as db:
        workspace = await create_workspace(db, "stale")
        old = await repo.create_session(
            db,
            workspace_id=workspace.id,
            agent_id="agent_x",
            channel=Channel.PHONE,
            direction=Direction.INBOUND,
        )
        live = await repo.create_session(
            db,
            workspace_id=workspace.id,
            agent_id="agent_x",
            channel=Channel.PHONE,
            direction=Direction.INBOUND,
        )
        await repo.mark_in_progress(db, live.id)
        old.created_at = utcnow() - timedelta(hours=1)
        live.created_at = utcnow() - timedelta(hours=1)

    async with database.transaction() as db:
        failed = await repo.fail_stale_pending(db, utcnow() - timedelta(minutes=10))

    # Other tests' sessions share the database: only these two are this test's.
    assert old.id in failed
    assert live.id not in failed
    async with database.transaction() as db:
        assert (await repo.get_session(db, old.id)).end_reason == "never_connected"
        assert (await repo.get_session(db, live.id)).status == "in_progress"
