"""Per-endpoint fairness: the token bucket and the admission split (pure)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from tidings.delivery.limits import CONCURRENCY_DEFER_SECONDS, TokenBucket, admit


def test_bucket_starts_full_then_refills_at_rate() -> None:
    bucket = TokenBucket(2.0, now=0.0)
    assert bucket.try_take(0.0) and bucket.try_take(0.0)
    assert not bucket.try_take(0.0)
    assert bucket.wait_time(0.0) == 0.5
    assert bucket.wait_time(0.0, queued=1) == 1.0
    assert not bucket.try_take(0.4)
    assert bucket.try_take(0.5)


@given(
    rate=st.floats(min_value=0.1, max_value=100.0),
    steps=st.lists(st.floats(min_value=0.0, max_value=2.0), min_size=1, max_size=200),
)
def test_bucket_never_grants_more_than_burst_plus_rate_times_elapsed(
    rate: float, steps: list[float]
) -> None:
    bucket = TokenBucket(rate, now=0.0)
    now = 0.0
    granted = 0
    for step in steps:
        now += step
        if bucket.try_take(now):
            granted += 1
    assert granted <= bucket.burst + rate * now + 1e-6


@given(
    rate=st.floats(min_value=0.1, max_value=100.0),
    now=st.floats(min_value=0.0, max_value=1000.0),
    queued=st.integers(min_value=0, max_value=50),
)
def test_wait_time_is_enough_for_a_token(rate: float, now: float, queued: int) -> None:
    bucket = TokenBucket(rate, now=0.0)
    while bucket.try_take(now):
        pass
    wait = bucket.wait_time(now, queued)
    assert wait >= 0
    assert bucket.try_take(now + wait + 1e-6) if queued == 0 else True


items_strategy = st.lists(
    st.tuples(st.sampled_from("abcde"), st.sampled_from([None, None, 1.0, 5.0])),
    max_size=60,
)


@given(
    items=items_strategy,
    busy=st.dictionaries(st.sampled_from("abcde"), st.integers(0, 5)),
    limit=st.integers(1, 4),
)
def test_admit_respects_the_per_endpoint_limit_and_keeps_everything(
    items: list[tuple[str, float | None]], busy: dict[str, int], limit: int
) -> None:
    indexed = list(enumerate(items))
    start, defer = admit(
        indexed,
        endpoint_of=lambda it: it[1][0],
        rate_of=lambda it: it[1][1],
        in_flight=busy,
        max_in_flight=limit,
        buckets={},
        now=0.0,
    )
    # every claimed delivery either starts or goes back: none is lost or doubled
    assert sorted([*start, *(it for it, _ in defer)]) == indexed
    for endpoint in "abcde":
        started = sum(1 for _, (ep, _) in start if ep == endpoint)
        assert started + busy.get(endpoint, 0) <= max(limit, busy.get(endpoint, 0))
        if busy.get(endpoint, 0) >= limit:
            assert started == 0
    assert all(delay > 0 for _, delay in defer)


def test_admit_defers_a_busy_endpoint_but_not_the_others() -> None:
    items = ["slow"] * 5 + ["fast"] * 3
    start, defer = admit(
        items,
        endpoint_of=lambda it: it,
        rate_of=lambda it: None,
        in_flight={"slow": 1},
        max_in_flight=2,
        buckets={},
        now=0.0,
    )
    assert start == ["slow", "fast", "fast"]
    assert [it for it, _ in defer] == ["slow"] * 4 + ["fast"]  # both at their limit of 2
    assert {delay for _, delay in defer} == {CONCURRENCY_DEFER_SECONDS}


def test_admit_spreads_rate_limited_deliveries_over_time() -> None:
    buckets: dict[str, TokenBucket] = {}
    start, defer = admit(
        ["ep"] * 4,
        endpoint_of=lambda it: it,
        rate_of=lambda it: 2.0,
        in_flight={},
        max_in_flight=10,
        buckets=buckets,
        now=0.0,
    )
    assert len(start) == 2  # the bucket starts full (burst = rate)
    assert [delay for _, delay in defer] == [0.5, 1.0]


def test_busy_deferral_follows_the_endpoint() -> None:
    _, defer = admit(
        ["slow", "slow", "fast", "fast"],
        endpoint_of=lambda it: it,
        rate_of=lambda it: None,
        in_flight={"slow": 1, "fast": 1},
        max_in_flight=1,
        buckets={},
        now=0.0,
        busy_defer=lambda ep: 1.0 if ep == "slow" else 0.0,
    )
    assert defer == [("slow", 1.0), ("slow", 1.0), ("fast", 0.05), ("fast", 0.05)]
