"""Process heartbeats, and the process that owns each live session (crash recovery).

Revision ID: 0004_process_heartbeats
Revises: 0002
Create Date: 2026-12-01
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004_process_heartbeats"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "process_heartbeats",
        sa.Column("id", sa.String(40), nullable=False),
        sa.Column("host", sa.String(255), nullable=False),
        sa.Column("pid", sa.Integer(), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("beat_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_process_heartbeats")),
    )
    op.create_index(
        op.f("ix_process_heartbeats_beat_at"), "process_heartbeats", ["beat_at"], unique=False
    )
    op.add_column("sessions", sa.Column("owner_process_id", sa.String(40), nullable=True))
    op.create_index(
        op.f("ix_sessions_owner_process_id"), "sessions", ["owner_process_id"], unique=False
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_sessions_owner_process_id"), table_name="sessions")
    with op.batch_alter_table("sessions") as batch:
        batch.drop_column("owner_process_id")
    op.drop_index(op.f("ix_process_heartbeats_beat_at"), table_name="process_heartbeats")
    op.drop_table("process_heartbeats")
