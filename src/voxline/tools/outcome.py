"""What running a tool produces: the content the LLM sees, and any action for the runtime."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from voxline.providers.base import ToolCall


@dataclass(frozen=True, slots=True)
class EndCall:
    """The runtime says goodbye, waits until it is heard, then hangs up."""


@dataclass(frozen=True, slots=True)
class Transfer:
    """The runtime hands the call over to `number` (E.164)."""

    number: str


ToolAction = EndCall | Transfer


@dataclass(frozen=True, slots=True)
class ToolOutcome:
    """One tool call's result. `content` is JSON text for the LLM, errors included."""

    call: ToolCall
    ok: bool
    content: str
    action: ToolAction | None = None
    duration_ms: float = 0.0


def json_content(value: Any) -> str:
    """Compact JSON text, the form every `ToolOutcome.content` takes."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def error_content(message: str) -> str:
    """The content of a failed tool call: a short message the LLM can act on."""
    return json_content({"error": message})
