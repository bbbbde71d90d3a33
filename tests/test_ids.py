from __future__ import annotations

import time

import pytest

from voxline.ids import is_valid_id, new_id


def test_id_has_its_prefix_and_a_26_character_body() -> None:
    value = new_id("agent")
    prefix, _, body = value.partition("_")
    assert (prefix, len(body)) == ("agent", 26)
    assert is_valid_id(value, "agent")


def test_ids_are_unique() -> None:
    assert len({new_id("sess") for _ in range(1000)}) == 1000


def test_later_ids_sort_after_earlier_ones() -> None:
    first = new_id("inst")
    time.sleep(0.002)
    assert new_id("inst") > first


@pytest.mark.parametrize(
    "value",
    [
        "inst_01jd3x4m5n6p7q8r9s0tvwxyza",
        "agent_short",
        "agent_01JD3X4M5N6P7Q8R9S0TVWXYZA",
        "agent_01jd3x4m5n6p7q8r9s0tvwxyzu",
        "agent01jd3x4m5n6p7q8r9s0tvwxyza",
        "",
    ],
)
def test_malformed_or_foreign_ids_are_invalid(value: str) -> None:
    assert not is_valid_id(value, "agent")
