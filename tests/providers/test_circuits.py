"""Circuits shared by every call of the process: a provider that failed is tried last."""

from __future__ import annotations

import asyncio

from tests.providers.cloud_llm.test_fallback import HELLO, _Down, collect, scripted, text_of
from voxline.observability.metrics import exposition
from voxline.providers.circuits import Circuit, Circuits
from voxline.providers.fallback import FallbackLanguageModel
from voxline.simulator.metrics_scrape import sample


async def test_a_provider_that_failed_in_one_call_is_passed_over_by_the_next() -> None:
    down, backup = _Down(), scripted("From the backup.")
    circuits = Circuits(30.0)
    # Two agents' chains (two calls), sharing the process's providers and circuits.
    first_call = await FallbackLanguageModel([down, backup], circuits=circuits).open()
    second_call = await FallbackLanguageModel([down, backup], circuits=circuits).open()

    assert text_of(await collect(first_call, HELLO)) == "From the backup."
    assert text_of(await collect(second_call, HELLO)) == "From the backup."
    assert down.attempts == 1


async def test_the_circuit_closes_after_its_cooldown() -> None:
    down, backup = _Down(), scripted("From the backup.")
    circuits = Circuits(0.05)
    await collect(await FallbackLanguageModel([down, backup], circuits=circuits).open(), HELLO)
    await asyncio.sleep(0.1)
    await collect(await FallbackLanguageModel([down, backup], circuits=circuits).open(), HELLO)

    assert down.attempts == 2


def test_a_circuit_opens_on_failure_and_closes_on_success() -> None:
    now = [100.0]
    circuit = Circuit(10.0, clock=lambda: now[0])
    assert not circuit.open
    circuit.trip()
    assert circuit.open
    now[0] += 10.5
    assert not circuit.open
    circuit.trip()
    circuit.close()
    assert not circuit.open


async def test_errors_fallbacks_and_skips_are_counted_by_provider() -> None:
    def count(name: str) -> float:
        return sample(exposition().decode(), name, role="llm", provider="down")

    before = [
        count(f"voxline_provider_{m}_total") for m in ("errors", "fallbacks", "circuit_skips")
    ]
    down, backup = _Down(), scripted("From the backup.")
    session = await FallbackLanguageModel([down, backup], circuits=Circuits()).open()
    await collect(session, HELLO)
    await collect(session, HELLO)
    after = [count(f"voxline_provider_{m}_total") for m in ("errors", "fallbacks", "circuit_skips")]

    assert [b - a for a, b in zip(before, after, strict=True)] == [1, 1, 1]
