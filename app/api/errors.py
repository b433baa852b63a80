"""Errors as JSON with a clear message: ``{"status": 404, "error": "...", "detail": ...}``."""

from __future__ import annotations

from typing import Any

import msgspec
import structlog
from litestar import Request, Response
from litestar.exceptions import HTTPException, ValidationException
from litestar.openapi.datastructures import ResponseSpec
from litestar.status_codes import HTTP_400_BAD_REQUEST, HTTP_500_INTERNAL_SERVER_ERROR

log = structlog.get_logger(__name__)


class ErrorBody(msgspec.Struct, frozen=True):
    """Every error response: the status, a message saying what and why, and details."""

    status: int
    error: str
    detail: Any | None = None


_WHEN = {
    400: "A parameter or body field is invalid; the message names it.",
    401: "No credential: this endpoint needs an API key with one of its roles "
    "(Authorization: Bearer sak_…).",
    403: "The credential is refused: no live key or token (unknown, revoked), a key of "
    "another role, or a store manager's key for another store.",
    404: "The store or sku is not known.",
    415: "The body is not of the media type this endpoint takes.",
    422: "The CSV has bad rows; every line and reason is listed and nothing was applied.",
}


def error_responses(*codes: int) -> dict[int, ResponseSpec]:
    """OpenAPI entries for the error statuses an endpoint can answer with."""
    return {
        code: ResponseSpec(
            data_container=ErrorBody, description=_WHEN[code], generate_examples=False
        )
        for code in codes
    }


def _http_error(request: Request[Any, Any, Any], exc: HTTPException) -> Response[dict[str, Any]]:
    body: dict[str, Any] = {"status": exc.status_code, "error": exc.detail}
    if exc.extra:
        body["detail"] = exc.extra
    return Response(body, status_code=exc.status_code, headers=exc.headers)


def _field_problem(field: Any) -> str | None:
    if not isinstance(field, dict) or not field.get("key"):
        return None
    message = str(field.get("message") or "").strip()
    return f"{field['key']} ({message})" if message else str(field["key"])


def _validation_error(
    request: Request[Any, Any, Any], exc: ValidationException
) -> Response[dict[str, Any]]:
    fields: list[Any] = exc.extra if isinstance(exc.extra, list) else []
    named = [p for p in (_field_problem(f) for f in fields) if p]
    message = (
        f"invalid parameter: {'; '.join(named)}" if named else (exc.detail or "invalid request")
    )
    body: dict[str, Any] = {"status": HTTP_400_BAD_REQUEST, "error": message}
    if exc.extra:
        body["detail"] = exc.extra
    return Response(body, status_code=HTTP_400_BAD_REQUEST)


def _unexpected(request: Request[Any, Any, Any], exc: Exception) -> Response[dict[str, Any]]:
    log.exception("request.failed", path=request.url.path)
    return Response(
        {"status": HTTP_500_INTERNAL_SERVER_ERROR, "error": "internal error"},
        status_code=HTTP_500_INTERNAL_SERVER_ERROR,
    )


def exception_handlers() -> dict[type[Exception] | int, Any]:
    return {
        ValidationException: _validation_error,
        HTTPException: _http_error,
        Exception: _unexpected,
    }
