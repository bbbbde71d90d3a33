"""Prefixed, time-sortable resource IDs (`agent_01jd...`).

An ID is `<prefix>_` followed by 26 lowercase Crockford base32 characters: 48 bits of
milliseconds since the epoch, then 80 random bits. IDs of one kind therefore sort by creation
time (to the millisecond), which is what cursor pagination orders by.
"""

from __future__ import annotations

import re
import secrets
import time
from typing import Literal

IdPrefix = Literal["ws", "key", "agent", "inst", "sess", "task", "note", "proc"]

_ALPHABET = "0123456789abcdefghjkmnpqrstvwxyz"
_BODY_LENGTH = 26
_BODY = re.compile(rf"^[{_ALPHABET}]{{{_BODY_LENGTH}}}$")


def new_id(prefix: IdPrefix) -> str:
    """A fresh ID such as `agent_01jd3x4m5n6p7q8r9s0tvwxyzab`."""
    value = (time.time_ns() // 1_000_000) << 80 | secrets.randbits(80)
    chars = []
    for _ in range(_BODY_LENGTH):
        chars.append(_ALPHABET[value & 31])
        value >>= 5
    return f"{prefix}_{''.join(reversed(chars))}"


def is_valid_id(value: str, prefix: IdPrefix) -> bool:
    """Whether `value` is well-formed for `prefix` (says nothing about whether it exists)."""
    head, sep, body = value.partition("_")
    return sep == "_" and head == prefix and _BODY.match(body) is not None
