"""The inbound token buckets (issue 22 section 5): a burst, then one request per 1/rate s,
each key on its own, the wait until the next token, and Retry-After in whole seconds."""

from __future__ import annotations

import pytest

from tidings.rate_limit import TokenBuckets, retry_after_header


def test_a_burst_then_the_rate() -> None:
    buckets = TokenBuckets(rate=2.0, burst=3.0)
    assert [buckets.take("a", 0.0) for _ in range(3)] == [None, None, None]
    assert buckets.take("a", 0.0) == pytest.approx(0.5)
    assert buckets.take("b", 0.0) is None  # another key is unaffected
    assert buckets.take("a", 0.5) is None  # one token back after 1/rate s
    assert buckets.take("a", 0.5) == pytest.approx(0.5)
    assert [buckets.take("a", 100.0) for _ in range(4)][-1] is not None  # refills to the burst only


def test_old_keys_are_forgotten_beyond_the_cap() -> None:
    buckets = TokenBuckets(rate=1.0, burst=1.0, max_keys=2)
    for key in ("a", "b", "c"):
        assert buckets.take(key, 0.0) is None
    assert buckets.take("a", 0.0) is None  # forgotten: a full bucket again
    assert buckets.take("c", 0.0) is not None


def test_retry_after_is_whole_seconds_at_least_one() -> None:
    assert [retry_after_header(s) for s in (0.01, 0.5, 1.0, 1.2)] == ["1", "1", "1", "2"]


def test_nonsense_settings_are_refused() -> None:
    with pytest.raises(ValueError):
        TokenBuckets(rate=0.0, burst=1.0)
