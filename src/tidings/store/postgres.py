"""The PostgreSQL connector: an asyncpg pool shared by any number of API and worker processes,
and the LISTEN/NOTIFY channel that wakes their workers.

Wake-ups: `notify` sends `pg_notify('tidings_wakeup')` after the commit that made deliveries
due, coalesced (one in flight per process; commits made meanwhile share the next one). A NOTIFY
inside the transaction would take PostgreSQL's database-wide notify lock from its commit until
that commit is flushed, so concurrent publishes would commit one fsync at a time. `listen` keeps
a dedicated connection that turns notifications into wake-ups and reconnects when it drops. A
lost notification costs at most a worker's idle poll, never a delivery.
asyncpg errors become StoreError here and nowhere else.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import asyncpg

from tidings.store.connector import Connection, Connector
from tidings.store.rows import Row
from tidings.store.sql import Query
from tidings.store.types import Conflict, PremiseFailed, StoreError

log = logging.getLogger(__name__)

WAKEUP_CHANNEL = "tidings_wakeup"
POOL_MIN_CONNECTIONS = 1
POOL_MAX_CONNECTIONS = 10
LISTEN_RETRY_MAX_SECONDS = 30.0
LISTEN_CHECK_SECONDS = 30.0  # how often an idle LISTEN connection is checked
LISTEN_CHECK_TIMEOUT_SECONDS = 5.0
# Sent with each new connection (no round trip of its own). PostgreSQL gives a prepared
# statement a generic plan after five runs, costed on the tables' size at that moment, and keeps
# it until the next ANALYZE of a table it reads. A process that starts on a new or quiet database
# makes those plans on near-empty tables: sequential scans, which then read every event or
# delivery on each claim as the tables grow (the latency bench: 3-8 ms per claim reading all of
# `events` at 6,000 events, with autovacuum off). Planning each run with its parameters costs
# ~0.1 ms per statement here, and the latency bench measured less PostgreSQL CPU per event with
# it, not more. The PL/pgSQL functions opt out (migration 0006): they keep cached plans, made
# without sequential scans, since planning their statements on every call slowed drains.
SESSION_SETTINGS = {"plan_cache_mode": "force_custom_plan"}
# The connector's own statements (the store's are in queries/postgres.sql).
NOTIFY_WAKEUP = f"SELECT pg_notify('{WAKEUP_CHANNEL}', '')"
ALIVE = "SELECT 1"
# Raised by the fast paths (tidings_publish, migration 0003) when their premise does not hold.
_PREMISE_FAILED = {"TD001", "TD002"}
_DRIVER_ERRORS = (asyncpg.PostgresError, asyncpg.InterfaceError, OSError, TimeoutError)


@contextlib.contextmanager
def _mapped_errors() -> Iterator[None]:
    """The one place where asyncpg errors become StoreError."""
    try:
        yield
    except asyncpg.UniqueViolationError as exc:
        raise Conflict(str(exc)) from exc
    except asyncpg.PostgresError as exc:
        if getattr(exc, "sqlstate", None) in _PREMISE_FAILED:
            raise PremiseFailed(str(exc)) from exc
        raise StoreError(f"{type(exc).__name__}: {exc}") from exc
    except _DRIVER_ERRORS as exc:
        raise StoreError(f"{type(exc).__name__}: {exc}") from exc


async def _reset_connection(conn: Any) -> None:
    """Run when a connection goes back to the pool, after asyncpg has rolled back any open
    transaction. asyncpg's default adds a round trip (unlock advisory locks, close cursors,
    UNLISTEN, RESET ALL) to every release; the store takes only transaction-scoped locks but
    the migration lock (released in a finally on the same connection), never SETs, LISTENs on
    a connection of its own and opens no cursor outside a transaction: nothing to reset."""


def _rowcount(status: str) -> int:
    """'UPDATE 3' / 'INSERT 0 3' / 'DELETE 3' -> 3."""
    try:
        return int(status.rsplit(" ", 1)[-1])
    except ValueError:
        return 0


class _PostgresConnection(Connection):
    def __init__(self, conn: Any, queries: dict[str, Query]) -> None:
        self._conn = conn
        self._queries = queries

    def _args(self, query: str, params: dict[str, Any]) -> list[Any]:
        q = self._queries[query]
        return [q.sql, *(params[p] for p in q.params)]

    async def fetch(self, query: str, /, **params: Any) -> list[Row]:
        with _mapped_errors():
            rows: list[Row] = await self._conn.fetch(*self._args(query, params))
        return rows

    async def fetch_one(self, query: str, /, **params: Any) -> Row | None:
        with _mapped_errors():
            row: Row | None = await self._conn.fetchrow(*self._args(query, params))
        return row

    async def execute(self, query: str, /, **params: Any) -> int:
        with _mapped_errors():
            return _rowcount(await self._conn.execute(*self._args(query, params)))

    async def run_script(self, sql: str) -> None:
        with _mapped_errors():
            await self._conn.execute(sql)

    @contextlib.asynccontextmanager
    async def transaction(self) -> AsyncIterator[None]:
        with _mapped_errors():
            async with self._conn.transaction():
                yield


class PostgresConnector(Connector):
    dialect = "postgres"

    def __init__(
        self,
        url: str,
        *,
        min_connections: int = POOL_MIN_CONNECTIONS,
        max_connections: int = POOL_MAX_CONNECTIONS,
    ) -> None:
        super().__init__()
        self.url = url
        self._min = min_connections
        self._max = max(max_connections, min_connections)
        self._pool: Any = None
        self._on_wakeup: Callable[[], None] | None = None
        self.listener: Any = None  # the LISTEN connection
        self._listener_lost: asyncio.Event | None = None
        self._listen_task: asyncio.Task[None] | None = None
        self._announcer: asyncio.Task[None] | None = None
        self._announce_wanted = False

    async def open(self) -> None:
        if self._pool is not None:
            return
        with _mapped_errors():
            self._pool = await asyncpg.create_pool(
                self.url,
                min_size=self._min,
                max_size=self._max,
                reset=_reset_connection,
                server_settings=SESSION_SETTINGS,
            )

    async def close(self) -> None:
        announcer, self._announcer = self._announcer, None
        if announcer is not None:  # the last commits' notification still goes out
            with contextlib.suppress(Exception):
                await asyncio.wait_for(announcer, LISTEN_CHECK_TIMEOUT_SECONDS)
        task, self._listen_task = self._listen_task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        listener, self.listener = self.listener, None
        pool, self._pool = self._pool, None
        with _mapped_errors():
            if listener is not None and not listener.is_closed():
                await listener.close()
            if pool is not None:
                await pool.close()

    @contextlib.asynccontextmanager
    async def connection(self) -> AsyncIterator[Connection]:
        if self._pool is None:
            raise StoreError("store is not connected")
        with _mapped_errors():
            async with self._pool.acquire() as conn:
                yield _PostgresConnection(conn, self.queries)

    async def forget_overwritten(self) -> None:
        """Nothing to do from here: the old row versions stay in the table's files until
        (auto)vacuum reclaims them; no query, dump or replica shows them."""

    # ---- wake-ups between processes -------------------------------------------------------------
    def notify(self) -> None:
        self._announce_wanted = True
        if self._announcer is None or self._announcer.done():
            self._announcer = asyncio.get_running_loop().create_task(self._send_notifications())

    async def _send_notifications(self) -> None:
        while self._announce_wanted and self._pool is not None:
            self._announce_wanted = False
            try:
                with _mapped_errors():
                    await self._pool.execute(NOTIFY_WAKEUP)
            except StoreError as exc:  # the workers' idle poll finds the deliveries
                log.warning(
                    "wakeup notification not sent",
                    extra={"action": "store.announce", "error": str(exc)},
                )
                return

    async def listen(self, on_wakeup: Callable[[], None]) -> None:
        if self._listen_task is not None:
            return
        self._on_wakeup = on_wakeup
        with _mapped_errors():
            await self._open_listener()
        self._listen_task = asyncio.create_task(self._keep_listening(), name="tidings-listen")

    async def _open_listener(self) -> None:
        conn = await asyncpg.connect(self.url)
        lost = asyncio.Event()
        conn.add_termination_listener(lambda _conn: lost.set())
        await conn.add_listener(WAKEUP_CHANNEL, self._on_notification)
        self.listener, self._listener_lost = conn, lost

    def _on_notification(self, *_args: object) -> None:
        if self._on_wakeup is not None:
            self._on_wakeup()

    async def listener_alive(self) -> bool:
        try:
            await self.listener.fetchval(ALIVE, timeout=LISTEN_CHECK_TIMEOUT_SECONDS)
        except _DRIVER_ERRORS:
            return False
        return True

    async def _keep_listening(self) -> None:
        """Reopen the LISTEN connection whenever it drops, with capped exponential backoff."""
        while True:
            assert self._listener_lost is not None
            try:
                await asyncio.wait_for(self._listener_lost.wait(), LISTEN_CHECK_SECONDS)
            except TimeoutError:
                if await self.listener_alive():
                    continue
                self.listener.terminate()  # a silent network failure: start over
            log.warning("wakeup listener lost; reconnecting", extra={"action": "store.listen"})
            delay = 0.2
            while True:
                try:
                    await self._open_listener()
                    break
                except _DRIVER_ERRORS as exc:
                    log.warning(
                        "wakeup listener reconnect failed",
                        extra={"action": "store.listen", "error": type(exc).__name__},
                    )
                    await asyncio.sleep(delay)
                    delay = min(delay * 2, LISTEN_RETRY_MAX_SECONDS)
            log.info("wakeup listener reconnected", extra={"action": "store.listen"})
            self._on_notification()  # notifications sent while we were away are lost: look once
