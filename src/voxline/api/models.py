"""Shapes shared by every endpoint: the camelCase base model, errors and list pages."""

from __future__ import annotations

from typing import Generic, TypeVar

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

T = TypeVar("T")


class ApiModel(BaseModel):
    """Base of request and response bodies: camelCase in JSON, field names in Python."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid")


class ErrorDetail(ApiModel):
    type: str = Field(
        description="invalid_request_error, authentication_error, not_found_error, "
        "conflict_error, validation_error, unavailable_error or api_error."
    )
    message: str = Field(description="What went wrong, for a human.")
    param: str | None = Field(
        default=None, description="The request field at fault (dotted path), when there is one."
    )


class ErrorResponse(ApiModel):
    """Every error: `{"error": {"type", "message", "param"}}`."""

    error: ErrorDetail


class ListResponse(ApiModel, Generic[T]):
    """One page of a list, newest first. Pass `nextCursor` as `after` for the next page."""

    data: list[T]
    has_more: bool
    next_cursor: str | None
