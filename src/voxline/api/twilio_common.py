"""What every endpoint Twilio calls shares: its form parameters, the `X-Twilio-Signature`
check against the public URL, and the signed relay stream that `<Connect><Stream>` opens."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from fastapi import Request

from voxline.api.errors import ApiError
from voxline.app_state import AppState
from voxline.security.relay import RelayContext, issue_relay_token
from voxline.store.models import AgentRow
from voxline.telephony.twilio.signature import public_request_url, validate_twilio_request
from voxline.telephony.twilio.twiml import connect_stream_twiml

logger = logging.getLogger(__name__)

TwilioParams = dict[str, list[str]]


async def twilio_form(request: Request) -> TwilioParams:
    """The form-encoded body, every value of every key (Twilio signs them all)."""
    form = await request.form()
    return {key: [str(value) for value in form.getlist(key)] for key in form}


def first(params: TwilioParams, key: str) -> str:
    values = params.get(key)
    return values[0] if values else ""


def check_twilio_signature(request: Request, state: AppState, params: TwilioParams) -> None:
    """A 403 unless the request carries Twilio's signature of the public URL and `params`."""
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


@dataclass(frozen=True, slots=True)
class IssuedStream:
    """A session's signed relay, and the TwiML that connects the call to it."""

    stream_url: str
    expires_at: datetime
    twiml: str


def issue_stream(
    state: AppState,
    session_id: str,
    agent: AgentRow,
    instance_id: str | None,
    from_number: str,
    to_number: str,
) -> IssuedStream:
    """Sign a single-use relay token for the session: `<Connect><Stream>` with it as the
    `relay` `<Parameter>` (Twilio strips query strings from stream URLs)."""
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
    return IssuedStream(
        stream_url=stream_url,
        expires_at=issued.expires_at,
        twiml=connect_stream_twiml(stream_url, {"relay": token}),
    )
