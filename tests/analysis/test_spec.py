"""The agent's analysis section: its JSON Schema is checked when the agent is saved."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from voxline.agent_spec import AgentSpec, CallAnalysis, OpenAiLlm


def test_a_valid_schema_and_a_named_model_are_kept() -> None:
    spec = AgentSpec.model_validate(
        {
            "name": "a",
            "analysis": {
                "dataSchema": {"type": "object", "properties": {"booked": {"type": "boolean"}}},
                "successCriteria": "booked",
                "rememberSummary": False,
                "llm": {"provider": "openai", "model": "gpt-4o-mini"},
            },
        }
    )
    assert spec.analysis is not None
    assert isinstance(spec.analysis.llm, OpenAiLlm)
    assert spec.analysis.remember_summary is False


def test_no_analysis_by_default() -> None:
    assert AgentSpec(name="a").analysis is None


@pytest.mark.parametrize(
    ("schema", "message"),
    [
        ({"type": "object", "properties": {"booked": {"type": "yes-no"}}}, "properties/booked"),
        ({"type": "object", "required": "booked"}, "required"),
        ({"type": "array"}, "type 'object'"),
        (
            {"type": "object", "properties": {"a": {"$ref": "https://example.com/s.json"}}},
            "only local references",
        ),
    ],
)
def test_an_invalid_schema_is_refused_with_where(schema: dict[str, object], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        CallAnalysis(data_schema=schema)


def test_a_local_reference_is_allowed() -> None:
    schema = {
        "type": "object",
        "$defs": {"day": {"type": "string"}},
        "properties": {"date": {"$ref": "#/$defs/day"}},
    }
    assert CallAnalysis(data_schema=schema).data_schema == schema
