"""Every error answer has the contract's shape {"error": {"code", "message", "details"}}:
our own ApiErrors, FastAPI's request validation (422 naming the failing JSON path), unknown
paths and methods, bodies that are not JSON, and anything unexpected (500, logged, no details)."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from tidings.errors import ApiError, RateLimited
from tidings.rate_limit import retry_after_header

log = logging.getLogger("tidings.api")

_HTTP_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "payload_too_large",
    422: "validation_failed",
    429: "rate_limited",
}


def error_response(
    status: int,
    code: str,
    message: str,
    details: Any = None,
    headers: Mapping[str, str] | None = None,
) -> JSONResponse:
    body = {"error": {"code": code, "message": message, "details": details}}
    return JSONResponse(body, status_code=status, headers=headers)


def json_path(loc: Sequence[int | str]) -> str:
    """('body', 'eventTypes', 0) -> '$.eventTypes[0]'; ('query', 'limit') -> 'query.limit'."""
    parts = list(loc)
    if parts and parts[0] == "body":
        root, parts = "$", parts[1:]
    elif parts:
        root, parts = str(parts[0]), parts[1:]
    else:
        root = "$"
    out = root
    for part in parts:
        out += f"[{part}]" if isinstance(part, int) else f".{part}"
    return out


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def _api_error(request: Request, exc: ApiError) -> JSONResponse:
        headers = (
            {"Retry-After": retry_after_header(exc.retry_after)}
            if isinstance(exc, RateLimited)
            else None
        )
        return error_response(exc.status_code, exc.code, exc.message, exc.details, headers=headers)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        issues = []
        for err in exc.errors():
            if err.get("type") == "json_invalid":
                return error_response(400, "invalid_json", "the request body is not valid JSON")
            issues.append({"path": json_path(err.get("loc", ())), "message": err.get("msg", "")})
        first = issues[0] if issues else {"path": "$", "message": "invalid request"}
        message = f"{first['path']}: {first['message']}"
        return error_response(422, "validation_failed", message, issues)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        if exc.status_code == 400 and isinstance(exc.__cause__, UnicodeDecodeError):
            # FastAPI's own answer to a body that is not UTF-8: the same as any non-JSON body
            return error_response(400, "invalid_json", "the request body is not valid JSON")
        code = _HTTP_CODES.get(exc.status_code, "error")
        message = str(exc.detail) if exc.detail else code.replace("_", " ")
        return error_response(exc.status_code, code, message, headers=exc.headers)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error", extra={"action": "api.error", "path": request.url.path})
        return error_response(500, "internal_error", "internal error")
