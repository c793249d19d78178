"""The delivery worker's settings as one frozen object (`WorkerSettings`): what the service reads
from TIDINGS_* (`WorkerSettings.from_settings`, the one place that maps them), the worker's own
tuning defaults as named constants, and the values derived from them (the lease, the grace given
to sends at shutdown).
"""

from __future__ import annotations

from dataclasses import dataclass

from tidings.config import (
    AUDIT_RETENTION_DAYS,
    CLAIM_BATCH_SIZE,
    DEFAULT_RETRY_SCHEDULE_SECONDS,
    DELIVERY_TIMEOUT_SECONDS,
    ENDPOINT_MAX_IN_FLIGHT,
    LEASE_MARGIN_SECONDS,
    PAUSE_AFTER_FAILURES,
    PAUSE_AFTER_SECONDS,
    RETENTION_DAYS,
    RETRY_JITTER_FRACTION,
    SUBJECT_BLOCKED_AFTER_SECONDS,
    WORKER_CONCURRENCY,
    Settings,
)
from tidings.delivery.limits import BORROW_FACTOR
from tidings.delivery.retention import PURGE_INTERVAL_SECONDS

POLL_INTERVAL_SECONDS = 1.0
FLUSH_INTERVAL_SECONDS = 0.02
FLUSH_MAX_OUTCOMES = 250
# The lease outlives the delivery timeout by this share of the margin, so a dead worker's
# delivery is claimed again (after at most one idle poll) within timeout + margin.
LEASE_MARGIN_SHARE = 0.8
# At shutdown, sends in flight get the delivery timeout and this much more to finish.
SHUTDOWN_GRACE_EXTRA_SECONDS = 1.0
# After a failed claim or outcome write, the worker waits this long (times the try) first.
STORE_RETRY_SECONDS = 0.5


def lease_seconds_for(delivery_timeout_seconds: float, lease_margin_seconds: float) -> float:
    return delivery_timeout_seconds + LEASE_MARGIN_SHARE * lease_margin_seconds


@dataclass(frozen=True, slots=True)
class WorkerSettings:
    """Everything one worker is configured with. The defaults are the documented ones."""

    worker_id: str
    delivery_timeout_seconds: float = DELIVERY_TIMEOUT_SECONDS
    retry_schedule: tuple[float, ...] = DEFAULT_RETRY_SCHEDULE_SECONDS
    jitter_fraction: float = RETRY_JITTER_FRACTION
    pause_after_failures: int = PAUSE_AFTER_FAILURES
    pause_after_seconds: float = PAUSE_AFTER_SECONDS
    subject_blocked_after_seconds: float = SUBJECT_BLOCKED_AFTER_SECONDS
    concurrency: int = WORKER_CONCURRENCY
    claim_batch_size: int = CLAIM_BATCH_SIZE
    endpoint_max_in_flight: int = ENDPOINT_MAX_IN_FLIGHT
    retention_days: float = RETENTION_DAYS
    audit_retention_days: float = AUDIT_RETENTION_DAYS  # the audit trail's (issue 22)
    lease_margin_seconds: float = LEASE_MARGIN_SECONDS
    poll_interval_seconds: float = POLL_INTERVAL_SECONDS
    flush_interval_seconds: float = FLUSH_INTERVAL_SECONDS
    flush_max_outcomes: int = FLUSH_MAX_OUTCOMES
    # None: the delivery timeout + SHUTDOWN_GRACE_EXTRA_SECONDS
    shutdown_grace_seconds: float | None = None
    retention_interval_seconds: float = PURGE_INTERVAL_SECONDS
    # how many times its share an endpoint's window may reach while the worker has room
    endpoint_borrow_factor: int = BORROW_FACTOR

    def __post_init__(self) -> None:
        if self.concurrency < 1 or self.claim_batch_size < 1 or self.endpoint_max_in_flight < 1:
            raise ValueError("concurrency, claim batch size and per-endpoint limit must be >= 1")
        # a list given by a caller is kept as the tuple the type says (the object is frozen)
        object.__setattr__(self, "retry_schedule", tuple(self.retry_schedule))
        object.__setattr__(self, "flush_max_outcomes", max(1, self.flush_max_outcomes))

    @property
    def lease_seconds(self) -> float:
        return lease_seconds_for(self.delivery_timeout_seconds, self.lease_margin_seconds)

    @property
    def grace_seconds(self) -> float:
        """How long sends in flight at shutdown may still run."""
        if self.shutdown_grace_seconds is None:
            return self.delivery_timeout_seconds + SHUTDOWN_GRACE_EXTRA_SECONDS
        return self.shutdown_grace_seconds

    @classmethod
    def from_settings(cls, settings: Settings, *, worker_id: str) -> WorkerSettings:
        """The worker part of the process's Settings (the rest keeps its defaults)."""
        return cls(
            worker_id=worker_id,
            delivery_timeout_seconds=settings.delivery_timeout_seconds,
            retry_schedule=settings.retry_schedule_seconds,
            jitter_fraction=settings.retry_jitter_fraction,
            pause_after_failures=settings.pause_after_failures,
            pause_after_seconds=settings.pause_after_seconds,
            subject_blocked_after_seconds=settings.subject_blocked_after_seconds,
            concurrency=settings.worker_concurrency,
            claim_batch_size=settings.claim_batch_size,
            endpoint_max_in_flight=settings.endpoint_max_in_flight,
            retention_days=settings.retention_days,
            audit_retention_days=settings.audit_retention_days,
            lease_margin_seconds=settings.lease_margin_seconds,
        )


__all__ = [
    "FLUSH_INTERVAL_SECONDS",
    "FLUSH_MAX_OUTCOMES",
    "POLL_INTERVAL_SECONDS",
    "STORE_RETRY_SECONDS",
    "WorkerSettings",
    "lease_seconds_for",
]
