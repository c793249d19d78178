"""Delivery policies (contract §6), pure: retry delays, Retry-After, auto-pause, and how an
HTTP answer is classified. Handed `now` and a `random.Random`; they never read the clock."""

from __future__ import annotations

import random
import re
from collections.abc import Sequence
from datetime import UTC
from email.utils import parsedate_to_datetime
from typing import Literal

RETRY_AFTER_CAP_SECONDS = 24 * 3600.0
# Why an endpoint is paused (its pauseReason; the automatic ones as the catalog's
# webhook.endpoint_auto_paused `reason` enum spells them).
PAUSE_CONSECUTIVE_FAILURES = "consecutive_failures"
PAUSE_FAILING_TOO_LONG = "failing_too_long"
PAUSE_GONE = "gone_410"  # a 410 answer (the caller pauses at once; see classify_response)
PAUSE_BY_HAND = "paused by hand"

Outcome = Literal["success", "retry", "gone"]

_DELTA_SECONDS = re.compile(r"[0-9]{1,12}")


def max_attempts(schedule: Sequence[float]) -> int:
    """N waits between attempts mean N + 1 attempts in all."""
    return len(schedule) + 1


def retry_delay(
    attempts_done: int,
    schedule: Sequence[float],
    jitter_fraction: float,
    rng: random.Random,
    retry_after: float | None = None,
) -> float | None:
    """Seconds to wait before the next attempt, after `attempts_done` (>= 1) failed attempts;
    None when the delivery is out of attempts (`attempts_done >= len(schedule) + 1`).

    The wait is `schedule[attempts_done - 1]` scaled by a uniform factor in
    [1 - jitter_fraction, 1 + jitter_fraction] (never negative). A `retry_after` (seconds,
    from the receiver's Retry-After) is honoured when it asks for longer.
    """
    if attempts_done < 1:
        raise ValueError("attempts_done counts the attempts already made (>= 1)")
    if attempts_done >= max_attempts(schedule):
        return None
    base = float(schedule[attempts_done - 1])
    jitter = max(0.0, float(jitter_fraction))
    delay = max(0.0, base * (1.0 + rng.uniform(-jitter, jitter))) if jitter else max(0.0, base)
    if retry_after is not None and retry_after > delay:
        delay = float(retry_after)
    return delay


def parse_retry_after(
    value: str | None, now: float, *, cap: float = RETRY_AFTER_CAP_SECONDS
) -> float | None:
    """Seconds asked for by a Retry-After header (delta-seconds or an HTTP-date), capped at
    `cap`; a date in the past means 0. None when absent or unparseable."""
    if value is None:
        return None
    text = value.strip()
    if not text:
        return None
    if _DELTA_SECONDS.fullmatch(text):
        return min(float(int(text)), cap)
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if when.tzinfo is None:  # "-0000" per RFC 5322: treat as UTC, as HTTP-dates are GMT
        when = when.replace(tzinfo=UTC)
    try:
        delta = when.timestamp() - now
    except (OverflowError, OSError, ValueError):
        return None
    return min(max(0.0, delta), cap)


def should_pause(
    failure_streak: int,
    failing_since: float | None,
    now: float,
    *,
    pause_after_failures: int,
    pause_after_seconds: float,
) -> str | None:
    """The reason to auto-pause an endpoint, or None.

    "consecutive_failures" once `failure_streak >= pause_after_failures`; "failing_too_long"
    once failures have gone on (no success since `failing_since`) for `pause_after_seconds`
    or more. A limit <= 0 turns that rule off.
    """
    if pause_after_failures > 0 and failure_streak >= pause_after_failures:
        return PAUSE_CONSECUTIVE_FAILURES
    if (
        pause_after_seconds > 0
        and failing_since is not None
        and failure_streak > 0
        and now - failing_since >= pause_after_seconds
    ):
        return PAUSE_FAILING_TOO_LONG
    return None


def classify_response(status_code: int | None) -> Outcome:
    """2xx is success; 410 Gone pauses the endpoint at once; everything else (3xx, which is
    not followed, 4xx, 5xx, and None for a network error or timeout) is retried."""
    if status_code is not None and 200 <= status_code <= 299:
        return "success"
    if status_code == 410:
        return "gone"
    return "retry"


def honours_retry_after(status_code: int | None) -> bool:
    """Retry-After is read on 429 and 503 answers (contract §6)."""
    return status_code in (429, 503)


__all__ = [
    "PAUSE_BY_HAND",
    "PAUSE_CONSECUTIVE_FAILURES",
    "PAUSE_FAILING_TOO_LONG",
    "PAUSE_GONE",
    "RETRY_AFTER_CAP_SECONDS",
    "Outcome",
    "classify_response",
    "honours_retry_after",
    "max_attempts",
    "parse_retry_after",
    "retry_delay",
    "should_pause",
]
