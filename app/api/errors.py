"""Errors as JSON with a clear message: ``{"status": 404, "error": "...", "detail": ...}``."""

from __future__ import annotations

from typing import Any

import structlog
from litestar import Request, Response
from litestar.exceptions import HTTPException, ValidationException
from litestar.status_codes import HTTP_400_BAD_REQUEST, HTTP_500_INTERNAL_SERVER_ERROR

log = structlog.get_logger(__name__)


def _http_error(request: Request[Any, Any, Any], exc: HTTPException) -> Response[dict[str, Any]]:
    body: dict[str, Any] = {"status": exc.status_code, "error": exc.detail}
    if exc.extra:
        body["detail"] = exc.extra
    return Response(body, status_code=exc.status_code, headers=exc.headers)


def _validation_error(
    request: Request[Any, Any, Any], exc: ValidationException
) -> Response[dict[str, Any]]:
    fields: list[Any] = exc.extra if isinstance(exc.extra, list) else []
    names = ", ".join(str(f.get("key")) for f in fields if isinstance(f, dict) and f.get("key"))
    message = f"invalid parameter: {names}" if names else (exc.detail or "invalid request")
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
