"""Placing a simulated inbound call on a running voxline server, the two ways a call arrives:

- `dial_as_twilio`: the voice webhook Twilio posts when a number rings (form-encoded, signed
  with `X-Twilio-Signature` by the official `twilio` library), answered with TwiML;
- `dial_with_api_key`: `POST /v1/sessions/twilio` with JSON and an API key.

Either way the answer's TwiML says where to stream the call and with which relay token.
"""

from __future__ import annotations

import secrets
import xml.etree.ElementTree as ET
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import httpx
from twilio.request_validator import RequestValidator

_PATH = "/v1/sessions/twilio"


class DialError(Exception):
    """The server did not answer the call with a media stream to connect."""


@dataclass(frozen=True, slots=True)
class DialedCall:
    """Where to connect the call's media stream; `session_id` when the server said it."""

    call_sid: str
    account_sid: str
    stream_url: str
    relay: str
    session_id: str | None


@dataclass(frozen=True, slots=True)
class CallParties:
    """The caller's and the called number."""

    from_number: str = "+14155550123"
    to_number: str = "+18005550100"


async def dial_as_twilio(
    http: httpx.AsyncClient,
    server_url: str,
    agent_id: str,
    auth_token: str,
    parties: CallParties | None = None,
) -> DialedCall:
    """Post a signed voice webhook for a new inbound call to `agent_id`, as Twilio would.

    The signature covers the URL posted to, so `server_url` must be the server's public base
    URL (VOXLINE_PUBLIC_BASE_URL on the server).
    """
    parties = parties or CallParties()
    call_sid = "CA" + secrets.token_hex(16)
    account_sid = "AC" + secrets.token_hex(16)
    url = str(httpx.URL(server_url.rstrip("/") + _PATH, params={"agentId": agent_id}))
    params = {
        "CallSid": call_sid,
        "AccountSid": account_sid,
        "From": parties.from_number,
        "To": parties.to_number,
        "Caller": parties.from_number,
        "Called": parties.to_number,
        "CallStatus": "ringing",
        "Direction": "inbound",
        "ApiVersion": "2010-04-01",
    }
    signature = RequestValidator(auth_token).compute_signature(url, params)
    response = await _post(http, url, data=params, headers={"X-Twilio-Signature": signature})
    if response.status_code == 403:
        raise DialError(
            "the server refused the webhook's signature: use the server's "
            "VOXLINE_TWILIO_AUTH_TOKEN, and its VOXLINE_PUBLIC_BASE_URL as the server URL"
        )
    _check_ok(response)
    stream_url, relay = parse_connect_twiml(response.text)
    return DialedCall(call_sid, account_sid, stream_url, relay, session_id=None)


async def dial_with_api_key(
    http: httpx.AsyncClient,
    server_url: str,
    agent_id: str,
    api_key: str,
    parties: CallParties | None = None,
) -> DialedCall:
    """Create the call's session through the JSON API and connect as the TwiML says."""
    parties = parties or CallParties()
    response = await _post(
        http,
        server_url.rstrip("/") + _PATH,
        json={"agentId": agent_id, "from": parties.from_number, "to": parties.to_number},
        headers={"Authorization": f"Bearer {api_key}"},
    )
    _check_ok(response)
    body = _json_object(response)
    twiml, session_id = body.get("twiml"), body.get("sessionId")
    if not isinstance(twiml, str) or not isinstance(session_id, str):
        raise DialError(f"unexpected answer from {_PATH}: {response.text[:200]}")
    stream_url, relay = parse_connect_twiml(twiml)
    return DialedCall(
        call_sid="CA" + secrets.token_hex(16),
        account_sid="AC" + secrets.token_hex(16),
        stream_url=stream_url,
        relay=relay,
        session_id=session_id,
    )


def parse_connect_twiml(twiml: str) -> tuple[str, str]:
    """(stream URL, relay token) of `<Connect><Stream>` TwiML; DialError for anything else."""
    try:
        root = ET.fromstring(twiml)
    except ET.ParseError as exc:
        raise DialError(f"the server's answer is not TwiML: {twiml[:200]!r}") from exc
    stream = root.find("./Connect/Stream")
    if stream is None:
        said = " ".join(say.text or "" for say in root.iter("Say")).strip()
        detail = f": it says {said!r}" if said else ""
        raise DialError(f"the server did not connect the call to a media stream{detail}")
    relay = stream.find("./Parameter[@name='relay']")
    url = stream.attrib.get("url")
    if relay is None or not url:
        raise DialError("the TwiML's <Stream> lacks its url or relay parameter")
    return url, relay.attrib.get("value", "")


async def _post(http: httpx.AsyncClient, url: str, **kwargs: Any) -> httpx.Response:
    try:
        return await http.post(url, **kwargs)
    except httpx.HTTPError as exc:
        raise DialError(f"could not reach the server at {url}: {exc}") from exc


def _check_ok(response: httpx.Response) -> None:
    if response.status_code == 200:
        return
    message = response.text[:200]
    if response.headers.get("content-type", "").startswith("application/json"):
        error = _json_object(response).get("error")
        if isinstance(error, Mapping) and isinstance(error.get("message"), str):
            message = error["message"]
    raise DialError(f"the server answered {response.status_code}: {message}")


def _json_object(response: httpx.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError as exc:
        raise DialError(f"the server's answer is not JSON: {response.text[:200]!r}") from exc
    if not isinstance(body, dict):
        raise DialError(f"the server's answer is not a JSON object: {response.text[:200]!r}")
    return body
