"""Outbound calls: batches, tasks, their attempts, applied Twilio callbacks, the shared
call pace, the webhook outbox, and each workspace's cap on live outbound calls.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-01
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_TASK_STATUSES = (
    "'waiting', 'dialing', 'ringing', 'in_progress', 'completed', 'busy', 'no_answer', "
    "'failed', 'voicemail', 'canceled'"
)


def _id() -> sa.String:
    return sa.String(40)


def _ts() -> sa.DateTime:
    return sa.DateTime(timezone=True)


def _json() -> sa.types.TypeEngine[Any]:
    return sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def _workspace_fk(table: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        ["workspace_id"],
        ["workspaces.id"],
        name=op.f(f"fk_{table}_workspace_id_workspaces"),
        ondelete="CASCADE",
    )


def upgrade() -> None:
    with op.batch_alter_table("workspaces") as batch:
        batch.add_column(
            sa.Column("max_concurrent_calls", sa.Integer(), nullable=False, server_default="10")
        )
    op.create_table(
        "batches",
        sa.Column("id", _id(), nullable=False),
        sa.Column("workspace_id", _id(), nullable=False),
        sa.Column("agent_id", _id(), nullable=False),
        sa.Column("from_number", sa.String(40), nullable=False),
        sa.Column("max_concurrency", sa.Integer(), nullable=True),
        sa.Column("metadata", _json(), nullable=False),
        sa.Column("created_at", _ts(), nullable=False),
        sa.Column("canceled_at", _ts(), nullable=True),
        _workspace_fk("batches"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_batches")),
    )
    op.create_index("ix_batches_workspace_id_id", "batches", ["workspace_id", "id"])
    op.create_table(
        "tasks",
        sa.Column("id", _id(), nullable=False),
        sa.Column("workspace_id", _id(), nullable=False),
        sa.Column("agent_id", _id(), nullable=False),
        sa.Column("instance_id", _id(), nullable=True),
        sa.Column("batch_id", _id(), nullable=True),
        sa.Column("to_number", sa.String(40), nullable=False),
        sa.Column("from_number", sa.String(40), nullable=False),
        sa.Column("variables", _json(), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("scheduled_at", _ts(), nullable=False),
        sa.Column("next_attempt_at", _ts(), nullable=True),
        sa.Column("calling_window", _json(), nullable=True),
        sa.Column("max_attempts", sa.Integer(), nullable=False),
        sa.Column("retry_on", _json(), nullable=False),
        sa.Column("backoff_seconds", sa.Integer(), nullable=False),
        sa.Column("machine_detection", sa.String(20), nullable=False),
        sa.Column("voicemail_message", sa.Text(), nullable=True),
        sa.Column("ring_timeout_seconds", sa.Integer(), nullable=False),
        sa.Column("metadata", _json(), nullable=False),
        sa.Column("attempt_count", sa.Integer(), nullable=False),
        sa.Column("throttled", sa.Integer(), nullable=False),
        sa.Column("ended_reason", sa.String(300), nullable=True),
        sa.Column("ended_at", _ts(), nullable=True),
        sa.Column("cancel_requested", sa.Boolean(), nullable=False),
        sa.Column("created_at", _ts(), nullable=False),
        sa.Column("updated_at", _ts(), nullable=False),
        sa.CheckConstraint(f"status IN ({_TASK_STATUSES})", name=op.f("ck_tasks_status")),
        _workspace_fk("tasks"),
        sa.ForeignKeyConstraint(
            ["batch_id"], ["batches.id"], name=op.f("fk_tasks_batch_id_batches"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_tasks")),
    )
    op.create_index("ix_tasks_workspace_id_id", "tasks", ["workspace_id", "id"])
    op.create_index("ix_tasks_status_next_attempt_at", "tasks", ["status", "next_attempt_at"])
    op.create_index(op.f("ix_tasks_agent_id"), "tasks", ["agent_id"])
    op.create_index(op.f("ix_tasks_batch_id"), "tasks", ["batch_id"])
    op.create_table(
        "task_attempts",
        sa.Column("task_id", _id(), nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("workspace_id", _id(), nullable=False),
        sa.Column("batch_id", _id(), nullable=True),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("call_sid", sa.String(64), nullable=True),
        sa.Column("answered_by", sa.String(40), nullable=True),
        sa.Column("amd_pending", sa.Boolean(), nullable=False),
        sa.Column("sip_response_code", sa.Integer(), nullable=True),
        sa.Column("session_id", _id(), nullable=True),
        sa.Column("error_code", sa.Integer(), nullable=True),
        sa.Column("error_message", sa.Text(), nullable=True),
        sa.Column("lease_owner", sa.String(100), nullable=True),
        sa.Column("lease_expires_at", _ts(), nullable=True),
        sa.Column("started_at", _ts(), nullable=False),
        sa.Column("answered_at", _ts(), nullable=True),
        sa.Column("ended_at", _ts(), nullable=True),
        sa.Column("duration_seconds", sa.Integer(), nullable=True),
        sa.Column("updated_at", _ts(), nullable=False),
        sa.ForeignKeyConstraint(
            ["task_id"],
            ["tasks.id"],
            name=op.f("fk_task_attempts_task_id_tasks"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("task_id", "number", name=op.f("pk_task_attempts")),
        sa.UniqueConstraint("call_sid", name=op.f("uq_task_attempts_call_sid")),
    )
    op.create_index(
        "ix_task_attempts_status_workspace_id", "task_attempts", ["status", "workspace_id"]
    )
    op.create_index(
        "ix_task_attempts_status_lease_expires_at", "task_attempts", ["status", "lease_expires_at"]
    )
    op.create_index(op.f("ix_task_attempts_batch_id"), "task_attempts", ["batch_id"])
    op.create_table(
        "task_callbacks",
        sa.Column("call_sid", sa.String(64), nullable=False),
        sa.Column("event", sa.String(40), nullable=False),
        sa.Column("received_at", _ts(), nullable=False),
        sa.PrimaryKeyConstraint("call_sid", "event", name=op.f("pk_task_callbacks")),
    )
    op.create_table(
        "dispatch_pacing",
        sa.Column("account", sa.String(64), nullable=False),
        sa.Column("next_slot_at", _ts(), nullable=False),
        sa.PrimaryKeyConstraint("account", name=op.f("pk_dispatch_pacing")),
    )
    op.create_table(
        "webhook_outbox",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("workspace_id", _id(), nullable=False),
        sa.Column("url", sa.Text(), nullable=False),
        sa.Column("event_type", sa.String(40), nullable=False),
        sa.Column("subject_id", _id(), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", _ts(), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("created_at", _ts(), nullable=False),
        sa.CheckConstraint(
            "status IN ('pending', 'delivered', 'failed')", name=op.f("ck_webhook_outbox_status")
        ),
        _workspace_fk("webhook_outbox"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_webhook_outbox")),
    )
    op.create_index(
        "ix_webhook_outbox_status_next_attempt_at", "webhook_outbox", ["status", "next_attempt_at"]
    )


def downgrade() -> None:
    op.drop_table("webhook_outbox")
    op.drop_table("dispatch_pacing")
    op.drop_table("task_callbacks")
    op.drop_table("task_attempts")
    op.drop_table("tasks")
    op.drop_table("batches")
    with op.batch_alter_table("workspaces") as batch:
        batch.drop_column("max_concurrent_calls")
