"""Errors a client sees. Each carries the contract's JSON shape:
{"error": {"code": ..., "message": ..., "details": ...}} and its HTTP status.

The service layer raises them; the API renders them as JSON and the console next to the form
field a `ValidationFailed` detail's `path` names (`$.url`, `$.eventTypes[1]`, `query.cursor`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, overload

from tidings.clock import parse_rfc3339


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


class Gone(ApiError):
    """410: what was asked for existed and is no longer valid (a used or expired portal link)."""

    status_code = 410
    code = "gone"


Issue = dict[str, str]  # {"path": "$.data.orderId", "message": "..."}


class RateLimited(ApiError):
    """429: the key's requests go faster than TIDINGS_API_RATE_PER_SECOND; `retry_after` is
    the seconds until one more may go."""

    status_code = 429
    code = "rate_limited"

    def __init__(self, message: str, retry_after: float) -> None:
        super().__init__(message, details={"retryAfterSeconds": round(retry_after, 3)})
        self.retry_after = retry_after


class ValidationFailed(ApiError):
    """422. details is a list of issues, {"path": "$.data.orderId", "message": "..."}; the
    message is the first issue's "path: message"."""

    status_code = 422
    code = "validation_failed"

    @classmethod
    def of(cls, issues: list[Issue]) -> ValidationFailed:
        first = issues[0]
        return cls(f"{first['path']}: {first['message']}", details=issues)

    @classmethod
    def at(cls, path: str, message: str) -> ValidationFailed:
        """One problem at one path."""
        return cls.of([issue(path, message)])


def issue(path: str, message: str) -> Issue:
    return {"path": path, "message": message}


@overload
def time_at(value: str, path: str) -> float: ...
@overload
def time_at(value: str | None, path: str) -> float | None: ...
def time_at(value: str | None, path: str) -> float | None:
    """An RFC 3339 time a client gave at `path` (a query parameter, a field, an option), as
    epoch seconds; None for None; a 422 at `path` naming the form expected otherwise."""
    if value is None:
        return None
    try:
        return parse_rfc3339(value)
    except ValueError:
        raise ValidationFailed.at(
            path, "must be an RFC 3339 time (e.g. 2026-01-01T00:00:00Z)"
        ) from None


@dataclass
class Issues:
    """Collects every problem of one input, so they are answered together as one 422."""

    items: list[Issue] = field(default_factory=list)

    def add(self, path: str, message: str) -> None:
        self.items.append(issue(path, message))

    def raise_if_any(self) -> None:
        if self.items:
            raise ValidationFailed.of(self.items)
