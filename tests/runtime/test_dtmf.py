import pytest

from voxline.runtime.dtmf import MAX_DIGITS, DtmfCollector, keypad_text


def test_hash_completes_the_sequence() -> None:
    collector = DtmfCollector()
    assert collector.add("1") is None
    assert collector.add("2") is None
    assert collector.add("#") == "12#"
    assert not collector.pending


def test_flush_returns_the_digits_so_far() -> None:
    collector = DtmfCollector()
    collector.add("4")
    assert collector.flush() == "4"
    assert collector.flush() is None


def test_a_long_sequence_completes_at_the_limit() -> None:
    collector = DtmfCollector()
    results = [collector.add("1") for _ in range(MAX_DIGITS)]
    assert results[-1] == "1" * MAX_DIGITS


def test_invalid_digits_are_rejected() -> None:
    with pytest.raises(ValueError, match="not a DTMF digit"):
        DtmfCollector().add("x")


def test_keypad_text_spells_the_digits() -> None:
    assert keypad_text("123#") == "[keypad: 1 2 3 #]"
