"""What happens in a call, as one typed, versioned union of events.

The runtime publishes every event through its journal, which numbers them (`seq`, from 1, in
the order they happened) and stamps them (`at_ms`, since the call started). Clients (the
browser protocol), live events, metrics and the console all read these same models; JSON is
camelCase (`model_dump(by_alias=True)`). `EVENTS_VERSION` changes when a field is removed or
changes meaning; adding a field or an event type does not change it.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter
from pydantic.alias_generators import to_camel

EVENTS_VERSION = 1


class _Event(BaseModel):
    model_config = ConfigDict(frozen=True, alias_generator=to_camel, populate_by_name=True)

    seq: int = Field(default=0, description="1, 2, 3... in the order the call's events happened.")
    at_ms: int = Field(default=0, description="Milliseconds since the call started.")


class SessionStarted(_Event):
    """The call was taken by a server process (live events only: `seq` 0, before the
    runtime's own events)."""

    type: Literal["session.started"] = "session.started"
    agent_id: str
    channel: Literal["phone", "web"]
    direction: Literal["inbound", "outbound"]


class TranscriptPartial(_Event):
    """The recognizer's interim guess at what the caller is saying."""

    type: Literal["transcript.partial"] = "transcript.partial"
    text: str


class TranscriptFinal(_Event):
    """A caller turn, as committed to the conversation (spoken, typed or keyed)."""

    type: Literal["transcript.final"] = "transcript.final"
    text: str
    source: Literal["speech", "text", "dtmf"]


class TranscriptBackchannel(_Event):
    """The caller acknowledged ("yeah", "mm-hmm") while the agent spoke; the agent went on.
    It is in the transcript, not in the conversation the LLM sees."""

    type: Literal["transcript.backchannel"] = "transcript.backchannel"
    text: str


class AgentText(_Event):
    """A clause of an agent message starts to be heard (the message so far is `response`'s)."""

    type: Literal["agent.text"] = "agent.text"
    response: str
    text: str


class AgentInterrupted(_Event):
    """The caller cut an agent message short: `heard_text` is what they heard of `text`."""

    type: Literal["agent.interrupted"] = "agent.interrupted"
    response: str
    heard_text: str
    text: str


class AgentResumed(_Event):
    """An interruption brought no words (a noise, a cough, an acknowledgement that stopped
    the agent): the agent goes on with `text`, the unheard rest of its message. A false
    interruption, counted by `voxline_false_interruptions_total`."""

    type: Literal["agent.resumed"] = "agent.resumed"
    text: str


class ToolCalled(_Event):
    type: Literal["tool.call"] = "tool.call"
    id: str
    name: str
    arguments: dict[str, Any]


class ToolResult(_Event):
    type: Literal["tool.result"] = "tool.result"
    id: str
    name: str
    ok: bool
    content: str
    duration_ms: int


class TurnMetricsEvent(_Event):
    """One answered turn's latency accounting (see `runtime.metrics`)."""

    type: Literal["turn.metrics"] = "turn.metrics"
    turn: int
    end_of_turn_wait_ms: float | None = None
    stt_ms: float | None = None
    llm_first_token_ms: float | None = None
    first_clause_ms: float | None = None
    tts_first_byte_ms: float | None = None
    turn_latency_ms: float | None = None
    overhead_ms: float | None = None
    interrupted: bool = False


class SessionEnded(_Event):
    """The call is over; always its last event."""

    type: Literal["session.ended"] = "session.ended"
    reason: str
    first_response_ms: float | None = None
    duration_ms: int | None = None
    error: str | None = None


CallEvent = Annotated[
    SessionStarted
    | TranscriptPartial
    | TranscriptFinal
    | TranscriptBackchannel
    | AgentText
    | AgentInterrupted
    | AgentResumed
    | ToolCalled
    | ToolResult
    | TurnMetricsEvent
    | SessionEnded,
    Field(discriminator="type"),
]
CALL_EVENT: TypeAdapter[CallEvent] = TypeAdapter(CallEvent)
"""Parses any call event from its JSON form (`CALL_EVENT.validate_json(...)`)."""
