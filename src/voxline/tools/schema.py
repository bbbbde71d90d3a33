"""A light JSON Schema check for tool arguments: type, required, properties, items, enum.

Enough to catch an LLM's malformed tool call before a request leaves the process; keywords it
does not know are ignored (accepted), as JSON Schema itself prescribes.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

_TYPE_CHECKS: dict[str, Callable[[Any], bool]] = {
    "object": lambda value: isinstance(value, dict),
    "array": lambda value: isinstance(value, list),
    "string": lambda value: isinstance(value, str),
    # bool is an int in Python, never in JSON.
    "integer": lambda value: (
        (isinstance(value, int) and not isinstance(value, bool))
        or (isinstance(value, float) and value.is_integer())
    ),
    "number": lambda value: isinstance(value, int | float) and not isinstance(value, bool),
    "boolean": lambda value: isinstance(value, bool),
    "null": lambda value: value is None,
}


def validate(instance: Any, schema: Mapping[str, Any]) -> list[str]:
    """The ways `instance` breaks `schema`, each naming where (empty when it is valid)."""
    errors: list[str] = []
    _check(instance, schema, "arguments", errors)
    return errors


def _check(instance: Any, schema: Mapping[str, Any], path: str, errors: list[str]) -> None:
    expected = schema.get("type")
    if expected is not None:
        names = [expected] if isinstance(expected, str) else list(expected)
        if not any(_TYPE_CHECKS.get(name, lambda _: True)(instance) for name in names):
            errors.append(f"{path} must be of type {' or '.join(names)}")
            return
    enum = schema.get("enum")
    if isinstance(enum, list) and not any(_same(instance, option) for option in enum):
        choices = ", ".join(repr(option) for option in enum)
        errors.append(f"{path} must be one of {choices}")
    if isinstance(instance, dict):
        for name in schema.get("required", ()):
            if name not in instance:
                errors.append(f"{path}.{name} is required")
        properties = schema.get("properties", {})
        for name, value in instance.items():
            sub = properties.get(name)
            if isinstance(sub, Mapping):
                _check(value, sub, f"{path}.{name}", errors)
    elif isinstance(instance, list):
        items = schema.get("items")
        if isinstance(items, Mapping):
            for index, value in enumerate(instance):
                _check(value, items, f"{path}[{index}]", errors)


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, bool) or isinstance(b, bool):
        # Keep True distinct from 1, as JSON does.
        return type(a) is type(b) and a == b
    return bool(a == b)
