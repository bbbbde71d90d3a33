"""One error shape for every failure, FastAPI's own validation errors and unknown routes too."""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import SQLAlchemyError
from starlette.exceptions import HTTPException as StarletteHTTPException

from voxline.api.models import ErrorDetail, ErrorResponse
from voxline.store.errors import Conflict, NotFound
from voxline.store.outage import RETRY_AFTER_S, is_outage

logger = logging.getLogger(__name__)

_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    404: "not_found_error",
    405: "invalid_request_error",
    409: "conflict_error",
    422: "validation_error",
    503: "unavailable_error",
}
_MAX_LISTED_ERRORS = 5


class ApiError(Exception):
    """Raise from a handler to answer with the error shape and `status`."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        param: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.param = param
        self.headers = dict(headers or {})

    def response(self) -> JSONResponse:
        return error_response(self.status, self.message, param=self.param, headers=self.headers)


def error_response(
    status: int, message: str, *, param: str | None = None, headers: Mapping[str, str] | None = None
) -> JSONResponse:
    body = ErrorResponse(
        error=ErrorDetail(type=_TYPES.get(status, "api_error"), message=message, param=param)
    )
    return JSONResponse(body.model_dump(mode="json"), status_code=status, headers=headers)


def validation_error(errors: Sequence[Mapping[str, Any]], body: Any) -> ApiError:
    """A 422 from pydantic errors; `param` is the first error's field as the client spelled it."""
    described = [(_param(error, body), str(error.get("msg", "invalid value"))) for error in errors]
    parts = [f"{param}: {msg}" if param else msg for param, msg in described]
    if len(parts) > _MAX_LISTED_ERRORS:
        parts = [*parts[:_MAX_LISTED_ERRORS], f"and {len(parts) - _MAX_LISTED_ERRORS} more"]
    return ApiError(422, "; ".join(parts), param=described[0][0] if described else None)


def error_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses=` entries declaring the error shape for these statuses."""
    return {status: {"model": ErrorResponse} for status in statuses}


def install_error_handlers(app: FastAPI) -> None:
    for exc_class in (
        ApiError,
        NotFound,
        Conflict,
        RequestValidationError,
        StarletteHTTPException,
        # Handled here rather than as a bare Exception, which Starlette re-raises after
        # answering: an outage is expected, and must not log a traceback per request.
        SQLAlchemyError,
        OSError,
        Exception,
    ):
        app.add_exception_handler(exc_class, _handle)


async def _handle(request: Request, exc: Exception) -> JSONResponse:
    match exc:
        case ApiError():
            return exc.response()
        case NotFound():
            return error_response(404, str(exc), param=exc.param)
        case Conflict():
            return error_response(409, str(exc), param=exc.param)
        case RequestValidationError():
            return _request_validation(exc)
        case StarletteHTTPException():
            return _http_exception(request, exc)
    if is_outage(exc):
        logger.warning(
            "database unavailable in %s %s: %s",
            request.method,
            request.url.path,
            type(exc).__name__,
        )
        return error_response(
            503,
            "The database is unavailable; retry shortly.",
            headers={"Retry-After": str(RETRY_AFTER_S)},
        )
    logger.exception("unhandled error in %s %s", request.method, request.url.path, exc_info=exc)
    return error_response(500, "An internal error occurred.")


def _request_validation(exc: RequestValidationError) -> JSONResponse:
    errors = exc.errors()
    invalid_json = next((e for e in errors if e.get("type") == "json_invalid"), None)
    if invalid_json is not None:
        reason = invalid_json.get("ctx", {}).get("error", "malformed JSON")
        return error_response(400, f"The request body is not valid JSON: {reason}")
    return validation_error(errors, exc.body).response()


def _http_exception(request: Request, exc: StarletteHTTPException) -> JSONResponse:
    message = str(exc.detail)
    # Starlette's routing raises with the bare status phrase; say what was asked instead.
    if exc.status_code == 404 and message == HTTPStatus.NOT_FOUND.phrase:
        message = f"Unknown route: {request.method} {request.url.path}"
    elif exc.status_code == 405 and message == HTTPStatus.METHOD_NOT_ALLOWED.phrase:
        message = f"Method {request.method} is not allowed on {request.url.path}"
    return error_response(exc.status_code, message, headers=exc.headers)


def _param(error: Mapping[str, Any], body: Any) -> str | None:
    """The dotted path of the field at fault, skipping the loc parts that are not fields
    (pydantic inserts union tags, e.g. `llm.scripted.firstTokenMs`)."""
    loc = tuple(error.get("loc", ()))
    if loc and loc[0] in ("query", "path", "header", "cookie"):
        return ".".join(str(part) for part in loc[1:]) or None
    if loc and loc[0] == "body":
        loc = loc[1:]
    parts: list[str] = []
    node = _as_json(body)
    for index, element in enumerate(loc):
        last = index == len(loc) - 1
        if isinstance(node, dict) and isinstance(element, str) and element in node:
            parts.append(element)
            node = node[element]
        elif isinstance(node, list) and isinstance(element, int) and 0 <= element < len(node):
            parts.append(str(element))
            node = node[element]
        elif last and error.get("type") == "missing" and isinstance(element, str):
            parts.append(element)
    if error.get("type") in ("union_tag_invalid", "union_tag_not_found"):
        discriminator = str(error.get("ctx", {}).get("discriminator", "")).strip("'")
        if discriminator:
            parts.append(discriminator)
    return ".".join(parts) or None


def _as_json(body: Any) -> Any:
    if isinstance(body, bytes | str):
        try:
            return json.loads(body)
        except ValueError:
            return None
    return body
