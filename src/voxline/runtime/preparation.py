"""Work done while the greeting plays, so that the first answer is as fast as the tenth."""

from __future__ import annotations

import logging

from voxline.agent_spec import Limits
from voxline.providers.base import ChatMessage, PrefillingLlmSession, ToolDefinition
from voxline.runtime.context import Conversation
from voxline.runtime.line_cache import VoiceLines
from voxline.runtime.provider_connections import ProviderConnections
from voxline.runtime.speech import synthesize_line

logger = logging.getLogger(__name__)


async def prefill_llm(
    connections: ProviderConnections,
    conversation: Conversation,
    greeting: str,
    tools: tuple[ToolDefinition, ...],
) -> None:
    """Let a model with a prompt cache evaluate the context while the greeting plays."""
    llm = await connections.llm()
    if not isinstance(llm, PrefillingLlmSession):
        return
    # The greeting joins the context once heard; prefill as if it was heard in full.
    pending = [ChatMessage(role="assistant", content=greeting)] if greeting else []
    await llm.prefill(conversation.request(pending, tools=tools))


async def warm_fixed_lines(
    connections: ProviderConnections, lines: VoiceLines, limits: Limits
) -> None:
    """Synthesize the apology, filler, goodbye and re-prompt lines into the line cache, so
    they play at once (the apology even when TTS fails later)."""
    texts = {
        limits.apology_message,
        limits.tool_filler_message,
        limits.goodbye_message,
        limits.idle_reprompt_message,
    }
    tts = await connections.tts()
    for line in sorted(texts):
        text = line.strip()
        if not text or lines.get(text) is not None:
            continue
        try:
            lines.put(text, await synthesize_line(tts, text, lines.rate))
        except Exception as exc:
            logger.debug("could not prepare the line %r: %s", text, exc)
