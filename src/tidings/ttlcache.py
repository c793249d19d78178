"""A small in-process cache: entries live `ttl` seconds and at most `max_entries` are kept.
Handed `now`; never reads the clock. Used for DNS answers of the address check
(`netguard.AddressCache`) and known API keys (`auth.KeyCache`)."""

from __future__ import annotations

from collections import OrderedDict
from typing import Generic, TypeVar

K = TypeVar("K")
V = TypeVar("V")


class TtlCache(Generic[K, V]):
    """Beyond `max_entries` the oldest entry goes first: the least recently stored, or with
    `lru` the least recently read or stored."""

    def __init__(self, ttl: float, max_entries: int, *, lru: bool = False) -> None:
        self.ttl = ttl
        self.max_entries = max_entries
        self.lru = lru
        self._entries: OrderedDict[K, tuple[float, V]] = OrderedDict()

    def get(self, key: K, now: float) -> V | None:
        entry = self._entries.get(key)
        if entry is None:
            return None
        expires_at, value = entry
        if now >= expires_at:
            del self._entries[key]
            return None
        if self.lru:
            self._entries.move_to_end(key)
        return value

    def put(self, key: K, value: V, now: float) -> None:
        self._entries.pop(key, None)
        self._entries[key] = (now + self.ttl, value)
        while len(self._entries) > self.max_entries:
            self._entries.popitem(last=False)

    def discard(self, key: K) -> None:
        self._entries.pop(key, None)

    def clear(self) -> None:
        self._entries.clear()

    def __len__(self) -> int:
        return len(self._entries)
