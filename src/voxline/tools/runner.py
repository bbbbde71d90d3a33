"""Runs an agent's tools for one call: built-ins and signed webhooks, never raising on failure."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping, Sequence
from types import MappingProxyType
from typing import Any

import httpx

from voxline.agent_spec import EndCallTool, ToolSpec, TransferCallTool, fill_placeholders
from voxline.providers.base import ToolCall, ToolDefinition
from voxline.tools.builtins import END_CALL_PARAMETERS, TRANSFER_PARAMETERS, builtin_result
from voxline.tools.outcome import ToolAction, ToolOutcome, error_content
from voxline.tools.schema import validate
from voxline.tools.webhook import call_webhook

logger = logging.getLogger(__name__)

_NO_VARIABLES: Mapping[str, str] = MappingProxyType({})
_MAX_NAME_IN_ERROR = 64


class ToolRunner:
    """One call's tools. `definitions()` goes into every LLM request; `run`/`run_all` execute
    the calls the LLM asks for and always return an outcome (failures are content for the LLM).
    `variables` fill `{{placeholders}}` in tool descriptions, as in the system prompt."""

    def __init__(
        self,
        tools: Sequence[ToolSpec],
        *,
        http: httpx.AsyncClient,
        signing_secret: bytes,
        session_id: str,
        variables: Mapping[str, str] = _NO_VARIABLES,
    ) -> None:
        if not signing_secret:
            raise ValueError("signing_secret must not be empty: webhook requests are signed")
        self._tools: dict[str, ToolSpec] = {tool.name: tool for tool in tools}
        self._http = http
        self._secret = signing_secret
        self._session_id = session_id
        values = dict(variables)
        self._definitions = tuple(
            ToolDefinition(
                name=tool.name,
                description=fill_placeholders(tool.description, values),
                parameters=_parameters(tool),
            )
            for tool in tools
        )

    def definitions(self) -> tuple[ToolDefinition, ...]:
        """The tools as the LLM sees them: name, description, JSON Schema of the arguments."""
        return self._definitions

    async def run(self, call: ToolCall) -> ToolOutcome:
        """Execute one call. Unknown tools, invalid arguments and endpoint failures give
        `ok=False` with an error message as content; only cancellation propagates."""
        started = time.perf_counter()
        ok, content, action = await self._execute(call)
        duration_ms = (time.perf_counter() - started) * 1000
        return ToolOutcome(call, ok, content, action, duration_ms)

    async def run_all(self, calls: Sequence[ToolCall]) -> list[ToolOutcome]:
        """Execute the calls of one LLM step concurrently; outcomes in the order of `calls`."""
        return list(await asyncio.gather(*(self.run(call) for call in calls)))

    async def _execute(self, call: ToolCall) -> tuple[bool, str, ToolAction | None]:
        spec = self._tools.get(call.name)
        if spec is None:
            return False, error_content(f"unknown tool: {call.name[:_MAX_NAME_IN_ERROR]}"), None
        errors = validate(call.arguments, _parameters(spec))
        if errors:
            return False, error_content("invalid arguments: " + "; ".join(errors)), None
        if isinstance(spec, EndCallTool | TransferCallTool):
            content, action = builtin_result(spec)
            return True, content, action
        try:
            ok, content = await call_webhook(
                spec,
                call.arguments,
                http=self._http,
                secret=self._secret,
                session_id=self._session_id,
            )
        except Exception:
            # A bug here must cost one tool result, not the call.
            logger.exception("webhook tool %s failed unexpectedly", spec.name)
            return False, error_content("the tool failed unexpectedly"), None
        return ok, content, None


def _parameters(tool: ToolSpec) -> dict[str, Any]:
    if isinstance(tool, EndCallTool):
        return END_CALL_PARAMETERS
    if isinstance(tool, TransferCallTool):
        return TRANSFER_PARAMETERS
    return tool.parameters
