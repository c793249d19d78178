from __future__ import annotations

import random
from email.utils import formatdate

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tidings.config import (
    DEFAULT_RETRY_SCHEDULE_SECONDS,
    PAUSE_AFTER_FAILURES,
    PAUSE_AFTER_SECONDS,
    RETRY_JITTER_FRACTION,
)
from tidings.policies import (
    RETRY_AFTER_CAP_SECONDS,
    classify_response,
    honours_retry_after,
    max_attempts,
    parse_retry_after,
    retry_delay,
    should_pause,
)

NOW = 1_767_225_600.0  # 2026-01-01T00:00:00Z

schedules = st.lists(
    st.floats(min_value=0, max_value=1e6, allow_nan=False), min_size=1, max_size=12
)
fractions = st.floats(min_value=0, max_value=1, allow_nan=False)


# ---- retry_delay -----------------------------------------------------------------------------


def test_default_schedule_is_ten_attempts_over_about_72_hours() -> None:
    assert max_attempts(DEFAULT_RETRY_SCHEDULE_SECONDS) == 10
    rng = random.Random(0)
    waits = [
        retry_delay(n, DEFAULT_RETRY_SCHEDULE_SECONDS, 0.0, rng)
        for n in range(1, max_attempts(DEFAULT_RETRY_SCHEDULE_SECONDS))
    ]
    assert all(w is not None for w in waits)
    total = sum(w for w in waits if w is not None)
    assert 71 * 3600 <= total <= 73 * 3600
    assert retry_delay(10, DEFAULT_RETRY_SCHEDULE_SECONDS, RETRY_JITTER_FRACTION, rng) is None
    # the schedule backs off: every wait is at least as long as the one before
    assert list(DEFAULT_RETRY_SCHEDULE_SECONDS) == sorted(DEFAULT_RETRY_SCHEDULE_SECONDS)


@given(schedule=schedules, fraction=fractions, seed=st.integers(0, 2**32), data=st.data())
def test_delay_within_jitter_bounds(
    schedule: list[float], fraction: float, seed: int, data: st.DataObject
) -> None:
    attempts_done = data.draw(st.integers(min_value=1, max_value=len(schedule)))
    delay = retry_delay(attempts_done, schedule, fraction, random.Random(seed))
    assert delay is not None
    base = schedule[attempts_done - 1]
    assert delay >= 0
    assert base * (1 - fraction) - 1e-6 <= delay <= base * (1 + fraction) + 1e-6


@given(schedule=schedules, fraction=fractions, extra=st.integers(0, 5))
def test_out_of_attempts(schedule: list[float], fraction: float, extra: int) -> None:
    done = len(schedule) + 1 + extra
    assert retry_delay(done, schedule, fraction, random.Random(1)) is None
    assert retry_delay(done, schedule, fraction, random.Random(1), retry_after=10.0) is None


@given(schedule=schedules, data=st.data())
def test_no_jitter_uses_schedule_in_order(schedule: list[float], data: st.DataObject) -> None:
    rng = random.Random(data.draw(st.integers(0, 1000)))
    got = [retry_delay(n, schedule, 0.0, rng) for n in range(1, len(schedule) + 1)]
    assert got == [float(s) for s in schedule]


def test_jitter_actually_varies() -> None:
    rng = random.Random(42)
    delays = {retry_delay(1, [100.0], 0.1, rng) for _ in range(50)}
    assert len(delays) > 40
    assert min(d for d in delays if d is not None) < 100 < max(d for d in delays if d is not None)


def test_jitter_beyond_one_never_negative() -> None:
    rng = random.Random(3)
    assert all((retry_delay(1, [10.0], 3.0, rng) or 0.0) >= 0 for _ in range(200))


@given(
    base=st.floats(min_value=0, max_value=1e5, allow_nan=False),
    fraction=fractions,
    retry_after=st.floats(min_value=0, max_value=2e5, allow_nan=False),
    seed=st.integers(0, 2**32),
)
def test_retry_after_honoured_only_when_longer(
    base: float, fraction: float, retry_after: float, seed: int
) -> None:
    plain = retry_delay(1, [base], fraction, random.Random(seed))
    with_ra = retry_delay(1, [base], fraction, random.Random(seed), retry_after=retry_after)
    assert plain is not None and with_ra is not None
    assert with_ra == max(plain, retry_after)


def test_retry_delay_rejects_zero_attempts() -> None:
    with pytest.raises(ValueError):
        retry_delay(0, [1.0], 0.0, random.Random(0))


# ---- parse_retry_after ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("120", 120.0),
        (" 0 ", 0.0),
        ("86400", 86400.0),
        ("999999", RETRY_AFTER_CAP_SECONDS),
        (None, None),
        ("", None),
        ("soon", None),
        ("-5", None),
        ("1.5", None),
        ("Wed, 99 Foo 2015 07:28:00 GMT", None),
    ],
)
def test_parse_retry_after_values(value: str | None, expected: float | None) -> None:
    assert parse_retry_after(value, NOW) == expected


def test_parse_retry_after_http_date() -> None:
    assert parse_retry_after(formatdate(NOW + 90, usegmt=True), NOW) == pytest.approx(90.0)
    assert parse_retry_after("Thu, 01 Jan 2026 00:02:00 GMT", NOW) == pytest.approx(120.0)
    assert parse_retry_after(formatdate(NOW - 600, usegmt=True), NOW) == 0.0
    far = formatdate(NOW + 10 * 86400, usegmt=True)
    assert parse_retry_after(far, NOW) == RETRY_AFTER_CAP_SECONDS


@given(st.text(max_size=40))
def test_parse_retry_after_never_raises(value: str) -> None:
    got = parse_retry_after(value, NOW)
    assert got is None or 0.0 <= got <= RETRY_AFTER_CAP_SECONDS


# ---- should_pause --------------------------------------------------------------------------


def _pause(streak: int, since: float | None, now: float = NOW) -> str | None:
    return should_pause(
        streak,
        since,
        now,
        pause_after_failures=PAUSE_AFTER_FAILURES,
        pause_after_seconds=PAUSE_AFTER_SECONDS,
    )


def test_should_pause_boundaries() -> None:
    assert _pause(0, None) is None
    assert _pause(19, NOW - 60) is None
    assert _pause(20, NOW - 60) == "consecutive_failures"
    assert _pause(21, None) == "consecutive_failures"
    assert _pause(3, NOW - PAUSE_AFTER_SECONDS + 1) is None
    assert _pause(3, NOW - PAUSE_AFTER_SECONDS) == "failing_too_long"
    assert _pause(3, NOW - PAUSE_AFTER_SECONDS - 1) == "failing_too_long"
    # no failure streak: nothing is failing
    assert _pause(0, NOW - 10 * PAUSE_AFTER_SECONDS) is None


@given(
    streak=st.integers(0, 100),
    age=st.floats(min_value=0, max_value=1e6, allow_nan=False),
    limit=st.integers(1, 50),
    seconds=st.floats(min_value=1, max_value=1e6, allow_nan=False),
)
def test_should_pause_property(streak: int, age: float, limit: int, seconds: float) -> None:
    got = should_pause(
        streak, NOW - age, NOW, pause_after_failures=limit, pause_after_seconds=seconds
    )
    if streak >= limit:
        assert got == "consecutive_failures"
    elif streak > 0 and (NOW - (NOW - age)) >= seconds:
        assert got == "failing_too_long"
    else:
        assert got is None


def test_should_pause_limits_off() -> None:
    assert should_pause(1000, 0.0, NOW, pause_after_failures=0, pause_after_seconds=0) is None


# ---- classify_response ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("code", "outcome"),
    [
        (200, "success"),
        (201, "success"),
        (204, "success"),
        (299, "success"),
        (410, "gone"),
        (None, "retry"),
        (100, "retry"),
        (199, "retry"),
        (300, "retry"),
        (301, "retry"),
        (302, "retry"),
        (400, "retry"),
        (404, "retry"),
        (429, "retry"),
        (500, "retry"),
        (503, "retry"),
    ],
)
def test_classify_response(code: int | None, outcome: str) -> None:
    assert classify_response(code) == outcome


def test_honours_retry_after() -> None:
    assert honours_retry_after(429) and honours_retry_after(503)
    assert not honours_retry_after(500) and not honours_retry_after(None)
