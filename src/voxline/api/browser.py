"""Direct browser sessions: session tokens, the session WebSocket, the development helpers
and the web client's pages.

Browsers cannot set headers on a WebSocket, so a server holding an API key asks for a
short-lived single-use token (`POST /v1/agents/:id/session-token`) and the page passes it
in the URL of `WS /v1/agents/:id/session`. Pages from other origins than the server's own
and the configured ones are refused before the socket is accepted. In development mode a
page served from this machine gets tokens without a key (`/v1/dev/...`, loopback only).
The protocol is in docs/browser-protocol.md.
"""

from __future__ import annotations

import asyncio
import functools
import ipaddress
import logging
import time
from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Annotated
from urllib.parse import quote, urlsplit

from fastapi import APIRouter, Body, Query, Request, WebSocket
from fastapi.responses import FileResponse
from pydantic import Field
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from voxline.api.deps import DatabaseDep, PrincipalDep, get_state
from voxline.api.errors import ApiError, error_responses
from voxline.api.models import ApiModel
from voxline.api.websockets import POLICY_VIOLATION
from voxline.app_state import AppState
from voxline.calls.engine import CallSetup
from voxline.config import Settings
from voxline.security.session_token import (
    SessionGrant,
    SessionTokenError,
    issue_session_token,
    redeem_session_token,
)
from voxline.store import sessions as session_store
from voxline.store.agents import get_agent
from voxline.store.errors import NotFound
from voxline.store.instances import agent_instance
from voxline.store.models import AgentRow
from voxline.store.session_state import Channel, Direction
from voxline.store.token_uses import use_token_once
from voxline.transports.browser import BrowserChannel, BrowserTransport, ClientGone, receive_start
from voxline.transports.browser_protocol import StartMessage, Variables

logger = logging.getLogger(__name__)

router = APIRouter()

_TRY_AGAIN_LATER = 1013
_START_TIMEOUT_S = 10.0
_DEV_AGENTS_LIMIT = 100
_LOOPBACK_NAMES = frozenset({"localhost", "127.0.0.1", "::1"})
_WEB_DIR = Path(__file__).resolve().parent.parent / "web"
_ASSETS = {
    "app.js": "text/javascript",
    "audio-worklet.js": "text/javascript",
    "style.css": "text/css",
}


class SessionTokenRequest(ApiModel):
    """Optionally bind the session to an instance and preset variables (the page's `start`
    cannot change them)."""

    instance_id: str | None = Field(default=None, description="inst_... of this agent.")
    variables: Variables = Field(
        default_factory=dict, description="Values for the agent's {{placeholders}}."
    )


class DevSessionTokenRequest(SessionTokenRequest):
    agent_id: str = Field(description="agent_...")


class SessionToken(ApiModel):
    token: str = Field(description="Single use: pass it as ?token= to the session WebSocket.")
    expires_at: datetime
    url: str = Field(description="The session WebSocket URL, token included.")


class _StartRefused(Exception):
    """A `start` that contradicts the session token."""


class DevAgent(ApiModel):
    id: str
    name: str


class DevAgentList(ApiModel):
    data: list[DevAgent]


@router.post(
    "/v1/agents/{agent_id}/session-token",
    tags=["browser"],
    summary="Get a single-use token for a browser session with an agent",
    responses=error_responses(400, 401, 404, 422),
)
async def create_session_token(
    agent_id: str,
    request: Request,
    principal: PrincipalDep,
    database: DatabaseDep,
    body: Annotated[SessionTokenRequest | None, Body()] = None,
) -> SessionToken:
    body = body or SessionTokenRequest()
    async with database.transaction() as db:
        agent = await get_agent(db, principal.workspace_id, agent_id)
        await _check_instance(db, agent, body.instance_id)
    return _issue(get_state(request), agent, body)


@router.get(
    "/v1/dev/agents",
    tags=["development"],
    summary="Development mode, loopback only: list every agent (for the web client)",
    responses=error_responses(403, 404),
)
async def list_dev_agents(request: Request, database: DatabaseDep) -> DevAgentList:
    require_dev_request(request)
    async with database.transaction() as db:
        statement = select(AgentRow).order_by(AgentRow.id.desc()).limit(_DEV_AGENTS_LIMIT)
        rows = (await db.scalars(statement)).all()
    return DevAgentList(data=[DevAgent(id=row.id, name=row.name) for row in rows])


@router.post(
    "/v1/dev/session-token",
    tags=["development"],
    summary="Development mode, loopback only: a browser session token without an API key",
    responses=error_responses(400, 403, 404, 422),
)
async def create_dev_session_token(
    body: DevSessionTokenRequest, request: Request, database: DatabaseDep
) -> SessionToken:
    require_dev_request(request)
    async with database.transaction() as db:
        agent = await db.get(AgentRow, body.agent_id)
        if agent is None:
            raise NotFound("agent", body.agent_id, param="agentId")
        await _check_instance(db, agent, body.instance_id)
    return _issue(get_state(request), agent, body)


@router.websocket("/v1/agents/{agent_id}/session")
async def browser_session(
    websocket: WebSocket, agent_id: str, token: Annotated[str, Query()] = ""
) -> None:
    """One browser session: token check, `start`, then the conversation until either ends."""
    state: AppState = websocket.app.state.voxline
    origin = websocket.headers.get("origin")
    if not origin_allowed(origin, websocket.headers.get("host"), state.settings):
        logger.warning("browser session refused: origin %r is not allowed", origin)
        await websocket.close(POLICY_VIOLATION)
        return
    await websocket.accept()
    channel = BrowserChannel(websocket)
    refusal = state.engine.refusal()
    if refusal is not None:
        logger.warning("browser session refused: %s", refusal)
        await channel.send_error(f"no new sessions: {refusal}")
        await channel.close(_TRY_AGAIN_LATER, "try again later")
        return
    consume = functools.partial(use_token_once, state.database)
    try:
        grant = await redeem_session_token(state.secret, token, agent_id, consume)
    except SessionTokenError as exc:
        logger.warning("browser session refused: %s", type(exc).__name__)
        await _refuse(channel, str(exc))
        return
    try:
        opened = await _open_session(state, channel, grant)
    except ClientGone:
        return
    if opened is None:
        return
    setup, sample_rate, started = opened
    transport = BrowserTransport(channel, sample_rate)
    try:
        await channel.send_event(
            "session.started",
            session_id=setup.session_id,
            agent_id=setup.agent_id,
            sample_rate=sample_rate,
        )
        await state.engine.run(setup, transport, stream_started=started)
    finally:
        await channel.close()


@router.get("/", include_in_schema=False)
@router.get("/talk", include_in_schema=False)
async def web_client() -> FileResponse:
    """The web client: pick an agent, press Start, talk."""
    return _web_file("index.html", "text/html")


@router.get("/web/{name}", include_in_schema=False)
async def web_asset(name: str) -> FileResponse:
    if name not in _ASSETS:
        raise ApiError(404, f"Unknown route: GET /web/{name}")
    return _web_file(name, _ASSETS[name])


def origin_allowed(origin: str | None, host: str | None, settings: Settings) -> bool:
    """Whether a page of `origin` may open a session: the server's own origin (same host as
    the request, or the public base URL) and the configured ones. Clients that send no
    Origin are not browsers; their token alone authorizes them."""
    if origin is None or "*" in settings.allowed_origins:
        return True
    normalized = _normalize_origin(origin)
    if normalized is None:
        return False
    if host is not None and urlsplit(normalized).netloc == host.strip().lower():
        return True
    allowed = {_normalize_origin(entry) for entry in settings.allowed_origins}
    allowed.add(_normalize_origin(settings.resolved_public_base_url()))
    return normalized in allowed


def _normalize_origin(origin: str) -> str | None:
    """`scheme://host[:port]` in lower case without a default port; None if not an origin."""
    try:
        parts = urlsplit(origin.strip().lower())
        port = parts.port
    except ValueError:
        return None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return None
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    default = 443 if parts.scheme == "https" else 80
    return f"{parts.scheme}://{host}" + (f":{port}" if port not in (None, default) else "")


def require_dev_request(request: Request) -> None:
    """Development mode on, and a request from this machine to a loopback host name (so a
    web page cannot reach it through DNS rebinding) from a permitted origin."""
    settings = get_state(request).settings
    if not settings.dev_mode:
        raise ApiError(
            404, "Development endpoints are off: set VOXLINE_DEV_MODE=true (local use only)."
        )
    client = request.client.host if request.client is not None else ""
    host = urlsplit(f"//{request.headers.get('host', '')}").hostname or ""
    origin = request.headers.get("origin")
    if not (
        _is_loopback(client)
        and host in _LOOPBACK_NAMES
        and origin_allowed(origin, request.headers.get("host"), settings)
    ):
        raise ApiError(403, "Development endpoints answer pages and clients on this machine only.")


def _is_loopback(address: str) -> bool:
    try:
        return ipaddress.ip_address(address).is_loopback
    except ValueError:
        return False


async def _check_instance(db: AsyncSession, agent: AgentRow, instance_id: str | None) -> None:
    if instance_id is not None:
        await agent_instance(db, agent, instance_id)


def _issue(state: AppState, agent: AgentRow, body: SessionTokenRequest) -> SessionToken:
    grant = SessionGrant(
        workspace_id=agent.workspace_id,
        agent_id=agent.id,
        instance_id=body.instance_id,
        variables=body.variables,
    )
    ttl = timedelta(seconds=state.settings.session_token_ttl_seconds)
    try:
        token, issued = issue_session_token(state.secret, grant, ttl)
    except ValueError as exc:
        raise ApiError(422, str(exc), param="variables") from exc
    assert issued.expires_at is not None
    base = state.settings.public_websocket_base_url()
    url = f"{base}/v1/agents/{agent.id}/session?token={quote(token)}"
    return SessionToken(token=token, expires_at=issued.expires_at, url=url)


async def _open_session(
    state: AppState, channel: BrowserChannel, grant: SessionGrant
) -> tuple[CallSetup, int, float] | None:
    """Wait for a valid `start` and create the session it asks for: the session, its sample
    rate and when `start` arrived (`time.monotonic()`); None (the socket closed) if none
    comes in time. Raises `ClientGone`."""
    try:
        async with asyncio.timeout(_START_TIMEOUT_S):
            while True:
                start = await receive_start(channel)
                started = time.monotonic()
                try:
                    setup = await _create_session(state, grant, start)
                    return setup, start.sample_rate, started
                except (NotFound, _StartRefused) as exc:
                    await channel.reject(str(exc))
    except TimeoutError:
        await _refuse(channel, "no valid start message: send start right after connecting")
        return None


async def _create_session(state: AppState, grant: SessionGrant, start: StartMessage) -> CallSetup:
    """A stored web session for `grant` and `start`, loaded to run. Variables: the
    instance's, overridden by `start`'s, overridden by the token's."""
    if grant.instance_id and start.instance_id and start.instance_id != grant.instance_id:
        raise _StartRefused(f"the session token is for instance {grant.instance_id!r}")
    instance_id = grant.instance_id or start.instance_id
    async with state.database.transaction() as db:
        agent = await get_agent(db, grant.workspace_id, grant.agent_id)
        await _check_instance(db, agent, instance_id)
        row = await session_store.create_session(
            db,
            workspace_id=agent.workspace_id,
            agent_id=agent.id,
            channel=Channel.WEB,
            direction=Direction.INBOUND,
            instance_id=instance_id,
        )
    setup = await state.engine.load(row.id)
    variables = {**setup.variables, **start.variables, **grant.variables}
    return replace(setup, variables=variables)


async def _refuse(channel: BrowserChannel, message: str) -> None:
    await channel.send_error(message)
    await channel.close(POLICY_VIOLATION, message[:120])


def _web_file(name: str, media_type: str) -> FileResponse:
    # Revalidated on every load, so a server upgrade never runs a stale client.
    return FileResponse(
        _WEB_DIR / name, media_type=media_type, headers={"Cache-Control": "no-cache"}
    )
