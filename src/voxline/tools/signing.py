"""HMAC-SHA256 signatures on the HTTP requests voxline sends (webhook tools, session webhooks).

Header: `Voxline-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, f"{t}.{body}")>`, where
`body` is the exact request body ("" for a request without one). A receiver recomputes it with
`verify_signature` and rejects stale timestamps, which bounds replays.
"""

from __future__ import annotations

import hashlib
import hmac
import time

SIGNATURE_HEADER = "Voxline-Signature"
SESSION_HEADER = "Voxline-Session-Id"


def _digest(secret: bytes, timestamp: int, body: str | bytes) -> str:
    payload = body.encode() if isinstance(body, str) else body
    return hmac.new(secret, f"{timestamp}.".encode() + payload, hashlib.sha256).hexdigest()


def sign(secret: bytes, body: str | bytes, *, timestamp: int | None = None) -> str:
    """The `Voxline-Signature` header value for `body`, signed now (or at `timestamp`)."""
    if not secret:
        raise ValueError("the signing secret must not be empty")
    t = int(time.time()) if timestamp is None else timestamp
    return f"t={t},v1={_digest(secret, t, body)}"


def verify_signature(
    secret: bytes,
    header: str,
    body: str | bytes,
    tolerance_s: int = 300,
    *,
    now: float | None = None,
) -> bool:
    """True when `header` is a valid signature of `body` made within `tolerance_s` of now.

    Any `v1` entry may match (several are allowed while a secret is being rotated). A
    malformed header is simply invalid: this never raises on untrusted input.
    """
    if not secret:
        return False
    timestamp: int | None = None
    candidates: list[str] = []
    for part in header.split(","):
        key, sep, value = part.strip().partition("=")
        if not sep:
            return False
        if key == "t":
            if not value.isdigit():
                return False
            timestamp = int(value)
        elif key == "v1":
            candidates.append(value)
    if timestamp is None or not candidates:
        return False
    current = time.time() if now is None else now
    if abs(current - timestamp) > tolerance_s:
        return False
    expected = _digest(secret, timestamp, body)
    return any(hmac.compare_digest(expected, candidate) for candidate in candidates)
