"""Is this process ready, and may this caller read its metrics: the rules behind `/readyz` and
`/metrics`, asked by the API and by a worker's own health port alike (`tidings.health_port`)."""

from __future__ import annotations

import asyncio
import hmac
from dataclasses import dataclass, field
from typing import Any, Protocol

from tidings.store.types import MigrationStatus

READINESS_TIMEOUT_SECONDS = 2.0


class ReadinessStore(Protocol):
    async def ping(self) -> None: ...

    async def migration_status(self) -> MigrationStatus: ...


@dataclass(frozen=True)
class Readiness:
    """Ready, or why not (`code`, `message`, `details` as an error body gives them)."""

    ready: bool
    message: str = ""
    schema_version: int | None = None
    details: dict[str, Any] | None = field(default=None)

    def body(self) -> dict[str, Any]:
        if self.ready:
            return {"status": "ready", "schemaVersion": self.schema_version}
        return {"error": {"code": "not_ready", "message": self.message, "details": self.details}}


async def readiness(store: ReadinessStore, timeout: float = READINESS_TIMEOUT_SECONDS) -> Readiness:
    """Ready when the database answers within `timeout` and its schema is this tidings' one.
    Whatever fails on the way (a refused or dropped connection, a database that no longer
    exists, a driver error the store does not map) is "not ready", never an exception: a probe
    that crashes reads as a broken process, not as a database that went away."""
    try:
        async with asyncio.timeout(timeout):
            await store.ping()
            status = await store.migration_status()
    except TimeoutError:
        return Readiness(False, f"database did not answer within {timeout:g} s")
    except Exception as exc:  # any failure to reach the database means not ready
        return Readiness(False, f"database unreachable: {type(exc).__name__}")
    if not status.up_to_date:
        return Readiness(
            False,
            "database schema is not current: run `tidings migrate`",
            details={"current": status.current, "latest": status.latest},
        )
    return Readiness(True, schema_version=status.current)


def metrics_allowed(token: str | None, authorization: str | None) -> bool:
    """Anyone may read `/metrics` when no TIDINGS_METRICS_TOKEN is set; otherwise only a caller
    sending `Authorization: Bearer <token>` (compared in constant time)."""
    if not token:
        return True
    if not authorization or not authorization.startswith("Bearer "):
        return False
    return hmac.compare_digest(authorization[len("Bearer ") :].encode(), token.encode())


__all__ = ["Readiness", "ReadinessStore", "metrics_allowed", "readiness"]
