"""Browser session tokens: signed, short-lived, single-use grants for one agent."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta

import pytest

from voxline.security.relay import RelayContext, issue_relay_token
from voxline.security.session_token import (
    MAX_TOKEN_CHARS,
    ExpiredSessionToken,
    InvalidSessionToken,
    ReplayedSessionToken,
    SessionGrant,
    issue_session_token,
    redeem_session_token,
    verify_session_token,
)

SECRET = b"s" * 64
NOW = datetime(2025, 3, 1, 12, 0, 0, tzinfo=UTC)
TTL = timedelta(seconds=60)
GRANT = SessionGrant(
    workspace_id="ws_01JNC8Y0W6ZK3T9Q2M5R7V4B8F",
    agent_id="agent_01JNC8Y0W6ZK3T9Q2M5R7V4B8E",
    instance_id="inst_01JNC8Y0W6ZK3T9Q2M5R7V4B8G",
    variables={"name": "Zoë"},
)


class MemoryConsumer:
    """The store's single-use check, in memory."""

    def __init__(self) -> None:
        self.used: set[str] = set()

    async def __call__(self, token_id: str, expires_at: datetime) -> bool:
        if token_id in self.used:
            return False
        self.used.add(token_id)
        return True


def test_a_token_carries_its_grant_back() -> None:
    token, issued = issue_session_token(SECRET, GRANT, TTL, now=NOW)
    grant = verify_session_token(SECRET, token, now=NOW + timedelta(seconds=59))
    assert grant == issued
    assert (grant.workspace_id, grant.agent_id, grant.instance_id) == (
        GRANT.workspace_id,
        GRANT.agent_id,
        GRANT.instance_id,
    )
    assert dict(grant.variables) == {"name": "Zoë"}
    assert grant.expires_at == NOW + TTL
    assert len(grant.token_id) == 24


def test_every_token_has_its_own_id() -> None:
    first = issue_session_token(SECRET, GRANT, TTL, now=NOW)[1]
    second = issue_session_token(SECRET, GRANT, TTL, now=NOW)[1]
    assert first.token_id != second.token_id


def test_a_token_is_refused_once_expired() -> None:
    token, _ = issue_session_token(SECRET, GRANT, TTL, now=NOW)
    with pytest.raises(ExpiredSessionToken, match="expired"):
        verify_session_token(SECRET, token, now=NOW + TTL)


def test_a_token_signed_with_another_secret_is_refused() -> None:
    token, _ = issue_session_token(b"t" * 64, GRANT, TTL, now=NOW)
    with pytest.raises(InvalidSessionToken, match="not issued by this server"):
        verify_session_token(SECRET, token, now=NOW)


def test_a_tampered_payload_is_refused() -> None:
    token, _ = issue_session_token(SECRET, GRANT, TTL, now=NOW)
    payload, signature = token.split(".")
    record = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    record["agent"] = "agent_someone_else"
    forged = base64.urlsafe_b64encode(json.dumps(record).encode()).rstrip(b"=").decode()
    with pytest.raises(InvalidSessionToken):
        verify_session_token(SECRET, f"{forged}.{signature}", now=NOW)


def test_a_relay_token_is_not_a_session_token() -> None:
    context = RelayContext("sess_1", "agent_1", "ws_1", "+1", "+2")
    relay, _ = issue_relay_token(SECRET, context, TTL, now=NOW)
    with pytest.raises(InvalidSessionToken):
        verify_session_token(SECRET, relay, now=NOW)


@pytest.mark.parametrize("token", ["", "abc", "a.b.c", "a+b.c", "....", "YQ.YQ"])
def test_malformed_tokens_are_refused(token: str) -> None:
    with pytest.raises(InvalidSessionToken):
        verify_session_token(SECRET, token, now=NOW)


async def test_a_token_is_redeemed_once() -> None:
    token, issued = issue_session_token(SECRET, GRANT, TTL, now=NOW)
    consume = MemoryConsumer()
    grant = await redeem_session_token(SECRET, token, GRANT.agent_id, consume, now=NOW)
    assert grant == issued
    with pytest.raises(ReplayedSessionToken, match="already used"):
        await redeem_session_token(SECRET, token, GRANT.agent_id, consume, now=NOW)


async def test_a_token_for_another_agent_is_refused_without_using_it_up() -> None:
    token, _ = issue_session_token(SECRET, GRANT, TTL, now=NOW)
    consume = MemoryConsumer()
    with pytest.raises(InvalidSessionToken, match="another agent"):
        await redeem_session_token(SECRET, token, "agent_other", consume, now=NOW)
    assert consume.used == set()


def test_too_many_variables_for_a_url_are_refused() -> None:
    grant = SessionGrant("ws_1", "agent_1", variables={f"v{i}": "x" * 500 for i in range(10)})
    with pytest.raises(ValueError, match=f"at most {MAX_TOKEN_CHARS}"):
        issue_session_token(SECRET, grant, TTL, now=NOW)


@pytest.mark.parametrize(
    ("grant", "ttl", "now", "secret"),
    [
        (GRANT, timedelta(0), NOW, SECRET),
        (SessionGrant("", "agent_1"), TTL, NOW, SECRET),
        (GRANT, TTL, datetime(2025, 3, 1), SECRET),
        (GRANT, TTL, NOW, b"short"),
    ],
    ids=["no-ttl", "no-workspace", "naive-time", "short-secret"],
)
def test_issuing_refuses_bad_arguments(
    grant: SessionGrant, ttl: timedelta, now: datetime, secret: bytes
) -> None:
    with pytest.raises(ValueError):
        issue_session_token(secret, grant, ttl, now=now)
