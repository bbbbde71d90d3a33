"""Tell a database outage (unreachable, refusing connections, read-only) from a bug.

An outage is worth waiting out: records are spooled and API clients are told to retry. Any
other database error is a fault of the request or of the code and is reported as such.
"""

from __future__ import annotations

from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError

RETRY_AFTER_S = 5
"""What `Retry-After` tells API clients during an outage."""

_CONNECT_REFUSALS = (
    # PostgreSQL SQLSTATEs for "you may not connect now": the role may not log in, the
    # database does not accept connections, the server is starting or shutting down.
    "28000",
    "28P01",
    "55000",
    "57P01",
    "57P02",
    "57P03",
    "08000",
    "08001",
    "08003",
    "08004",
    "08006",
)


def is_outage(exc: BaseException) -> bool:
    """Whether `exc` means the database cannot be used right now (as opposed to a bad query)."""
    if isinstance(exc, OperationalError | InterfaceError):
        return True
    if isinstance(exc, DBAPIError):
        if exc.connection_invalidated:
            return True
        code = getattr(exc.orig, "sqlstate", None) or getattr(exc.orig, "pgcode", None)
        return code in _CONNECT_REFUSALS
    return isinstance(exc, OSError | ConnectionError | TimeoutError)
