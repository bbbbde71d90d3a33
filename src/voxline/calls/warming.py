"""Agents made ready before their first call: models loaded and warm, greeting synthesized.

A new or changed agent would otherwise pay model loading and its greeting's synthesis on its
first call (over a second on a laptop CPU). `AgentWarmer.schedule` does that work in the
background, one agent at a time on the process's inference pool, with the server's keys only
(a provider that needs a workspace secret is left to the call). The greeting, as a call
without instance variables says it, goes into the line cache clause by clause, at the rates
calls play it, under the key the runtime reads. Bounded: at most `max_pending` agents wait
(later requests are dropped, to be warmed by their first call) and each gets `timeout_s`.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence

from voxline.agent_spec import AgentSpec, fill_placeholders
from voxline.audio.resample import resample
from voxline.providers.base import ProviderSet, ProviderUnavailable
from voxline.runtime.line_cache import SHARED_CACHE, LineCache
from voxline.runtime.response import split_clauses
from voxline.runtime.speech import synthesize_line

logger = logging.getLogger(__name__)

CALL_RATES = (8000, 16000)
"""The output rates of a phone line (Twilio) and of the web client."""


class AgentWarmer:
    """Warms agents in the background. `warm_up` loads a spec's models; `build` gives its
    providers (both with the server's credentials)."""

    def __init__(
        self,
        warm_up: Callable[[AgentSpec], Awaitable[None]],
        build: Callable[[AgentSpec], Awaitable[ProviderSet]],
        *,
        cache: LineCache = SHARED_CACHE,
        rates: Sequence[int] = CALL_RATES,
        max_pending: int = 32,
        timeout_s: float = 60.0,
    ) -> None:
        self._warm_up = warm_up
        self._build = build
        self._cache = cache
        self._rates = tuple(rates)
        self._max_pending = max_pending
        self._timeout_s = timeout_s
        self._lock = asyncio.Lock()
        self._tasks: dict[str, asyncio.Task[None]] = {}

    def schedule(self, spec: AgentSpec) -> None:
        """Warm `spec` soon, unless the same providers and greeting are already waiting."""
        key = _key(spec)
        if key in self._tasks:
            return
        if len(self._tasks) >= self._max_pending:
            logger.info("not warming agent %r: %d agents already wait", spec.name, len(self._tasks))
            return
        task = asyncio.create_task(self._run(spec))
        self._tasks[key] = task
        task.add_done_callback(lambda _: self._tasks.pop(key, None))

    async def idle(self) -> None:
        """Wait until every scheduled agent is warm (or given up on)."""
        while self._tasks:
            await asyncio.wait(list(self._tasks.values()))

    async def aclose(self) -> None:
        """Cancel the warming under way and waiting."""
        tasks = list(self._tasks.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def warm(self, spec: AgentSpec) -> None:
        """Load and warm `spec`'s models, then put its greeting in the line cache."""
        await self._warm_up(spec)
        greeting = fill_placeholders(spec.first_message or "", {}).strip()
        if not greeting:
            return
        tts_key = spec.tts.model_dump_json()
        clauses = [c for c in split_clauses(greeting) if self._missing(tts_key, c)]
        if not clauses:
            return
        tts = await (await self._build(spec)).tts.open()
        try:
            for clause in clauses:
                pcm = await synthesize_line(tts, clause, tts.sample_rate)
                for rate in self._rates:
                    self._cache.put(tts_key, clause, rate, resample(pcm, tts.sample_rate, rate))
        finally:
            await tts.aclose()

    def _missing(self, tts_key: str, clause: str) -> bool:
        return any(self._cache.get(tts_key, clause, rate) is None for rate in self._rates)

    async def _run(self, spec: AgentSpec) -> None:
        async with self._lock:
            try:
                await asyncio.wait_for(self.warm(spec), self._timeout_s)
            except ProviderUnavailable as exc:
                # Typically a key only the workspace has: the first call builds it.
                logger.info("agent %r is warmed by its first call: %s", spec.name, exc)
            except Exception as exc:
                logger.warning("could not warm agent %r: %s", spec.name, exc)


def _key(spec: AgentSpec) -> str:
    slots = [slot.spec.model_dump_json() for slot in spec.provider_slots()]
    return f"{spec.language}:{spec.turn_taking.vad}:{slots}:{spec.first_message}"
