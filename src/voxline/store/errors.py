"""What repositories raise. The API maps them onto its error shape (404, 409)."""

from __future__ import annotations

_EXCERPT_CHARS = 64


def excerpt(value: str) -> str:
    """`value` quoted for an error message, cut to a short prefix: never echo a client's
    megabytes back."""
    if len(value) <= _EXCERPT_CHARS:
        return repr(value)
    return repr(value[:_EXCERPT_CHARS]) + f"... ({len(value)} characters)"


class StoreError(Exception):
    """Base of the store's own errors."""


class NotFound(StoreError):
    """No such resource in this workspace (another workspace's resources do not exist here)."""

    def __init__(self, kind: str, resource_id: str, *, param: str | None = None) -> None:
        super().__init__(f"No such {kind}: {excerpt(resource_id)}")
        self.kind = kind
        self.resource_id = resource_id
        self.param = param


class Conflict(StoreError):
    """The change contradicts the current state (a duplicate, a resource still in use)."""

    def __init__(self, message: str, *, param: str | None = None) -> None:
        super().__init__(message)
        self.param = param
