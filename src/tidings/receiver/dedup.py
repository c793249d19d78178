"""Deduplication on the event id: tidings delivers at least once, so a handler may see the same
event twice (a retry after a lost 2xx, a replay). Run side effects once per event id.

- `DedupStore`: ``seen(key) -> bool`` atomically records `key` and answers whether it was
  already recorded; ``forget(key)`` removes it (so a failed handler runs again on the retry).
- `MemoryLRUStore(max_items)`: in-process, bounded, least recently seen evicted first.
- `SqliteDedupStore(path, ttl_seconds)`: stdlib sqlite3, shared by processes on one machine,
  survives restarts; keys expire after `ttl_seconds` (keep it longer than tidings' retry
  window, about 72 h, plus any replay you may do).
- `Deduplicator(store)` / ``once(store)``: run a handler only for the first delivery of an id;
  if the handler raises, the id is forgotten and the exception propagates (answer non-2xx and
  tidings retries).
"""

from __future__ import annotations

import functools
import inspect
import sqlite3
import threading
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, Protocol, TypeVar, cast, runtime_checkable

from tidings.receiver.events import WebhookEvent

DEFAULT_TTL_SECONDS = 7 * 24 * 3600

R = TypeVar("R")


@runtime_checkable
class DedupStore(Protocol):
    def seen(self, key: str) -> bool:
        """Record `key`; True if it was already recorded (atomic check-and-set)."""
        ...

    def forget(self, key: str) -> None:
        """Remove `key` (no error if absent)."""
        ...


class MemoryLRUStore:
    """In-memory store of the `max_items` most recently seen keys (thread-safe)."""

    def __init__(self, max_items: int = 10_000) -> None:
        if max_items < 1:
            raise ValueError("max_items must be >= 1")
        self.max_items = max_items
        self._keys: OrderedDict[str, None] = OrderedDict()
        self._lock = threading.Lock()

    def seen(self, key: str) -> bool:
        with self._lock:
            if key in self._keys:
                self._keys.move_to_end(key)
                return True
            self._keys[key] = None
            while len(self._keys) > self.max_items:
                self._keys.popitem(last=False)
            return False

    def forget(self, key: str) -> None:
        with self._lock:
            self._keys.pop(key, None)

    def __len__(self) -> int:
        with self._lock:
            return len(self._keys)

    def __contains__(self, key: object) -> bool:
        with self._lock:
            return key in self._keys


class SqliteDedupStore:
    """Keys in a SQLite file (``INSERT OR IGNORE`` on a primary key), expiring after
    `ttl_seconds`. Safe across threads and processes sharing the file. `clock` returns unix
    seconds (tests hand a fake one)."""

    def __init__(
        self,
        path: str | Path,
        ttl_seconds: float = DEFAULT_TTL_SECONDS,
        *,
        clock: Callable[[], float] = time.time,
        table: str = "tidings_dedup",
    ) -> None:
        if ttl_seconds <= 0:
            raise ValueError("ttl_seconds must be > 0")
        if not table.isidentifier():
            raise ValueError("table must be a plain identifier")
        self.ttl_seconds = ttl_seconds
        self._clock = clock
        self._table = table
        self._lock = threading.Lock()
        self._conn = sqlite3.connect(
            str(path), timeout=30.0, isolation_level=None, check_same_thread=False
        )
        with self._lock:
            self._conn.execute(
                f"CREATE TABLE IF NOT EXISTS {table} (key TEXT PRIMARY KEY, seen_at REAL NOT NULL)"
            )
            self._conn.execute(f"CREATE INDEX IF NOT EXISTS {table}_seen_at ON {table} (seen_at)")

    def seen(self, key: str) -> bool:
        now = self._clock()
        cutoff = now - self.ttl_seconds
        t = self._table
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                self._conn.execute(f"DELETE FROM {t} WHERE seen_at <= ?", (cutoff,))
                cursor = self._conn.execute(
                    f"INSERT OR IGNORE INTO {t} (key, seen_at) VALUES (?, ?)", (key, now)
                )
                inserted = cursor.rowcount == 1
                self._conn.execute("COMMIT")
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
        return not inserted

    def forget(self, key: str) -> None:
        with self._lock:
            self._conn.execute(f"DELETE FROM {self._table} WHERE key = ?", (key,))

    def __len__(self) -> int:
        cutoff = self._clock() - self.ttl_seconds
        with self._lock:
            row = self._conn.execute(
                f"SELECT COUNT(*) FROM {self._table} WHERE seen_at > ?", (cutoff,)
            ).fetchone()
        return int(row[0])

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    def __enter__(self) -> SqliteDedupStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def event_key(event: WebhookEvent) -> str:
    """The default dedup key: the event id."""
    return event.id


class Deduplicator:
    """Run handlers once per event id.

    ``dedup.run(event, handler)`` calls ``handler(event)`` unless the id was already handled
    (then returns None). ``@dedup`` decorates a handler whose first argument is the event,
    sync or async. A handler that raises has its id forgotten, so the retry runs it again.
    """

    def __init__(
        self,
        store: DedupStore,
        key: Callable[[WebhookEvent], str] = event_key,
    ) -> None:
        self.store = store
        self.key = key

    def is_duplicate(self, event: WebhookEvent) -> bool:
        """Record the event; True if its id was seen before."""
        return self.store.seen(self.key(event))

    def forget(self, event: WebhookEvent) -> None:
        self.store.forget(self.key(event))

    def run(self, event: WebhookEvent, handler: Callable[[WebhookEvent], R]) -> R | None:
        key = self.key(event)
        if self.store.seen(key):
            return None
        try:
            return handler(event)
        except BaseException:
            self.store.forget(key)
            raise

    async def run_async(
        self, event: WebhookEvent, handler: Callable[[WebhookEvent], Awaitable[R]]
    ) -> R | None:
        key = self.key(event)
        if self.store.seen(key):
            return None
        try:
            return await handler(event)
        except BaseException:
            self.store.forget(key)
            raise

    def __call__(self, handler: Callable[..., Any]) -> Callable[..., Any]:
        if inspect.iscoroutinefunction(handler):

            @functools.wraps(handler)
            async def async_wrapper(event: WebhookEvent, *args: Any, **kwargs: Any) -> Any:
                async def call(e: WebhookEvent) -> Any:
                    return await handler(e, *args, **kwargs)

                return await self.run_async(event, call)

            return async_wrapper

        @functools.wraps(handler)
        def wrapper(event: WebhookEvent, *args: Any, **kwargs: Any) -> Any:
            return self.run(event, lambda e: handler(e, *args, **kwargs))

        return wrapper


F = TypeVar("F", bound=Callable[..., Any])


def once(store: DedupStore, key: Callable[[WebhookEvent], str] = event_key) -> Callable[[F], F]:
    """Decorator: ``@once(store)`` runs the handler (first argument: the event) only for the
    first delivery of an event id; later deliveries return None without calling it."""
    dedup = Deduplicator(store, key)

    def decorate(handler: F) -> F:
        return cast(F, dedup(handler))

    return decorate


__all__ = [
    "DEFAULT_TTL_SECONDS",
    "DedupStore",
    "Deduplicator",
    "MemoryLRUStore",
    "SqliteDedupStore",
    "event_key",
    "once",
]
