"""API keys: created once and shown once, stored only as a SHA-256 hash.

A key is `vx_live_` plus 43 random base62 characters (256 bits), so a plain SHA-256 is the right
hash: there is nothing to brute-force, and lookup by hash is a single indexed query.
"""

from __future__ import annotations

import hashlib
import secrets
import string
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from voxline.ids import new_id
from voxline.store.errors import NotFound, StoreError
from voxline.store.models import ApiKey
from voxline.store.types import utcnow

KEY_PREFIX = "vx_live_"
_SECRET_ALPHABET = string.ascii_letters + string.digits
_SECRET_LENGTH = 43
_DISPLAY_LENGTH = len(KEY_PREFIX) + 4
# Recording every use would turn each authenticated read into a write.
_LAST_USED_RESOLUTION = timedelta(minutes=1)


class AuthenticationFailed(StoreError):
    """The presented key is unknown, malformed or revoked (the message says which)."""


@dataclass(frozen=True, slots=True)
class NewApiKey:
    """A just-created key: `secret` is the only copy of the full key, show it once."""

    record: ApiKey
    secret: str


def hash_key(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


async def create_api_key(db: AsyncSession, workspace_id: str) -> NewApiKey:
    """A new key for the workspace."""
    secret = KEY_PREFIX + "".join(secrets.choice(_SECRET_ALPHABET) for _ in range(_SECRET_LENGTH))
    record = ApiKey(
        id=new_id("key"),
        workspace_id=workspace_id,
        prefix=secret[:_DISPLAY_LENGTH],
        key_hash=hash_key(secret),
    )
    db.add(record)
    await db.flush()
    return NewApiKey(record=record, secret=secret)


async def authenticate(db: AsyncSession, secret: str) -> ApiKey:
    """The live key matching `secret`; raises `AuthenticationFailed` otherwise."""
    if not secret.startswith(KEY_PREFIX) or len(secret) != len(KEY_PREFIX) + _SECRET_LENGTH:
        raise AuthenticationFailed("Invalid API key provided.")
    record = await db.scalar(select(ApiKey).where(ApiKey.key_hash == hash_key(secret)))
    if record is None:
        raise AuthenticationFailed("Invalid API key provided.")
    if record.revoked_at is not None:
        raise AuthenticationFailed(f"API key {record.prefix}... has been revoked.")
    now = utcnow()
    if record.last_used_at is None or now - record.last_used_at >= _LAST_USED_RESOLUTION:
        record.last_used_at = now
    return record


async def list_api_keys(db: AsyncSession, workspace_id: str) -> list[ApiKey]:
    """The workspace's keys, oldest first, revoked ones included."""
    rows = await db.scalars(
        select(ApiKey).where(ApiKey.workspace_id == workspace_id).order_by(ApiKey.id)
    )
    return list(rows)


async def revoke_api_key(db: AsyncSession, key_id: str) -> ApiKey:
    """Revoke the key (idempotent); `NotFound` if there is no such key."""
    record = await db.get(ApiKey, key_id)
    if record is None:
        raise NotFound("API key", key_id)
    if record.revoked_at is None:
        record.revoked_at = utcnow()
    return record
