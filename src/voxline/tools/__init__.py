"""Agent tools: built-ins that act on the call (end, transfer) and signed HTTP webhooks."""

from voxline.tools.outcome import EndCall, ToolAction, ToolOutcome, Transfer
from voxline.tools.runner import ToolRunner
from voxline.tools.signing import SESSION_HEADER, SIGNATURE_HEADER, sign, verify_signature

__all__ = [
    "SESSION_HEADER",
    "SIGNATURE_HEADER",
    "EndCall",
    "ToolAction",
    "ToolOutcome",
    "ToolRunner",
    "Transfer",
    "sign",
    "verify_signature",
]
