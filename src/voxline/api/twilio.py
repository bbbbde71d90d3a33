"""Twilio inbound calls: the voice webhook (or an API call) answered with TwiML, and the
media-stream WebSocket that TwiML connects.

`POST /v1/sessions/twilio` is called two ways:
- by an API consumer, JSON with an API key: returns the session and its TwiML as JSON;
- by Twilio as a number's voice webhook, form-encoded, authenticated by `X-Twilio-Signature`,
  the agent chosen by `?agentId=`: returns TwiML (a caller never hears silence: an unknown
  agent gets a spoken apology and a hang-up).
Either way a pending session is stored and a signed single-use relay token travels to the
stream as a `<Parameter>` (Twilio strips query strings from stream URLs).
"""

from __future__ import annotations

import asyncio
import logging
import time
from datetime import datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response, WebSocket
from fastapi.security import HTTPBearer
from pydantic import Field, ValidationError
from starlette.websockets import WebSocketDisconnect

from voxline.api.deps import get_state, require_api_key
from voxline.api.errors import ApiError, error_responses, validation_error
from voxline.api.models import ApiModel
from voxline.api.websockets import POLICY_VIOLATION
from voxline.app_state import AppState
from voxline.security.relay import (
    RelayContext,
    RelayTokenError,
    Replayed,
    issue_relay_token,
    verify_relay_token,
)
from voxline.store import sessions as session_store
from voxline.store.errors import NotFound
from voxline.store.instances import agent_instance
from voxline.store.models import AgentRow
from voxline.store.session_state import Channel, Direction
from voxline.store.token_uses import use_token_once
from voxline.telephony.twilio.media import (
    ConnectedMessage,
    MediaStreamError,
    StartMessage,
    parse_inbound,
)
from voxline.telephony.twilio.signature import public_request_url, validate_twilio_request
from voxline.telephony.twilio.twiml import connect_stream_twiml, say_and_hangup_twiml
from voxline.transports.twilio import TwilioMediaTransport

logger = logging.getLogger(__name__)

router = APIRouter(prefix="/v1/sessions/twilio", tags=["twilio"])

_SORRY = "Sorry, this number is not available right now. Goodbye."
_START_TIMEOUT_S = 10.0
_bearer = HTTPBearer(auto_error=False)


class TwilioSessionRequest(ApiModel):
    """Create a session for a call you connect to voxline yourself."""

    agent_id: str = Field(description="agent_...")
    from_number: str = Field(alias="from", min_length=1, max_length=64)
    to_number: str = Field(alias="to", min_length=1, max_length=64)
    instance_id: str | None = Field(default=None, description="inst_... to personalize the call")


class TwilioSession(ApiModel):
    session_id: str
    agent_id: str
    instance_id: str | None
    stream_url: str
    expires_at: datetime = Field(description="The relay token in the TwiML is valid until then.")
    twiml: str = Field(description="Return this to Twilio (or use it in a call you place).")


_OPENAPI_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {"schema": {"$ref": "#/components/schemas/TwilioSessionRequest"}},
            "application/x-www-form-urlencoded": {
                "schema": {
                    "type": "object",
                    "description": "Twilio's voice webhook (CallSid, From, To, Direction, ...), "
                    "signed with X-Twilio-Signature.",
                    "additionalProperties": {"type": "string"},
                }
            },
        },
    },
    "responses": {
        "200": {
            "description": "JSON for API callers; TwiML for Twilio.",
            "content": {
                "application/json": {"schema": {"$ref": "#/components/schemas/TwilioSession"}},
                "application/xml": {"schema": {"type": "string"}},
            },
        }
    },
}


@router.post(
    "",
    summary="Start a Twilio call session (API call or Twilio voice webhook)",
    openapi_extra=_OPENAPI_BODY,
    responses=error_responses(400, 401, 403, 404, 415, 422, 503),
    response_model=None,
)
async def create_twilio_session(
    request: Request,
    agent_id: Annotated[
        str | None, Query(alias="agentId", description="Twilio webhook only: the agent.")
    ] = None,
    instance_id: Annotated[
        str | None, Query(alias="instanceId", description="Twilio webhook only: the instance.")
    ] = None,
) -> Response:
    state = get_state(request)
    refusal = state.engine.refusal()
    if refusal is not None:
        # A 503 sends Twilio to the number's fallback URL (another process, behind a balancer).
        raise ApiError(503, f"No new calls: {refusal}.", headers={"Retry-After": "5"})
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type == "application/json":
        return await _from_api(request, state)
    if content_type == "application/x-www-form-urlencoded":
        return await _from_twilio_webhook(request, state, agent_id, instance_id)
    raise ApiError(415, "Send JSON (API callers) or a form-encoded Twilio voice webhook.")


async def _from_api(request: Request, state: AppState) -> Response:
    principal = await require_api_key(state.database, await _bearer(request))
    raw = await request.body()
    try:
        body = TwilioSessionRequest.model_validate_json(raw)
    except ValidationError as exc:
        if any(error["type"] == "json_invalid" for error in exc.errors()):
            raise ApiError(400, "The request body is not valid JSON.") from exc
        raise validation_error(exc.errors(), raw) from exc
    async with state.database.transaction() as db:
        agent = await db.get(AgentRow, body.agent_id)
        if agent is None or agent.workspace_id != principal.workspace_id:
            raise NotFound("agent", body.agent_id, param="agentId")
        if body.instance_id is not None:
            await agent_instance(db, agent, body.instance_id)
        row = await session_store.create_session(
            db,
            workspace_id=agent.workspace_id,
            agent_id=agent.id,
            channel=Channel.PHONE,
            direction=Direction.INBOUND,
            instance_id=body.instance_id,
            from_number=body.from_number,
            to_number=body.to_number,
        )
    session = _issue(state, row.id, agent, body.instance_id, body.from_number, body.to_number)
    return Response(session.model_dump_json(by_alias=True), media_type="application/json")


async def _from_twilio_webhook(
    request: Request, state: AppState, agent_id: str | None, instance_id: str | None
) -> Response:
    form = await request.form()
    params = {key: [str(value) for value in form.getlist(key)] for key in form}
    _check_twilio_signature(request, state, params)
    call_sid = _first(params, "CallSid")
    from_number = _first(params, "From") or "unknown"
    to_number = _first(params, "To") or "unknown"
    outbound = _first(params, "Direction").startswith("outbound")
    direction = Direction.OUTBOUND if outbound else Direction.INBOUND
    async with state.database.transaction() as db:
        agent = await db.get(AgentRow, agent_id) if agent_id else None
        if agent is None:
            logger.warning("twilio webhook for unknown agent %r (call %s)", agent_id, call_sid)
            return _twiml(say_and_hangup_twiml(_SORRY))
        if instance_id is not None:
            try:
                await agent_instance(db, agent, instance_id)
            except NotFound:
                logger.warning("twilio webhook for unknown instance %r", instance_id)
                return _twiml(say_and_hangup_twiml(_SORRY))
        row = await session_store.create_session(
            db,
            workspace_id=agent.workspace_id,
            agent_id=agent.id,
            channel=Channel.PHONE,
            direction=direction,
            instance_id=instance_id,
            from_number=from_number,
            to_number=to_number,
            call_sid=call_sid or None,
        )
    session = _issue(state, row.id, agent, instance_id, from_number, to_number)
    return _twiml(session.twiml)


def _check_twilio_signature(
    request: Request, state: AppState, params: dict[str, list[str]]
) -> None:
    settings = state.settings
    if not settings.twilio_validate_signatures:
        return
    if settings.twilio_auth_token is None:
        logger.error(
            "refusing a Twilio webhook: set VOXLINE_TWILIO_AUTH_TOKEN to validate signatures "
            "(or VOXLINE_TWILIO_VALIDATE_SIGNATURES=false for local experiments)"
        )
        raise ApiError(403, "Twilio signature validation is not configured on this server.")
    url = public_request_url(
        settings.resolved_public_base_url(), request.url.path, request.url.query
    )
    signature = request.headers.get("x-twilio-signature")
    token = settings.twilio_auth_token.get_secret_value()
    if not validate_twilio_request(token, url, params, signature):
        logger.warning("refusing a Twilio webhook with a missing or invalid signature")
        raise ApiError(403, "Invalid or missing X-Twilio-Signature.")


def _issue(
    state: AppState,
    session_id: str,
    agent: AgentRow,
    instance_id: str | None,
    from_number: str,
    to_number: str,
) -> TwilioSession:
    context = RelayContext(
        session_id=session_id,
        agent_id=agent.id,
        workspace_id=agent.workspace_id,
        from_number=from_number,
        to_number=to_number,
        instance_id=instance_id,
    )
    ttl = timedelta(seconds=state.settings.relay_token_ttl_seconds)
    token, issued = issue_relay_token(state.secret, context, ttl)
    stream_url = state.settings.stream_url()
    assert issued.expires_at is not None
    return TwilioSession(
        session_id=session_id,
        agent_id=agent.id,
        instance_id=instance_id,
        stream_url=stream_url,
        expires_at=issued.expires_at,
        twiml=connect_stream_twiml(stream_url, {"relay": token}),
    )


def _first(params: dict[str, list[str]], key: str) -> str:
    values = params.get(key)
    return values[0] if values else ""


def _twiml(xml: str) -> Response:
    return Response(xml, media_type="application/xml")


@router.websocket("/stream")
async def twilio_media_stream(websocket: WebSocket) -> None:
    """Twilio Media Streams: `connected`, `start` (with the relay), then the call's audio."""
    state: AppState = websocket.app.state.voxline
    await websocket.accept()
    start = await _read_start(websocket)
    if start is None:
        return
    stream_started = time.monotonic()
    try:
        context = verify_relay_token(state.secret, start.custom_parameters.get("relay", ""))
        # The single-use check and loading the call are independent: do both at once.
        consumed, setup = await asyncio.gather(
            use_token_once(state.database, context.token_id, _expiry(context)),
            state.engine.load(context.session_id),
        )
        if not consumed:
            raise Replayed(f"relay token {context.token_id} was already used")
    except (RelayTokenError, NotFound) as exc:
        logger.warning("media stream %s refused: %s", start.stream_sid, _refusal(exc))
        await websocket.close(POLICY_VIOLATION, "invalid relay token")
        return
    transport = TwilioMediaTransport(websocket, start, state.engine.twilio, context.to_number)
    try:
        await state.engine.run(
            setup,
            transport,
            call_sid=start.call_sid,
            stream_sid=start.stream_sid,
            stream_started=stream_started,
        )
    finally:
        await transport.close()


def _expiry(context: RelayContext) -> datetime:
    assert context.expires_at is not None  # set on every verified token
    return context.expires_at


def _refusal(exc: Exception) -> str:
    return str(exc) if isinstance(exc, NotFound) else type(exc).__name__


async def _read_start(websocket: WebSocket) -> StartMessage | None:
    """The stream's `start` message; closes the socket (1008) and returns None without one."""
    try:
        async with asyncio.timeout(_START_TIMEOUT_S):
            while True:
                message = parse_inbound(await websocket.receive_text())
                if isinstance(message, StartMessage):
                    return message
                if not isinstance(message, ConnectedMessage):
                    raise MediaStreamError(f"expected start, got {type(message).__name__}")
    except (WebSocketDisconnect, RuntimeError):
        return None
    except (TimeoutError, MediaStreamError) as exc:
        reason = "no start message" if isinstance(exc, TimeoutError) else str(exc)
        logger.warning("media stream refused before start: %s", reason)
        await websocket.close(POLICY_VIOLATION, "expected a start message")
        return None
