"""An endpoint's health at a glance (the console's endpoints page, issue 21), as pure functions
over what the workers recorded per hour (`store.types.EndpointHour`):

- attempts and successes (2xx) over the last 24 hours, and the success rate;
- p50 and p95 attempt duration, read to the upper bound of the duration bucket they fall in
  ("≤ 250 ms"; "> 5 s" past the last bound), as Prometheus histograms are read;
- the last attempt, its time and its result (status code or error).

`Recorder` is the worker's side: it buckets each attempt into its endpoint's hour and hands the
hours over to be added to the store every few seconds (`delivery.stats`).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace

from tidings.store.types import DURATION_BOUNDS_MS, EndpointHour

HEALTH_WINDOW_SECONDS = 24 * 3600.0
HOUR = 3600.0


def hour_of(ts: float) -> float:
    return ts - ts % HOUR


def bucket_of(duration_ms: float) -> int:
    for i, bound in enumerate(DURATION_BOUNDS_MS):
        if duration_ms <= bound:
            return i
    return len(DURATION_BOUNDS_MS)


@dataclass(frozen=True, slots=True)
class Health:
    attempts: int = 0
    successes: int = 0
    p50_bucket: int | None = None  # index into DURATION_BOUNDS_MS; len(...) is "over"
    p95_bucket: int | None = None
    last_attempt_at: float | None = None
    last_status_code: int | None = None
    last_error: str | None = None
    held: int = 0

    @property
    def success_rate(self) -> float | None:
        return None if not self.attempts else self.successes / self.attempts


def bucket_label(bucket: int | None) -> str:
    """`≤ 250 ms`, `≤ 1 s`, `> 5 s`; an em dash for none."""
    if bucket is None:
        return "—"
    if bucket >= len(DURATION_BOUNDS_MS):
        return f"> {_ms(DURATION_BOUNDS_MS[-1])}"
    return f"≤ {_ms(DURATION_BOUNDS_MS[bucket])}"


def _ms(bound: int) -> str:
    return f"{bound // 1000} s" if bound >= 1000 and bound % 1000 == 0 else f"{bound} ms"


def _quantile_bucket(counts: Sequence[int], q: float) -> int | None:
    total = sum(counts)
    if not total:
        return None
    rank = q * total
    running = 0
    for i, n in enumerate(counts):
        running += n
        if running >= rank:
            return i
    return len(counts) - 1  # pragma: no cover - running reaches total


def summarize(hours: Iterable[EndpointHour], now: float, held: int = 0) -> Health:
    """One endpoint's health at `now` from its recorded hours (those of the last 24 hours
    count; an hour that began before the window counts whole)."""
    since = hour_of(now - HEALTH_WINDOW_SECONDS)
    recent = [h for h in hours if h.hour >= since]
    if not recent:
        return Health(held=held)
    counts = [sum(h.durations[i] for h in recent) for i in range(len(DURATION_BOUNDS_MS) + 1)]
    last = max(recent, key=lambda h: h.last_attempt_at)
    return Health(
        attempts=sum(h.attempts for h in recent),
        successes=sum(h.successes for h in recent),
        p50_bucket=_quantile_bucket(counts, 0.5),
        p95_bucket=_quantile_bucket(counts, 0.95),
        last_attempt_at=last.last_attempt_at,
        last_status_code=last.last_status_code,
        last_error=last.last_error,
        held=held,
    )


class Recorder:
    """The attempts of one worker since its last hand-over, per endpoint and hour."""

    def __init__(self) -> None:
        self._hours: dict[tuple[str, float], EndpointHour] = {}

    def record(
        self,
        endpoint_id: str,
        organization_id: str,
        started_at: float,
        duration_ms: float,
        status_code: int | None,
        error: str | None,
    ) -> None:
        key = (endpoint_id, hour_of(started_at))
        durations = [0] * (len(DURATION_BOUNDS_MS) + 1)
        durations[bucket_of(duration_ms)] = 1
        success = status_code is not None and 200 <= status_code < 300
        one = EndpointHour(
            endpoint_id=endpoint_id,
            organization_id=organization_id,
            hour=key[1],
            attempts=1,
            successes=int(success),
            durations=tuple(durations),
            last_attempt_at=started_at,
            last_status_code=status_code,
            last_error=error,
        )
        seen = self._hours.get(key)
        self._hours[key] = one if seen is None else _added(seen, one)

    def take(self) -> list[EndpointHour]:
        """Everything recorded since the last take, and forget it."""
        hours, self._hours = list(self._hours.values()), {}
        return hours

    def put_back(self, hours: Iterable[EndpointHour]) -> None:
        """Hours a hand-over could not store: kept for the next one."""
        for h in hours:
            key = (h.endpoint_id, h.hour)
            seen = self._hours.get(key)
            self._hours[key] = h if seen is None else _added(seen, h)


def _added(a: EndpointHour, b: EndpointHour) -> EndpointHour:
    later = b if b.last_attempt_at >= a.last_attempt_at else a
    return replace(
        a,
        attempts=a.attempts + b.attempts,
        successes=a.successes + b.successes,
        durations=tuple(x + y for x, y in zip(a.durations, b.durations, strict=True)),
        last_attempt_at=later.last_attempt_at,
        last_status_code=later.last_status_code,
        last_error=later.last_error,
    )
