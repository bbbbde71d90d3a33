"""The tables, as SQLAlchemy 2 declarative models. Alembic migrations create them.

Sessions are a permanent log: they keep the agent and instance IDs they ran with, which are
deliberately not foreign keys so that deleting an agent or instance leaves call history intact.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from voxline.store.types import UtcDateTime, json_type, utcnow

_NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

_ID = String(40)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=_NAMING)


class Workspace(Base):
    __tablename__ = "workspaces"

    id: Mapped[str] = mapped_column(_ID, primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    webhook_secret: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)


class ApiKey(Base):
    __tablename__ = "api_keys"

    id: Mapped[str] = mapped_column(_ID, primary_key=True)
    workspace_id: Mapped[str] = mapped_column(
        _ID, ForeignKey("workspaces.id", ondelete="CASCADE"), index=True
    )
    prefix: Mapped[str] = mapped_column(String(20))
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    last_used_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UtcDateTime)


class AgentRow(Base):
    __tablename__ = "agents"
    __table_args__ = (Index("ix_agents_workspace_id_id", "workspace_id", "id"),)

    id: Mapped[str] = mapped_column(_ID, primary_key=True)
    workspace_id: Mapped[str] = mapped_column(_ID, ForeignKey("workspaces.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(200))
    spec: Mapped[dict[str, Any]] = mapped_column(json_type())
    """`AgentSpec.model_dump(mode="json")`: snake_case field names."""
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)


class InstanceRow(Base):
    __tablename__ = "instances"
    __table_args__ = (
        UniqueConstraint("agent_id", "external_ref"),
        Index("ix_instances_workspace_id_id", "workspace_id", "id"),
    )

    id: Mapped[str] = mapped_column(_ID, primary_key=True)
    workspace_id: Mapped[str] = mapped_column(_ID, ForeignKey("workspaces.id", ondelete="CASCADE"))
    # RESTRICT: an agent with instances cannot be deleted (the API answers 409). No separate
    # index: the unique (agent_id, external_ref) constraint leads with agent_id.
    agent_id: Mapped[str] = mapped_column(_ID, ForeignKey("agents.id", ondelete="RESTRICT"))
    external_ref: Mapped[str | None] = mapped_column(String(200))
    variables: Mapped[dict[str, str]] = mapped_column(json_type())
    memory: Mapped[list[dict[str, Any]]] = mapped_column(json_type())
    """Notes from earlier calls: `[{"id": "note_...", "text": str, "created_at": ISO 8601 UTC}]`."""
    memory_enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    """Off: calls neither read the notes nor add to them (the API still can)."""
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)


class SessionRow(Base):
    __tablename__ = "sessions"
    __table_args__ = (
        CheckConstraint("channel IN ('phone', 'web')", name="channel"),
        CheckConstraint("direction IN ('inbound', 'outbound')", name="direction"),
        CheckConstraint(
            "status IN ('pending', 'in_progress', 'completed', 'failed')", name="status"
        ),
        Index("ix_sessions_workspace_id_id", "workspace_id", "id"),
    )

    id: Mapped[str] = mapped_column(_ID, primary_key=True)
    workspace_id: Mapped[str] = mapped_column(_ID, ForeignKey("workspaces.id", ondelete="CASCADE"))
    agent_id: Mapped[str] = mapped_column(_ID, index=True)
    instance_id: Mapped[str | None] = mapped_column(_ID, index=True)
    channel: Mapped[str] = mapped_column(String(10))
    direction: Mapped[str] = mapped_column(String(10))
    status: Mapped[str] = mapped_column(String(20))
    from_number: Mapped[str | None] = mapped_column(String(40))
    to_number: Mapped[str | None] = mapped_column(String(40))
    call_sid: Mapped[str | None] = mapped_column(String(64), index=True)
    stream_sid: Mapped[str | None] = mapped_column(String(64))
    end_reason: Mapped[str | None] = mapped_column(String(100))
    error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    ended_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    first_response_ms: Mapped[float | None] = mapped_column(Float)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    owner_process_id: Mapped[str | None] = mapped_column(_ID, index=True)
    """The server process running the call (`process_heartbeats.id`), once it started."""


class TranscriptItemRow(Base):
    """Mirrors `voxline.runtime.recording.TranscriptItem`; upserted by `seq`."""

    __tablename__ = "transcript_items"

    session_id: Mapped[str] = mapped_column(
        _ID, ForeignKey("sessions.id", ondelete="CASCADE"), primary_key=True
    )
    seq: Mapped[int] = mapped_column(Integer, primary_key=True)
    role: Mapped[str] = mapped_column(String(20))
    text: Mapped[str] = mapped_column(Text)
    at_ms: Mapped[int] = mapped_column(Integer)
    interrupted: Mapped[bool] = mapped_column(Boolean)
    heard_text: Mapped[str | None] = mapped_column(Text)
    data: Mapped[dict[str, Any]] = mapped_column(json_type())


class TurnMetricsRow(Base):
    """Mirrors `voxline.runtime.recording.TurnMetrics`; upserted by `turn`."""

    __tablename__ = "turn_metrics"

    session_id: Mapped[str] = mapped_column(
        _ID, ForeignKey("sessions.id", ondelete="CASCADE"), primary_key=True
    )
    turn: Mapped[int] = mapped_column(Integer, primary_key=True)
    end_of_turn_wait_ms: Mapped[float | None] = mapped_column(Float)
    stt_ms: Mapped[float | None] = mapped_column(Float)
    llm_first_token_ms: Mapped[float | None] = mapped_column(Float)
    first_clause_ms: Mapped[float | None] = mapped_column(Float)
    tts_first_byte_ms: Mapped[float | None] = mapped_column(Float)
    turn_latency_ms: Mapped[float | None] = mapped_column(Float)
    overhead_ms: Mapped[float | None] = mapped_column(Float)
    interrupted: Mapped[bool] = mapped_column(Boolean)


class RelayTokenUse(Base):
    """One row per relay token ever accepted, until it expires: the single-use check."""

    __tablename__ = "relay_token_uses"

    token_id: Mapped[str] = mapped_column(String(100), primary_key=True)
    expires_at: Mapped[datetime] = mapped_column(UtcDateTime, index=True)


class IdempotencyKeyRow(Base):
    """A POST's `Idempotency-Key`: reserved while in flight (no status), then its response."""

    __tablename__ = "idempotency_keys"

    workspace_id: Mapped[str] = mapped_column(
        _ID, ForeignKey("workspaces.id", ondelete="CASCADE"), primary_key=True
    )
    key: Mapped[str] = mapped_column(String(255), primary_key=True)
    request_hash: Mapped[str] = mapped_column(String(64))
    response: Mapped[Any] = mapped_column(json_type(), nullable=True)
    status_code: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)


class WorkspaceSecret(Base):
    """A workspace's named secret (a provider API key), sealed by `security.secret_box`."""

    __tablename__ = "workspace_secrets"

    workspace_id: Mapped[str] = mapped_column(
        _ID, ForeignKey("workspaces.id", ondelete="CASCADE"), primary_key=True
    )
    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    ciphertext: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)


class SessionAnalysisRow(Base):
    """A session's post-call analysis: the job (claimed under a lease) and its result."""

    __tablename__ = "session_analyses"
    __table_args__ = (
        CheckConstraint("status IN ('pending', 'running', 'done', 'failed')", name="status"),
        Index("ix_session_analyses_status_available_at", "status", "available_at"),
    )

    session_id: Mapped[str] = mapped_column(
        _ID, ForeignKey("sessions.id", ondelete="CASCADE"), primary_key=True
    )
    workspace_id: Mapped[str] = mapped_column(_ID, ForeignKey("workspaces.id", ondelete="CASCADE"))
    instance_id: Mapped[str | None] = mapped_column(_ID)
    spec: Mapped[dict[str, Any]] = mapped_column(json_type())
    """`CallAnalysis.model_dump(mode="json")` as the call ran, its `llm` always set."""
    language: Mapped[str] = mapped_column(String(20))
    webhook_url: Mapped[str | None] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(20))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    available_at: Mapped[datetime] = mapped_column(UtcDateTime)
    lease_expires_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    claim: Mapped[str | None] = mapped_column(String(40))
    summary: Mapped[str | None] = mapped_column(Text)
    data: Mapped[Any] = mapped_column(json_type(), nullable=True)
    success: Mapped[bool | None] = mapped_column(Boolean)
    error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    completed_at: Mapped[datetime | None] = mapped_column(UtcDateTime)


class ProcessHeartbeat(Base):
    """A server process, alive while `beat_at` is recent; owner of its live sessions."""

    __tablename__ = "process_heartbeats"

    id: Mapped[str] = mapped_column(_ID, primary_key=True)
    host: Mapped[str] = mapped_column(String(255))
    pid: Mapped[int] = mapped_column(Integer)
    started_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    beat_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow, index=True)
