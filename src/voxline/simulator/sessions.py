"""Reading a call back from the server: `GET /v1/sessions/:id` as transcript and turn metrics.

What the server recorded is the other half of a simulated call's story: what it transcribed,
what the agent said (and what of it was heard), and its own latency accounting per turn.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

import httpx

from voxline.runtime.recording import TranscriptItem, TurnMetrics

_TERMINAL = frozenset({"completed", "failed"})
_POLL_S = 0.1


class SessionApiError(Exception):
    """The sessions API could not be read (unreachable, refused, or an unexpected answer)."""


@dataclass(frozen=True, slots=True)
class SessionRecord:
    """A session as the server recorded it."""

    id: str
    status: str
    end_reason: str | None
    first_response_ms: float | None
    transcript: list[TranscriptItem]
    metrics: list[TurnMetrics]

    @property
    def finished(self) -> bool:
        return self.status in _TERMINAL


class SessionsApi:
    """The sessions endpoints, with an API key."""

    def __init__(self, http: httpx.AsyncClient, server_url: str, api_key: str) -> None:
        self._http = http
        self._base = server_url.rstrip("/") + "/v1/sessions"
        self._headers = {"Authorization": f"Bearer {api_key}"}

    async def get(self, session_id: str) -> SessionRecord:
        return parse_session(await self._get(f"{self._base}/{session_id}", {}))

    async def find_by_call_sid(self, agent_id: str, call_sid: str) -> str | None:
        """The id of `agent_id`'s most recent session for Twilio call `call_sid`, if any."""
        page = await self._get(self._base, {"agentId": agent_id, "limit": 20})
        for session in page.get("data", []):
            if isinstance(session, dict) and session.get("callSid") == call_sid:
                found = session.get("id")
                return found if isinstance(found, str) else None
        return None

    async def wait_finished(self, session_id: str, timeout: float) -> SessionRecord:  # noqa: ASYNC109
        """The session once it is completed or failed (the last items are written at the
        end), or as it stands after `timeout` seconds."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            record = await self.get(session_id)
            if record.finished or loop.time() >= deadline:
                return record
            await asyncio.sleep(_POLL_S)

    async def _get(self, url: str, params: dict[str, Any]) -> dict[str, Any]:
        try:
            response = await self._http.get(url, params=params, headers=self._headers)
        except httpx.HTTPError as exc:
            raise SessionApiError(f"could not reach {url}: {exc}") from exc
        if response.status_code != 200:
            raise SessionApiError(f"{url} answered {response.status_code}: {response.text[:200]}")
        try:
            body = response.json()
        except ValueError as exc:
            raise SessionApiError(f"{url} answered something other than JSON") from exc
        if not isinstance(body, dict):
            raise SessionApiError(f"{url} answered something other than a JSON object")
        return body


def parse_session(body: dict[str, Any]) -> SessionRecord:
    """A `GET /v1/sessions/:id` body (camelCase JSON) as a `SessionRecord`."""
    try:
        return SessionRecord(
            id=str(body["id"]),
            status=str(body["status"]),
            end_reason=body.get("endReason"),
            first_response_ms=body.get("firstResponseMs"),
            transcript=[_item(entry) for entry in body.get("transcript", [])],
            metrics=[_metrics(entry) for entry in body.get("metrics", [])],
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise SessionApiError(f"unexpected session JSON: {exc}") from exc


def _item(entry: dict[str, Any]) -> TranscriptItem:
    return TranscriptItem(
        seq=int(entry["seq"]),
        role=entry["role"],
        text=str(entry["text"]),
        at_ms=int(entry["atMs"]),
        interrupted=bool(entry.get("interrupted", False)),
        heard_text=entry.get("heardText"),
        data=dict(entry.get("data") or {}),
    )


def _metrics(entry: dict[str, Any]) -> TurnMetrics:
    def ms(key: str) -> float | None:
        value = entry.get(key)
        return None if value is None else float(value)

    return TurnMetrics(
        turn=int(entry["turn"]),
        end_of_turn_wait_ms=ms("endOfTurnWaitMs"),
        stt_ms=ms("sttMs"),
        llm_first_token_ms=ms("llmFirstTokenMs"),
        first_clause_ms=ms("firstClauseMs"),
        tts_first_byte_ms=ms("ttsFirstByteMs"),
        turn_latency_ms=ms("turnLatencyMs"),
        overhead_ms=ms("overheadMs"),
        interrupted=bool(entry.get("interrupted", False)),
    )
