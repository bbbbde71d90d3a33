"""Initial schema: workspaces, keys, agents, instances, sessions and what calls record.

Revision ID: 0001
Revises:
Create Date: 2025-11-23
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _id() -> sa.String:
    return sa.String(40)


def _ts() -> sa.DateTime:
    return sa.DateTime(timezone=True)


def _json() -> sa.types.TypeEngine[Any]:
    return sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def upgrade() -> None:
    op.create_table(
        "workspaces",
        sa.Column("id", _id(), nullable=False),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("webhook_secret", sa.String(100), nullable=False),
        sa.Column("created_at", _ts(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_workspaces")),
        sa.UniqueConstraint("name", name=op.f("uq_workspaces_name")),
    )
    op.create_table(
        "api_keys",
        sa.Column("id", _id(), nullable=False),
        sa.Column("workspace_id", _id(), nullable=False),
        sa.Column("prefix", sa.String(20), nullable=False),
        sa.Column("key_hash", sa.String(64), nullable=False),
        sa.Column("created_at", _ts(), nullable=False),
        sa.Column("last_used_at", _ts(), nullable=True),
        sa.Column("revoked_at", _ts(), nullable=True),
        sa.ForeignKeyConstraint(
            ["workspace_id"],
            ["workspaces.id"],
            name=op.f("fk_api_keys_workspace_id_workspaces"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_api_keys")),
        sa.UniqueConstraint("key_hash", name=op.f("uq_api_keys_key_hash")),
    )
    op.create_index(op.f("ix_api_keys_workspace_id"), "api_keys", ["workspace_id"])
    op.create_table(
        "agents",
        sa.Column("id", _id(), nullable=False),
        sa.Column("workspace_id", _id(), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("spec", _json(), nullable=False),
        sa.Column("created_at", _ts(), nullable=False),
        sa.Column("updated_at", _ts(), nullable=False),
        sa.ForeignKeyConstraint(
            ["workspace_id"],
            ["workspaces.id"],
            name=op.f("fk_agents_workspace_id_workspaces"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_agents")),
    )
    op.create_index("ix_agents_workspace_id_id", "agents", ["workspace_id", "id"])
    op.create_table(
        "instances",
        sa.Column("id", _id(), nullable=False),
        sa.Column("workspace_id", _id(), nullable=False),
        sa.Column("agent_id", _id(), nullable=False),
        sa.Column("external_ref", sa.String(200), nullable=True),
        sa.Column("variables", _json(), nullable=False),
        sa.Column("memory", _json(), nullable=False),
        sa.Column("created_at", _ts(), nullable=False),
        sa.Column("updated_at", _ts(), nullable=False),
        sa.ForeignKeyConstraint(
            ["workspace_id"],
            ["workspaces.id"],
            name=op.f("fk_instances_workspace_id_workspaces"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["agent_id"],
            ["agents.id"],
            name=op.f("fk_instances_agent_id_agents"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_instances")),
        sa.UniqueConstraint(
            "agent_id", "external_ref", name=op.f("uq_instances_agent_id_external_ref")
        ),
    )
    op.create_index("ix_instances_workspace_id_id", "instances", ["workspace_id", "id"])
    op.create_table(
        "sessions",
        sa.Column("id", _id(), nullable=False),
        sa.Column("workspace_id", _id(), nullable=False),
        sa.Column("agent_id", _id(), nullable=False),
        sa.Column("instance_id", _id(), nullable=True),
        sa.Column("channel", sa.String(10), nullable=False),
        sa.Column("direction", sa.String(10), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("from_number", sa.String(40), nullable=True),
        sa.Column("to_number", sa.String(40), nullable=True),
        sa.Column("call_sid", sa.String(64), nullable=True),
        sa.Column("stream_sid", sa.String(64), nullable=True),
        sa.Column("end_reason", sa.String(100), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("created_at", _ts(), nullable=False),
        sa.Column("started_at", _ts(), nullable=True),
        sa.Column("ended_at", _ts(), nullable=True),
        sa.Column("first_response_ms", sa.Float(), nullable=True),
        sa.Column("updated_at", _ts(), nullable=False),
        sa.CheckConstraint("channel IN ('phone', 'web')", name=op.f("ck_sessions_channel")),
        sa.CheckConstraint(
            "direction IN ('inbound', 'outbound')", name=op.f("ck_sessions_direction")
        ),
        sa.CheckConstraint(
            "status IN ('pending', 'in_progress', 'completed', 'failed')",
            name=op.f("ck_sessions_status"),
        ),
        sa.ForeignKeyConstraint(
            ["workspace_id"],
            ["workspaces.id"],
            name=op.f("fk_sessions_workspace_id_workspaces"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sessions")),
    )
    op.create_index("ix_sessions_workspace_id_id", "sessions", ["workspace_id", "id"])
    op.create_index(op.f("ix_sessions_agent_id"), "sessions", ["agent_id"])
    op.create_index(op.f("ix_sessions_instance_id"), "sessions", ["instance_id"])
    op.create_index(op.f("ix_sessions_call_sid"), "sessions", ["call_sid"])
    op.create_table(
        "transcript_items",
        sa.Column("session_id", _id(), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("role", sa.String(20), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("at_ms", sa.Integer(), nullable=False),
        sa.Column("interrupted", sa.Boolean(), nullable=False),
        sa.Column("heard_text", sa.Text(), nullable=True),
        sa.Column("data", _json(), nullable=False),
        sa.ForeignKeyConstraint(
            ["session_id"],
            ["sessions.id"],
            name=op.f("fk_transcript_items_session_id_sessions"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("session_id", "seq", name=op.f("pk_transcript_items")),
    )
    op.create_table(
        "turn_metrics",
        sa.Column("session_id", _id(), nullable=False),
        sa.Column("turn", sa.Integer(), nullable=False),
        sa.Column("end_of_turn_wait_ms", sa.Float(), nullable=True),
        sa.Column("stt_ms", sa.Float(), nullable=True),
        sa.Column("llm_first_token_ms", sa.Float(), nullable=True),
        sa.Column("first_clause_ms", sa.Float(), nullable=True),
        sa.Column("tts_first_byte_ms", sa.Float(), nullable=True),
        sa.Column("turn_latency_ms", sa.Float(), nullable=True),
        sa.Column("overhead_ms", sa.Float(), nullable=True),
        sa.Column("interrupted", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(
            ["session_id"],
            ["sessions.id"],
            name=op.f("fk_turn_metrics_session_id_sessions"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("session_id", "turn", name=op.f("pk_turn_metrics")),
    )
    op.create_table(
        "relay_token_uses",
        sa.Column("token_id", sa.String(100), nullable=False),
        sa.Column("expires_at", _ts(), nullable=False),
        sa.PrimaryKeyConstraint("token_id", name=op.f("pk_relay_token_uses")),
    )
    op.create_index(op.f("ix_relay_token_uses_expires_at"), "relay_token_uses", ["expires_at"])
    op.create_table(
        "idempotency_keys",
        sa.Column("workspace_id", _id(), nullable=False),
        sa.Column("key", sa.String(255), nullable=False),
        sa.Column("request_hash", sa.String(64), nullable=False),
        sa.Column("response", _json(), nullable=True),
        sa.Column("status_code", sa.Integer(), nullable=True),
        sa.Column("created_at", _ts(), nullable=False),
        sa.ForeignKeyConstraint(
            ["workspace_id"],
            ["workspaces.id"],
            name=op.f("fk_idempotency_keys_workspace_id_workspaces"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("workspace_id", "key", name=op.f("pk_idempotency_keys")),
    )


def downgrade() -> None:
    for table in (
        "idempotency_keys",
        "relay_token_uses",
        "turn_metrics",
        "transcript_items",
        "sessions",
        "instances",
        "agents",
        "api_keys",
        "workspaces",
    ):
        op.drop_table(table)
