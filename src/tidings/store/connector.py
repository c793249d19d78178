"""The narrow interface between the one `Store` and a database driver: run a named query
(`fetch`, `fetch_one`, `execute`) on a connection or in a transaction, run a migration script,
and pass wake-ups between processes (`listen`, `notify`). One implementation per dialect
(`sqlite.SqliteConnector`, `postgres.PostgresConnector`); each maps its driver's errors to
`StoreError` in one place, so nothing above it sees a driver.

A query is named, never written here: each connector loads its dialect's file
(`sql.load_queries`) and the store passes the name and keyword parameters. A list parameter is
an array on PostgreSQL and a JSON array on SQLite; a JSON document travels as text.
"""

from __future__ import annotations

import abc
import contextlib
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager
from typing import Any

from tidings.store.rows import Row
from tidings.store.sql import Query, load_queries


class Connection(abc.ABC):
    """One connection for a block: each statement is its own transaction, unless the block is a
    `Connector.transaction()`."""

    @abc.abstractmethod
    async def fetch(self, query: str, /, **params: Any) -> list[Row]: ...

    @abc.abstractmethod
    async def fetch_one(self, query: str, /, **params: Any) -> Row | None: ...

    @abc.abstractmethod
    async def execute(self, query: str, /, **params: Any) -> int:
        """Answers how many rows the statement wrote."""

    @abc.abstractmethod
    async def run_script(self, sql: str) -> None:
        """Several statements (a migration), inside the block's transaction."""

    @abc.abstractmethod
    def transaction(self) -> AbstractAsyncContextManager[None]:
        """A transaction on this connection for a block: all of it is stored, or none."""


class Connector(abc.ABC):
    dialect: str

    def __init__(self) -> None:
        self.queries: dict[str, Query] = load_queries(self.dialect)

    @abc.abstractmethod
    async def open(self) -> None: ...

    @abc.abstractmethod
    async def close(self) -> None: ...

    @abc.abstractmethod
    def connection(self) -> AbstractAsyncContextManager[Connection]:
        """One connection for a block of statements, each its own transaction."""

    @contextlib.asynccontextmanager
    async def transaction(self) -> AsyncIterator[Connection]:
        """One connection and one transaction for a block: all of it is stored, or none."""
        async with self.connection() as conn, conn.transaction():
            yield conn

    @abc.abstractmethod
    async def listen(self, on_wakeup: Callable[[], None]) -> None:
        """Call `on_wakeup` whenever another process `notify`s, from now on (reconnecting
        as needed) until `close`."""

    @abc.abstractmethod
    async def forget_overwritten(self) -> None:
        """Drop what the database file keeps of rows just overwritten, where the dialect can
        (after an erasure). SQLite: its write-ahead log still holds the old pages until a
        checkpoint, so checkpoint and truncate it. PostgreSQL: nothing to do from here (old row
        versions go with (auto)vacuum; a dump or a replica never shows them)."""

    @abc.abstractmethod
    def notify(self) -> None:
        """Tell the other processes that deliveries became due, after the commit that made
        them so (sent soon, not awaited; a lost one costs a worker's idle poll)."""

    async def fetch(self, query: str, /, **params: Any) -> list[Row]:
        async with self.connection() as conn:
            return await conn.fetch(query, **params)

    async def fetch_one(self, query: str, /, **params: Any) -> Row | None:
        async with self.connection() as conn:
            return await conn.fetch_one(query, **params)

    async def execute(self, query: str, /, **params: Any) -> int:
        async with self.connection() as conn:
            return await conn.execute(query, **params)
