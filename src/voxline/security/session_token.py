"""Browser session tokens: short-lived, single-use, signed grants to open one session with one
agent over `WS /v1/agents/:id/session?token=...` (browsers cannot set headers on a WebSocket).

A token is `base64url(payload).base64url(HMAC-SHA256(key, payload))` with a JSON payload and a
key derived from the server secret under a label of its own, so any process of a deployment
verifies any token, and a relay token (Twilio) is never accepted as a session token or the
other way round. Single use is enforced by the caller's store through `redeem_session_token`.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
import secrets
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from types import MappingProxyType
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

MAX_TOKEN_CHARS = 4096
"""Tokens travel in a URL: keep them well under what servers and proxies accept."""

_VERSION: Literal[1] = 1
_KEY_LABEL = b"voxline browser session token v1"
_B64URL = re.compile(r"[A-Za-z0-9_-]+")
_NO_VARIABLES: Mapping[str, str] = MappingProxyType({})


class SessionTokenError(Exception):
    """A session token was refused; the message is safe to show the client."""


class InvalidSessionToken(SessionTokenError):
    """Malformed, not signed by this server, or for another agent."""


class ExpiredSessionToken(SessionTokenError):
    """Signed by us, but past its expiry."""


class ReplayedSessionToken(SessionTokenError):
    """Signed and fresh, but already used for a session."""


class _Payload(BaseModel):
    """The signed record, compact JSON (short keys: it travels in a URL)."""

    model_config = ConfigDict(extra="forbid", strict=True)

    v: Literal[1]
    id: str = Field(min_length=1)
    exp: int
    ws: str = Field(min_length=1)
    agent: str = Field(min_length=1)
    inst: str | None = Field(min_length=1)
    vars: dict[str, str]


@dataclass(frozen=True, slots=True)
class SessionGrant:
    """What a token allows: one session with `agent_id`, optionally bound to an instance and
    preset variables. `token_id` and `expires_at` are set by `issue_session_token`."""

    workspace_id: str
    agent_id: str
    instance_id: str | None = None
    variables: Mapping[str, str] = field(default_factory=lambda: _NO_VARIABLES)
    token_id: str = ""
    expires_at: datetime | None = None


def issue_session_token(
    secret: bytes, grant: SessionGrant, ttl: timedelta, now: datetime | None = None
) -> tuple[str, SessionGrant]:
    """Sign `grant` for `ttl`; returns the token and the grant with its id and expiry.

    Raises ValueError for a non-positive ttl, empty ids, or a token over `MAX_TOKEN_CHARS`.
    """
    _check_secret(secret)
    if ttl <= timedelta(0):
        raise ValueError("session token ttl must be positive")
    if not grant.workspace_id or not grant.agent_id:
        raise ValueError("a session grant needs a workspace and an agent")
    # Whole seconds, so the expiry a verifier reads back equals the one returned here.
    expiry = int((_aware(now or datetime.now(UTC)) + ttl).timestamp())
    token_id = secrets.token_hex(12)
    raw = (
        _Payload(
            v=_VERSION,
            id=token_id,
            exp=expiry,
            ws=grant.workspace_id,
            agent=grant.agent_id,
            inst=grant.instance_id,
            vars=dict(grant.variables),
        )
        .model_dump_json()
        .encode()
    )
    token = _b64(raw) + "." + _b64(_mac(secret, raw))
    if len(token) > MAX_TOKEN_CHARS:
        raise ValueError(
            f"the session token would be {len(token)} characters (at most {MAX_TOKEN_CHARS}): "
            "pass fewer or shorter variables"
        )
    issued = replace(
        grant,
        variables=MappingProxyType(dict(grant.variables)),
        token_id=token_id,
        expires_at=datetime.fromtimestamp(expiry, UTC),
    )
    return token, issued


def verify_session_token(secret: bytes, token: str, now: datetime | None = None) -> SessionGrant:
    """The grant a token carries, if we signed it and it has not expired (single use is
    not checked). Raises `InvalidSessionToken` or `ExpiredSessionToken`."""
    _check_secret(secret)
    encoded_payload, dot, encoded_sig = token.partition(".")
    if not dot or not encoded_payload or not encoded_sig:
        raise InvalidSessionToken("the session token is malformed")
    raw = _unb64(encoded_payload)
    if not hmac.compare_digest(_mac(secret, raw), _unb64(encoded_sig)):
        raise InvalidSessionToken("the session token was not issued by this server")
    grant = _decode(raw)
    assert grant.expires_at is not None
    if _aware(now or datetime.now(UTC)) >= grant.expires_at:
        raise ExpiredSessionToken("the session token has expired: request a new one")
    return grant


async def redeem_session_token(
    secret: bytes,
    token: str,
    agent_id: str,
    consume: Callable[[str, datetime], Awaitable[bool]],
    now: datetime | None = None,
) -> SessionGrant:
    """Verify the token for `agent_id` and use it up: `consume(token_id, expires_at)` must
    return True the first time and False afterwards (the store's job). A token for another
    agent is refused without being used up. Raises any `SessionTokenError`."""
    grant = verify_session_token(secret, token, now)
    if grant.agent_id != agent_id:
        raise InvalidSessionToken("the session token is for another agent")
    assert grant.expires_at is not None
    if not await consume(grant.token_id, grant.expires_at):
        raise ReplayedSessionToken(
            "the session token was already used: request a new one for each session"
        )
    return grant


def _decode(raw: bytes) -> SessionGrant:
    try:
        payload = _Payload.model_validate_json(raw)
    except ValidationError:
        raise InvalidSessionToken("the session token is malformed") from None
    return SessionGrant(
        workspace_id=payload.ws,
        agent_id=payload.agent,
        instance_id=payload.inst,
        variables=MappingProxyType(payload.vars),
        token_id=payload.id,
        expires_at=datetime.fromtimestamp(payload.exp, UTC),
    )


def _mac(secret: bytes, payload: bytes) -> bytes:
    # A key of its own, so a MAC made for another purpose with the same secret never verifies.
    key = hmac.new(secret, _KEY_LABEL, hashlib.sha256).digest()
    return hmac.new(key, payload, hashlib.sha256).digest()


def _check_secret(secret: bytes) -> None:
    if len(secret) < 16:
        raise ValueError("the session token secret must be at least 16 bytes")


def _aware(moment: datetime) -> datetime:
    if moment.tzinfo is None:
        raise ValueError("session token times must be timezone-aware (use datetime.now(UTC))")
    return moment


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    # The decoder would silently skip foreign characters; refuse them instead.
    if not _B64URL.fullmatch(text):
        raise InvalidSessionToken("the session token is malformed")
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        raise InvalidSessionToken("the session token is malformed") from None
