"""The API key cache: known keys only, expiry, LRU bound."""

from __future__ import annotations

from tidings.auth import Actor, KeyCache
from tidings.models import KeyKind


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def _principal(n: int) -> Actor:
    return Actor(key_id=f"key_{n}", kind=KeyKind.ORGANIZATION, organization_id=f"org_{n}")


def test_a_cached_key_answers_until_its_ttl_then_is_forgotten() -> None:
    clock = FakeClock()
    cache = KeyCache(ttl_seconds=60, clock=clock)
    assert cache.get("h1") is None
    cache.put("h1", _principal(1))
    clock.now += 59.9
    assert cache.get("h1") == _principal(1)
    clock.now += 0.2
    assert cache.get("h1") is None


def test_the_least_recently_used_key_goes_first_beyond_the_bound() -> None:
    cache = KeyCache(ttl_seconds=60, max_entries=2, clock=FakeClock())
    cache.put("a", _principal(1))
    cache.put("b", _principal(2))
    assert cache.get("a") is not None  # a is now the most recent
    cache.put("c", _principal(3))
    assert cache.get("b") is None
    assert cache.get("a") == _principal(1)
    assert cache.get("c") == _principal(3)


def test_a_zero_ttl_disables_the_cache() -> None:
    cache = KeyCache(ttl_seconds=0, clock=FakeClock())
    cache.put("a", _principal(1))
    assert cache.get("a") is None
