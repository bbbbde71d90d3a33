"""Post-call analysis: the `session_analyses` jobs and results; instances get stable memory
note IDs and a `memory_enabled` switch.

Revision ID: 0005_analysis
Revises: 0002
Create Date: 2026-12-01
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0005_analysis"
down_revision: str | None = "0004_process_heartbeats"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_ALPHABET = "0123456789abcdefghjkmnpqrstvwxyz"


def _json() -> sa.types.TypeEngine[Any]:
    return sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def _note_id() -> str:
    # voxline.ids.new_id("note"), copied so the migration never changes with the code.
    value = (time.time_ns() // 1_000_000) << 80 | secrets.randbits(80)
    chars = []
    for _ in range(26):
        chars.append(_ALPHABET[value & 31])
        value >>= 5
    return "note_" + "".join(reversed(chars))


def upgrade() -> None:
    with op.batch_alter_table("instances") as batch:
        batch.add_column(
            sa.Column("memory_enabled", sa.Boolean(), nullable=False, server_default=sa.true())
        )
    instances = sa.table("instances", sa.column("id", sa.String), sa.column("memory", _json()))
    connection = op.get_bind()
    for instance_id, memory in connection.execute(sa.select(instances.c.id, instances.c.memory)):
        if memory and any("id" not in note for note in memory):
            notes = [{"id": note.get("id") or _note_id(), **note} for note in memory]
            connection.execute(
                instances.update().where(instances.c.id == instance_id).values(memory=notes)
            )
    op.create_table(
        "session_analyses",
        sa.Column("session_id", sa.String(40), nullable=False),
        sa.Column("workspace_id", sa.String(40), nullable=False),
        sa.Column("instance_id", sa.String(40), nullable=True),
        sa.Column("spec", _json(), nullable=False),
        sa.Column("language", sa.String(20), nullable=False),
        sa.Column("webhook_url", sa.Text(), nullable=True),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("available_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("lease_expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("claim", sa.String(40), nullable=True),
        sa.Column("summary", sa.Text(), nullable=True),
        sa.Column("data", _json(), nullable=True),
        sa.Column("success", sa.Boolean(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("completed_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "status IN ('pending', 'running', 'done', 'failed')",
            name=op.f("ck_session_analyses_status"),
        ),
        sa.ForeignKeyConstraint(
            ["session_id"],
            ["sessions.id"],
            name=op.f("fk_session_analyses_session_id_sessions"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["workspace_id"],
            ["workspaces.id"],
            name=op.f("fk_session_analyses_workspace_id_workspaces"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("session_id", name=op.f("pk_session_analyses")),
    )
    op.create_index(
        "ix_session_analyses_status_available_at",
        "session_analyses",
        ["status", "available_at"],
    )


def downgrade() -> None:
    op.drop_index("ix_session_analyses_status_available_at", table_name="session_analyses")
    op.drop_table("session_analyses")
    with op.batch_alter_table("instances") as batch:
        batch.drop_column("memory_enabled")
