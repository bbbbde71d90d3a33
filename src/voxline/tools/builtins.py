"""The built-in tools: `end_call` and `transfer_call`. They act on the call, not the world."""

from __future__ import annotations

from typing import Any

from voxline.agent_spec import EndCallTool, TransferCallTool
from voxline.tools.outcome import EndCall, ToolAction, Transfer, json_content

END_CALL_PARAMETERS: dict[str, Any] = {"type": "object", "properties": {}}
# The number is the agent's, never the LLM's: the model only says why.
TRANSFER_PARAMETERS: dict[str, Any] = {
    "type": "object",
    "properties": {
        "reason": {"type": "string", "description": "Why the caller is being transferred."}
    },
}


def builtin_result(spec: EndCallTool | TransferCallTool) -> tuple[str, ToolAction]:
    """The content for the LLM and the action for the runtime of a built-in tool call."""
    if isinstance(spec, EndCallTool):
        return json_content({"status": "ending_call"}), EndCall()
    return json_content({"status": "transferring"}), Transfer(number=spec.number)
