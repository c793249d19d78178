"""Per-endpoint fairness: the token bucket and the admission split (pure)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from tidings.delivery.limits import (
    CONCURRENCY_DEFER_SECONDS,
    EndpointWindows,
    TokenBucket,
    admit,
    struggling,
)


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


def test_window_starts_small_grows_by_one_per_answer_and_halves_when_struggling() -> None:
    windows = EndpointWindows(8, initial=2)
    assert windows.limit("a") == 2
    for expected in (3, 4, 5, 6, 7, 8, 8):
        windows.grow("a")
        assert windows.limit("a") == expected
    windows.shrink("a")
    assert windows.limit("a") == 4
    for _ in range(5):
        windows.shrink("a")
    assert windows.limit("a") == 1  # never below one: the endpoint keeps being tried
    assert windows.limit("b") == 2  # each endpoint has its own


def test_a_window_borrows_past_its_share_only_with_room_and_gives_it_back_at_once() -> None:
    windows = EndpointWindows(4, initial=2, borrow_factor=3)
    for _ in range(20):
        windows.grow("a")
    assert windows.limit("a", room=True) == 12  # 4 x 3
    assert windows.limit("a") == windows.limit("a", room=False) == 4  # the share
    windows.shrink("a")  # from the share, not from what it borrowed
    assert windows.limit("a", room=True) == 2


def test_window_forgets_the_least_recently_used_endpoints() -> None:
    windows = EndpointWindows(8, initial=2, max_tracked=2)
    windows.shrink("a")
    windows.grow("b")
    windows.grow("c")
    assert (windows.limit("a"), windows.limit("b"), windows.limit("c")) == (2, 3, 3)


@given(steps=st.lists(st.booleans(), max_size=300), maximum=st.integers(1, 32))
def test_window_stays_between_one_and_the_maximum(steps: list[bool], maximum: int) -> None:
    windows = EndpointWindows(maximum)
    for answered in steps:
        windows.grow("a") if answered else windows.shrink("a")
        assert 1 <= windows.limit("a") <= maximum


def test_only_missing_answers_and_overload_count_as_struggling() -> None:
    assert struggling(None) and struggling(429) and struggling(503)
    assert not any(struggling(code) for code in (200, 204, 301, 400, 404, 410, 500, 502))


def test_admit_takes_each_endpoints_own_window() -> None:
    windows = EndpointWindows(8, initial=2)
    for _ in range(6):
        windows.grow("fast")
    windows.shrink("hung")
    windows.shrink("hung")
    items = [("hung", n) for n in range(8)] + [("fast", n) for n in range(8)]
    start, defer = admit(
        items,
        endpoint_of=lambda i: i[0],
        rate_of=lambda i: None,
        in_flight={},
        max_in_flight=8,
        buckets={},
        now=0.0,
        limit_of=windows.limit,
    )
    assert [i for i in start if i[0] == "hung"] == [("hung", 0)]
    assert len([i for i in start if i[0] == "fast"]) == 8
    assert len(defer) == 7
