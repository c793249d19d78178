"""Issue 25's ordered-delivery scenarios, on PostgreSQL, drained by one real `worker` from a
settled database as throughput-pg is, each phase with a new database and receiver.

- `ordered`: 10,000 events over 1,000 subjects (10 each, published round the subjects) to 10
  endpoints with `ordering: "subject"`, 100,000 deliveries; the figure is their rate over the
  rate of the same workload to 10 endpoints without ordering, on the same receiver, in the same
  run (goal ≥ 0.8). Phases alternate unordered, ordered, ordered, unordered (ABBA: this VM's
  speed drifts between runs a minute apart, as isolation says), one pair at small scales.
- `ordered-blocked`: the same ordered workload with 1 % of the subjects answered 500 by the
  receiver for the whole run (their events' ids start `evt_blk_`, which the receiver fails);
  the default retry policy (first retry after 30 s) keeps them waiting. The figure is the rate
  of the other subjects' deliveries, timed until every one of them succeeded, over the rate of
  the same ordered workload without failures (goal ≥ 0.9), phases ABBA as above.

Both check the order as a receiver would (`check_order`, over the receiver's order log): per
endpoint (path) and subject, a request is out of order when its X-Tidings-Sequence is lower
than one already seen, or its X-Tidings-Previous-Event-Id is not the last event the receiver
accepted (answered 200) of that subject: so an event sent while the one before it was still
failing counts too. The unordered phases are checked the same way, and their count is printed
beside the figure, to show the check finds what ordering prevents.
"""

from __future__ import annotations

import re
import statistics
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any

from bench.env import envelope, tidings_drain
from bench.receiver import BLOCKED_PREFIX, start_receiver
from bench.scenarios import Figure, _n

ENDPOINTS = 10
SUBJECTS = 1_000
EVENTS_PER_SUBJECT = 10
BLOCKED_SHARE = 0.01
EVENT_ID = re.compile(r"^evt_(?:blk_)?s(\d+)_n\d+$")


def blocked_subjects(subjects: int, share: float) -> frozenset[int]:
    """The failing subjects: `share` of them (at least one), spread evenly."""
    if share <= 0:
        return frozenset()
    count = max(1, round(subjects * share))
    step = subjects // count
    return frozenset(range(0, step * count, step))


def ordered_envelope(
    org_id: str, n: int, *, subjects: int, blocked: frozenset[int] = frozenset()
) -> dict[str, Any]:
    """The n-th event: bench.env's envelope with subject n mod `subjects` and an id that names
    the subject (and starts `evt_blk_` when the subject is blocked)."""
    subject = n % subjects
    prefix = BLOCKED_PREFIX if subject in blocked else "evt_"
    return envelope(org_id, n) | {"id": f"{prefix}s{subject}_n{n}", "subject": f"sub_{subject}"}


@dataclass
class OrderCheck:
    requests: int = 0  # tidings deliveries the receiver answered
    accepted: int = 0  # distinct deliveries answered 200
    out_of_order: int = 0
    sent_twice: int = 0  # deliveries answered 200 more than once


def check_order(requests: Iterable[Sequence[Any]]) -> OrderCheck:
    """Count, per (endpoint path, subject), the requests that came out of order (see the module
    docstring). `requests`: (status, path, delivery id, event id, sequence, previous event id
    or None) in the order the receiver answered them; events whose id names no subject are
    left out."""
    check = OrderCheck()
    highest: dict[tuple[str, str], int] = {}
    last_ok: dict[tuple[str, str], str] = {}
    ok: dict[str, int] = {}
    for status, path, delivery, event, sequence, previous in requests:
        match = EVENT_ID.match(event)
        if match is None:
            continue
        check.requests += 1
        if status == 200:
            ok[delivery] = ok.get(delivery, 0) + 1
        key = (path, match.group(1))
        if last_ok.get(key) == event:
            continue  # the last accepted event again: a duplicate, counted in sent_twice
        if sequence < highest.get(key, 0) or previous != last_ok.get(key):
            check.out_of_order += 1
        highest[key] = max(sequence, highest.get(key, 0))
        if status == 200:
            last_ok[key] = event
    check.accepted = len(ok)
    check.sent_twice = sum(1 for n in ok.values() if n > 1)
    return check


@dataclass
class Phase:
    ordering: str
    blocked: int  # subjects failing
    rate: float  # deliveries/s of the subjects not failing
    healthy: int  # deliveries of the subjects not failing
    check: OrderCheck
    receiver: str


async def _phase(receiver: str, events: int, subjects: int, ordering: str, share: float) -> Phase:
    blocked = blocked_subjects(subjects, share)
    healthy_events = sum(1 for n in range(events) if n % subjects not in blocked)
    rx = start_receiver(receiver, order_log=True)
    try:
        urls = [f"{rx.url}/ep{i}" for i in range(ENDPOINTS)]
        make = partial(ordered_envelope, subjects=subjects, blocked=blocked)
        healthy = healthy_events * ENDPOINTS
        drain = await tidings_drain(urls, events, ordering=ordering, make=make, target=healthy)
    finally:
        stats = rx.stop()
    check = check_order(stats.get("requests", []))
    phase = Phase(ordering, len(blocked), drain.rate, healthy, check, rx.kind)
    print(
        f"  {ordering:>7}, {len(blocked)} subjects failing: {drain.rate:,.0f} deliveries/s; "
        f"{check.requests:,} requests, {check.accepted:,} accepted, {check.out_of_order:,} out "
        f"of order, {check.sent_twice} sent twice",
        flush=True,
    )
    return phase


def _abba(scale: float) -> tuple[bool, ...]:
    """Which phases are B: ABBA at scales from 0.5, AB below."""
    return (False, True, True, False) if scale >= 0.5 else (False, True)


def _sizes(scale: float) -> tuple[int, int]:
    subjects = _n(SUBJECTS, scale, 10)
    return subjects * EVENTS_PER_SUBJECT, subjects


def _order_figures(name: str, checked: list[Phase], size: str) -> list[Figure]:
    out = sum(p.check.out_of_order for p in checked)
    missing = sum(max(0, p.healthy - p.check.accepted) for p in checked)
    twice = sum(p.check.sent_twice for p in checked)
    return [
        Figure(name, "out of order", out, "deliveries", "0", out == 0, size=size),
        Figure(name, "not received", missing, "deliveries", "0", missing == 0, size=size),
        Figure(name, "sent twice", twice, "deliveries", "0", twice == 0, size=size),
    ]


async def ordered(scale: float, receiver: str) -> list[Figure]:
    events, subjects = _sizes(scale)
    phases = [
        await _phase(receiver, events, subjects, "subject" if b else "none", 0.0)
        for b in _abba(scale)
    ]
    plain = statistics.fmean(p.rate for p in phases if p.ordering == "none")
    kept = statistics.fmean(p.rate for p in phases if p.ordering == "subject")
    ratio = kept / plain
    ordered_phases = [p for p in phases if p.ordering == "subject"]
    unordered_out = [p.check.out_of_order for p in phases if p.ordering == "none"]
    size = (
        f"{events:,} events over {subjects:,} subjects x {ENDPOINTS} endpoints = "
        f"{events * ENDPOINTS:,} deliveries per phase, one `worker`, {phases[0].receiver}; "
        f"phases {', '.join(f'{p.ordering} {p.rate:,.0f}/s' for p in phases)}; the unordered "
        f"phases' deliveries out of order by the same check: "
        f"{', '.join(f'{n:,}' for n in unordered_out)}; order counts over the ordered phases"
    )
    return [
        Figure(
            "ordered",
            "deliveries/s vs unordered",
            kept,
            "deliveries/s",
            "≥ 0.8 x unordered",
            ratio >= 0.8,
            plain,
            ratio,
            size,
        ),
        *_order_figures("ordered", ordered_phases, size),
    ]


async def ordered_blocked(scale: float, receiver: str) -> list[Figure]:
    events, subjects = _sizes(scale)
    phases = [
        await _phase(receiver, events, subjects, "subject", BLOCKED_SHARE if b else 0.0)
        for b in _abba(scale)
    ]
    clean = statistics.fmean(p.rate for p in phases if not p.blocked)
    blocked = statistics.fmean(p.rate for p in phases if p.blocked)
    ratio = blocked / clean
    failing = max(p.blocked for p in phases)
    size = (
        f"{events:,} events over {subjects:,} subjects x {ENDPOINTS} ordered endpoints; "
        f"{failing} subjects ({BLOCKED_SHARE:.0%}) answered 500 all run (default retry policy); "
        f"timed until the other subjects' "
        f"{min(p.healthy for p in phases):,} deliveries succeeded; one `worker`, "
        f"{phases[0].receiver}; phases "
        f"{', '.join(f'{p.blocked} failing {p.rate:,.0f}/s' for p in phases)}"
    )
    return [
        Figure(
            "ordered-blocked",
            "healthy subjects' deliveries/s vs no failures",
            blocked,
            "deliveries/s",
            "≥ 0.9 x no failures",
            ratio >= 0.9,
            clean,
            ratio,
            size,
        ),
        *_order_figures("ordered-blocked", phases, size),
    ]
