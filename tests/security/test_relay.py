import base64
from datetime import UTC, datetime, timedelta

import pytest

from voxline.security.relay import (
    MAX_TOKEN_CHARS,
    BadSignature,
    Expired,
    Malformed,
    RelayContext,
    Replayed,
    issue_relay_token,
    redeem_relay_token,
    verify_relay_token,
)

SECRET = b"s" * 64
NOW = datetime(2025, 3, 1, 12, 0, 0, tzinfo=UTC)
TTL = timedelta(minutes=5)
CONTEXT = RelayContext(
    session_id="sess_01JNC8Y0W6ZK3T9Q2M5R7V4B8D",
    agent_id="agent_01JNC8Y0W6ZK3T9Q2M5R7V4B8E",
    workspace_id="ws_01JNC8Y0W6ZK3T9Q2M5R7V4B8F",
    from_number="+442071838750",
    to_number="+14155550123",
    instance_id="inst_01JNC8Y0W6ZK3T9Q2M5R7V4B8G",
)


class MemoryConsumer:
    """The store's single-use check, in memory."""

    def __init__(self) -> None:
        self.used: dict[str, datetime] = {}

    async def __call__(self, token_id: str, expires_at: datetime) -> bool:
        if token_id in self.used:
            return False
        self.used[token_id] = expires_at
        return True


def _issue(context: RelayContext = CONTEXT) -> tuple[str, RelayContext]:
    return issue_relay_token(SECRET, context, TTL, now=NOW)


def test_round_trip_returns_the_issued_context() -> None:
    token, issued = _issue()
    assert verify_relay_token(SECRET, token, now=NOW + timedelta(seconds=1)) == issued
    assert issued.session_id == CONTEXT.session_id
    assert issued.instance_id == CONTEXT.instance_id


def test_issued_context_carries_expiry_and_a_token_id() -> None:
    _, issued = _issue()
    assert issued.expires_at == NOW + TTL
    assert len(issued.token_id) == 24


def test_every_token_has_its_own_id() -> None:
    assert _issue()[1].token_id != _issue()[1].token_id


def test_context_without_instance_round_trips() -> None:
    context = RelayContext("sess_1", "agent_1", "ws_1", "+14155550123", "+18005550100")
    token, _ = _issue(context)
    assert verify_relay_token(SECRET, token, now=NOW).instance_id is None


def test_any_holder_of_the_secret_can_verify() -> None:
    token, issued = _issue()
    other_process_secret = bytes(SECRET)
    assert verify_relay_token(other_process_secret, token, now=NOW) == issued


def test_token_with_realistic_values_fits_a_twilio_parameter() -> None:
    token, _ = _issue()
    assert len("relay") + len(token) < 500
    assert len(token) <= 300


def test_token_signed_with_another_secret_is_rejected() -> None:
    token, _ = issue_relay_token(b"x" * 64, CONTEXT, TTL, now=NOW)
    with pytest.raises(BadSignature):
        verify_relay_token(SECRET, token, now=NOW)


def test_tampered_payload_is_rejected() -> None:
    token, _ = _issue()
    payload, signature = token.split(".")
    raw = bytearray(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    raw[-1] ^= 0x01
    forged = base64.urlsafe_b64encode(bytes(raw)).rstrip(b"=").decode() + "." + signature
    with pytest.raises(BadSignature):
        verify_relay_token(SECRET, forged, now=NOW)


def test_tampered_signature_is_rejected() -> None:
    token, _ = _issue()
    flipped = token[:-2] + ("A" if token[-2] != "A" else "B") + token[-1]
    with pytest.raises(BadSignature):
        verify_relay_token(SECRET, flipped, now=NOW)


@pytest.mark.parametrize("token", ["", "abc", "abc.", ".abc", "a.b.c", "!!!.###", "é.é"])
def test_garbage_is_malformed(token: str) -> None:
    with pytest.raises(Malformed):
        verify_relay_token(SECRET, token, now=NOW)


def test_expired_token_is_rejected() -> None:
    token, issued = _issue()
    assert issued.expires_at is not None
    with pytest.raises(Expired):
        verify_relay_token(SECRET, token, now=issued.expires_at)


async def test_redeem_consumes_the_token_once() -> None:
    token, issued = _issue()
    consume = MemoryConsumer()
    assert await redeem_relay_token(SECRET, token, consume, now=NOW) == issued
    assert consume.used == {issued.token_id: issued.expires_at}


async def test_replayed_token_is_rejected() -> None:
    token, _ = _issue()
    consume = MemoryConsumer()
    await redeem_relay_token(SECRET, token, consume, now=NOW)
    with pytest.raises(Replayed):
        await redeem_relay_token(SECRET, token, consume, now=NOW)


async def test_expired_token_is_not_consumed() -> None:
    token, _ = _issue()
    consume = MemoryConsumer()
    with pytest.raises(Expired):
        await redeem_relay_token(SECRET, token, consume, now=NOW + TTL)
    assert consume.used == {}


def test_field_longer_than_255_bytes_is_refused() -> None:
    context = RelayContext("s" * 256, "agent_1", "ws_1", "+14155550123", "+18005550100")
    with pytest.raises(ValueError, match="session_id"):
        _issue(context)


def test_token_that_would_not_fit_a_parameter_is_refused() -> None:
    long = "x" * 120
    context = RelayContext(long, long, long, "+14155550123", "+18005550100")
    with pytest.raises(ValueError, match=str(MAX_TOKEN_CHARS + 6)):
        _issue(context)


def test_empty_required_field_is_refused() -> None:
    context = RelayContext("", "agent_1", "ws_1", "+14155550123", "+18005550100")
    with pytest.raises(ValueError, match="session_id"):
        _issue(context)


def test_naive_time_is_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        issue_relay_token(SECRET, CONTEXT, TTL, now=datetime(2025, 3, 1))


def test_short_secret_is_refused() -> None:
    with pytest.raises(ValueError, match="16 bytes"):
        issue_relay_token(b"short", CONTEXT, TTL, now=NOW)
