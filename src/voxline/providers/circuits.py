"""Circuit breakers shared by every call of the process, one per provider.

A provider that fails before its first output opens its circuit for a cool-down: during it,
every call's fallback chain tries it last (still tried when every other member fails), so a
dead provider costs its timeout once per cool-down, not once per call. Its first success
closes the circuit. Providers are process-wide objects (the registry caches them), so the
circuit is keyed by the provider object itself.
"""

from __future__ import annotations

import time
from collections.abc import Callable

COOLDOWN_S = 30.0


class Circuit:
    """One provider's circuit: open from a failure until `cooldown_s` later or a success."""

    def __init__(
        self, cooldown_s: float = COOLDOWN_S, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._cooldown_s = cooldown_s
        self._clock = clock
        self._open_until = 0.0

    @property
    def open(self) -> bool:
        return self._clock() < self._open_until

    def trip(self) -> None:
        """The provider failed before any output: pass it over for the cool-down."""
        self._open_until = self._clock() + self._cooldown_s

    def close(self) -> None:
        """The provider produced output: use it again."""
        self._open_until = 0.0


class Circuits:
    """The circuits of one process, by provider object."""

    def __init__(self, cooldown_s: float = COOLDOWN_S) -> None:
        self._cooldown_s = cooldown_s
        self._by_provider: dict[int, tuple[object, Circuit]] = {}

    def of(self, provider: object) -> Circuit:
        """`provider`'s circuit (closed when first asked for)."""
        key = id(provider)
        held = self._by_provider.get(key)
        # The provider is held with its circuit so that its id is never reused meanwhile.
        if held is None or held[0] is not provider:
            held = (provider, Circuit(self._cooldown_s))
            self._by_provider[key] = held
        return held[1]


CIRCUITS = Circuits()
"""The process's circuits (every fallback chain of every call uses these)."""
