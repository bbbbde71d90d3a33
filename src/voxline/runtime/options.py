"""Runtime tuning that is not part of an agent's spec (server-wide, or shortened in tests)."""

from __future__ import annotations

from dataclasses import dataclass

from voxline.runtime.context import HISTORY_BUDGET_CHARS
from voxline.runtime.dtmf import DIGIT_TIMEOUT_S
from voxline.runtime.listener import PRE_ROLL_MS
from voxline.runtime.playout import CHUNK_MS, LEAD_MS
from voxline.runtime.response import MAX_TOOL_ROUNDS, TOOL_FILLER_AFTER_S
from voxline.runtime.turns import PAUSE_MS


@dataclass(frozen=True, slots=True)
class RuntimeOptions:
    pause_ms: float = PAUSE_MS
    """Silence after which STT is finalized and the reply prepared speculatively."""
    pre_roll_ms: int = PRE_ROLL_MS
    """Audio before confirmed speech that STT also gets."""
    playout_lead_ms: int = LEAD_MS
    """How far ahead of real time agent audio may be sent."""
    playout_chunk_ms: int = CHUNK_MS
    """Agent audio is sent in chunks of this length, each followed by a mark."""
    dtmf_timeout_s: float = DIGIT_TIMEOUT_S
    """Keypad input is complete this long after the last digit (or at '#')."""
    tool_filler_after_s: float = TOOL_FILLER_AFTER_S
    """Tools slower than this get the agent's filler line spoken."""
    max_tool_rounds: int = MAX_TOOL_ROUNDS
    history_budget_chars: int = HISTORY_BUDGET_CHARS
    warm_fixed_lines: bool = True
    """Synthesize the apology, filler, goodbye and re-prompt lines into the cache early,
    so they play at once (and the apology even when TTS has failed)."""
