"""Relay tokens: the signed, single-use context that travels from the voice webhook to the
media-stream WebSocket inside `<Parameter name="relay">` (Twilio strips query strings).

A token is `base64url(payload).base64url(HMAC-SHA256(key, payload))` where the payload is a
compact binary record and the key is derived from the server secret, so any process holding
the secret can verify any token. Single use is enforced by the caller's store through
`redeem_relay_token`.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
import secrets
import struct
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta

# A <Parameter>'s name plus value must stay under 500 characters; "relay" takes 5 of them.
MAX_TOKEN_CHARS = 494

_VERSION = 1
_HEADER = struct.Struct(">BI12s")  # version, expiry (unix seconds), token id
_MAX_FIELD_BYTES = 255
_KEY_LABEL = b"voxline relay token v1"
_FIELD_COUNT = 6
_B64URL = re.compile(r"[A-Za-z0-9_-]+")


class RelayTokenError(Exception):
    """A relay token was refused; the subclass says why."""


class Malformed(RelayTokenError):
    """Not a relay token of a version this server reads."""


class BadSignature(RelayTokenError):
    """Not signed with this server's secret (forged or tampered with)."""


class Expired(RelayTokenError):
    """Signed by us, but past its expiry."""


class Replayed(RelayTokenError):
    """Signed and fresh, but already used once."""


@dataclass(frozen=True, slots=True)
class RelayContext:
    """What the stream needs to know about its call. `token_id` and `expires_at` are set by
    `issue_relay_token` (whatever they held before is replaced)."""

    session_id: str
    agent_id: str
    workspace_id: str
    from_number: str
    to_number: str
    instance_id: str | None = None
    token_id: str = ""
    expires_at: datetime | None = None


def issue_relay_token(
    secret: bytes, context: RelayContext, ttl: timedelta, now: datetime | None = None
) -> tuple[str, RelayContext]:
    """Sign `context` for `ttl`; returns the token and the context with its id and expiry.

    Raises ValueError for an empty required field, a field over 255 UTF-8 bytes, or a token
    that would not fit a Twilio `<Parameter>`.
    """
    _check_secret(secret)
    if ttl <= timedelta(0):
        raise ValueError("relay token ttl must be positive")
    issued = _aware(now or datetime.now(UTC))
    # Whole seconds, so the expiry a verifier reads back equals the one returned here.
    expiry = int((issued + ttl).timestamp())
    token_id = secrets.token_bytes(12)
    payload = _HEADER.pack(_VERSION, expiry, token_id) + _encode_fields(context)
    token = _b64(payload) + "." + _b64(_mac(secret, payload))
    if len(token) > MAX_TOKEN_CHARS:
        raise ValueError(
            f"relay token would be {len(token)} characters; Twilio parameters must stay under "
            f"{MAX_TOKEN_CHARS + 6}: shorten the ids or phone numbers"
        )
    issued_context = replace(
        context, token_id=token_id.hex(), expires_at=datetime.fromtimestamp(expiry, UTC)
    )
    return token, issued_context


def verify_relay_token(secret: bytes, token: str, now: datetime | None = None) -> RelayContext:
    """The context a token carries, if we signed it and it has not expired.

    Raises `Malformed`, `BadSignature` or `Expired`. Does not check single use.
    """
    return _verify(secret, token, now)[0]


async def redeem_relay_token(
    secret: bytes,
    token: str,
    consume: Callable[[str, datetime], Awaitable[bool]],
    now: datetime | None = None,
) -> RelayContext:
    """Verify the token and use it up: `consume(token_id, expires_at)` must return True the
    first time and False afterwards (the store's job). Raises any `RelayTokenError`."""
    context, expires_at = _verify(secret, token, now)
    if not await consume(context.token_id, expires_at):
        raise Replayed(f"relay token {context.token_id} was already used")
    return context


def _verify(secret: bytes, token: str, now: datetime | None) -> tuple[RelayContext, datetime]:
    _check_secret(secret)
    encoded_payload, dot, encoded_sig = token.partition(".")
    if not dot or not encoded_payload or not encoded_sig:
        raise Malformed("a relay token has the form payload.signature")
    payload = _unb64(encoded_payload)
    if not hmac.compare_digest(_mac(secret, payload), _unb64(encoded_sig)):
        raise BadSignature("relay token signature does not match")
    context, expires_at = _decode(payload)
    if _aware(now or datetime.now(UTC)) >= expires_at:
        raise Expired(f"relay token expired at {expires_at.isoformat()}")
    return context, expires_at


def _encode_fields(context: RelayContext) -> bytes:
    """Each field as a length byte + UTF-8; an absent instance id is stored empty."""
    required = {
        "session_id": context.session_id,
        "agent_id": context.agent_id,
        "workspace_id": context.workspace_id,
        "from_number": context.from_number,
        "to_number": context.to_number,
    }
    out = bytearray()
    for name, value in [*required.items(), ("instance_id", context.instance_id or "")]:
        if not value and name in required:
            raise ValueError(f"relay context {name} must not be empty")
        raw = value.encode()
        if len(raw) > _MAX_FIELD_BYTES:
            raise ValueError(f"relay context {name} is longer than {_MAX_FIELD_BYTES} bytes")
        out.append(len(raw))
        out += raw
    return bytes(out)


def _decode(payload: bytes) -> tuple[RelayContext, datetime]:
    if len(payload) < _HEADER.size:
        raise Malformed("relay token payload is truncated")
    version, expiry, token_id = _HEADER.unpack_from(payload)
    if version != _VERSION:
        raise Malformed(f"relay token version {version} is not supported")
    values: list[str] = []
    pos = _HEADER.size
    for _ in range(_FIELD_COUNT):
        if pos >= len(payload):
            raise Malformed("relay token payload is truncated")
        size = payload[pos]
        raw = payload[pos + 1 : pos + 1 + size]
        if len(raw) != size:
            raise Malformed("relay token payload is truncated")
        try:
            values.append(raw.decode())
        except UnicodeDecodeError:
            raise Malformed("relay token field is not UTF-8") from None
        pos += 1 + size
    if pos != len(payload):
        raise Malformed("relay token payload has trailing bytes")
    session_id, agent_id, workspace_id, from_number, to_number, instance_id = values
    expires_at = datetime.fromtimestamp(expiry, UTC)
    context = RelayContext(
        session_id=session_id,
        agent_id=agent_id,
        workspace_id=workspace_id,
        from_number=from_number,
        to_number=to_number,
        instance_id=instance_id or None,
        token_id=token_id.hex(),
        expires_at=expires_at,
    )
    return context, expires_at


def _mac(secret: bytes, payload: bytes) -> bytes:
    # A key of its own, so a MAC made for another purpose with the same secret never verifies.
    key = hmac.new(secret, _KEY_LABEL, hashlib.sha256).digest()
    return hmac.new(key, payload, hashlib.sha256).digest()


def _check_secret(secret: bytes) -> None:
    if len(secret) < 16:
        raise ValueError("the relay token secret must be at least 16 bytes")


def _aware(moment: datetime) -> datetime:
    if moment.tzinfo is None:
        raise ValueError("relay token times must be timezone-aware (use datetime.now(UTC))")
    return moment


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    # The decoder would silently skip foreign characters; refuse them instead.
    if not _B64URL.fullmatch(text):
        raise Malformed("relay token is not base64url")
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        raise Malformed("relay token is not base64url") from None
