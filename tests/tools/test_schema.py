from typing import Any

import pytest

from voxline.tools.schema import validate

SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "city": {"type": "string"},
        "days": {"type": "integer"},
        "unit": {"type": "string", "enum": ["c", "f"]},
        "tags": {"type": "array", "items": {"type": "string"}},
        "when": {"type": "object", "properties": {"hour": {"type": "number"}}},
    },
    "required": ["city"],
}


def test_valid_arguments_give_no_errors() -> None:
    args = {"city": "Oslo", "days": 3, "unit": "c", "tags": ["a"], "when": {"hour": 9.5}}
    assert validate(args, SCHEMA) == []


def test_missing_required_property_is_reported() -> None:
    assert validate({}, SCHEMA) == ["arguments.city is required"]


def test_wrong_type_is_reported_with_its_path() -> None:
    assert validate({"city": 5}, SCHEMA) == ["arguments.city must be of type string"]


def test_value_outside_enum_is_reported() -> None:
    assert validate({"city": "Oslo", "unit": "k"}, SCHEMA) == [
        "arguments.unit must be one of 'c', 'f'"
    ]


def test_nested_object_properties_are_checked() -> None:
    errors = validate({"city": "Oslo", "when": {"hour": "nine"}}, SCHEMA)
    assert errors == ["arguments.when.hour must be of type number"]


def test_array_items_are_checked() -> None:
    errors = validate({"city": "Oslo", "tags": ["a", 2]}, SCHEMA)
    assert errors == ["arguments.tags[1] must be of type string"]


@pytest.mark.parametrize("value", [True, 2.5, "3"])
def test_integer_rejects_booleans_fractions_and_strings(value: Any) -> None:
    assert validate({"city": "Oslo", "days": value}, SCHEMA) != []


def test_integer_accepts_whole_float() -> None:
    assert validate({"city": "Oslo", "days": 3.0}, SCHEMA) == []


def test_boolean_does_not_match_numeric_enum_member() -> None:
    assert validate(True, {"enum": [1, 2]}) == ["arguments must be one of 1, 2"]


def test_union_types_accept_any_listed_type() -> None:
    assert validate(None, {"type": ["string", "null"]}) == []


def test_non_object_arguments_are_reported() -> None:
    assert validate([1], SCHEMA) == ["arguments must be of type object"]


def test_unknown_keywords_and_extra_properties_are_accepted() -> None:
    schema = {"type": "object", "properties": {}, "minProperties": 5}
    assert validate({"anything": 1}, schema) == []
