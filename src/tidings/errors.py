"""Errors a client sees. Each carries the contract's JSON shape:
{"error": {"code": ..., "message": ..., "details": ...}} and its HTTP status."""

from __future__ import annotations

from typing import Any


class ApiError(Exception):
    status_code = 400
    code = "bad_request"

    def __init__(self, message: str, *, details: Any = None, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details
        if code is not None:
            self.code = code

    def to_body(self) -> dict[str, Any]:
        return {"error": {"code": self.code, "message": self.message, "details": self.details}}


class BadRequest(ApiError):
    status_code = 400
    code = "bad_request"


class Unauthorized(ApiError):
    status_code = 401
    code = "unauthorized"


class Forbidden(ApiError):
    status_code = 403
    code = "forbidden"


class NotFoundError(ApiError):
    status_code = 404
    code = "not_found"


class ConflictError(ApiError):
    status_code = 409
    code = "conflict"


class PayloadTooLarge(ApiError):
    status_code = 413
    code = "payload_too_large"


class ValidationFailed(ApiError):
    """422. details is a list of {"path": "$.data.orderId", "message": "..."}."""

    status_code = 422
    code = "validation_failed"


class TooManyRequests(ApiError):
    status_code = 429
    code = "rate_limited"
