"""Keeps credentials that travel in URLs (browser session tokens) out of the server's logs."""

from __future__ import annotations

import logging
import re

_SECRET_QUERY = re.compile(r"((?:^|[?&])(?:token|api_key|key)=)[^&\s\"']+", re.IGNORECASE)
_REDACTED = r"\1[redacted]"
LOGGERS = ("uvicorn.error", "uvicorn.access", "uvicorn")


def redact(text: str) -> str:
    """`text` with the values of secret-looking query parameters replaced."""
    return _SECRET_QUERY.sub(_REDACTED, text)


class RedactSecrets(logging.Filter):
    """Rewrites a record's message and string arguments before any handler formats it."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str):
            record.msg = redact(record.msg)
        if isinstance(record.args, tuple):
            record.args = tuple(redact(arg) if isinstance(arg, str) else arg for arg in record.args)
        return True


def install() -> None:
    """Add the filter to the web server's loggers (call after they are configured)."""
    for name in LOGGERS:
        logging.getLogger(name).addFilter(RedactSecrets())
