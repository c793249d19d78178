"""The SQLite connector: aiosqlite, one connection in WAL mode, one process.

An asyncio.Lock gives the one connection to one block at a time, so a block never sees another
coroutine's uncommitted transaction. Writes run in `BEGIN IMMEDIATE` transactions (a block's,
or one of their own for a statement outside a transaction), which take the database's write
lock before reading. sqlite3 errors become StoreError here and nowhere else.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import AbstractAsyncContextManager
from pathlib import Path
from typing import Any

import aiosqlite

from tidings.store.connector import Connection, Connector
from tidings.store.rows import Row, dumps
from tidings.store.sql import Query
from tidings.store.types import Conflict, StoreError

BUSY_TIMEOUT_MS = 5000


def sqlite_path(url: str) -> str:
    """sqlite:///relative/path, sqlite:////absolute/path, sqlite://:memory:."""
    if not url.startswith("sqlite:"):
        raise ValueError("not a sqlite URL")
    rest = url[len("sqlite:") :]
    if rest in ("//:memory:", "///:memory:", ":memory:"):
        return ":memory:"
    if not rest.startswith("///"):
        raise ValueError("sqlite URL must look like sqlite:///path or sqlite://:memory:")
    path = rest[3:]
    if not path:
        raise ValueError("sqlite URL has no path")
    return path


@contextlib.contextmanager
def _mapped_errors() -> Iterator[None]:
    """The one place where sqlite3 errors become StoreError."""
    try:
        yield
    except sqlite3.IntegrityError as exc:
        if "UNIQUE" in str(exc) or "PRIMARY KEY" in str(exc):
            raise Conflict(str(exc)) from exc
        raise StoreError(str(exc)) from exc
    except sqlite3.Error as exc:
        raise StoreError(str(exc)) from exc


def _split_script(script: str) -> list[str]:
    statements: list[str] = []
    buffer = ""
    for line in script.splitlines(keepends=True):
        buffer += line
        if sqlite3.complete_statement(buffer):
            if buffer.strip():
                statements.append(buffer.strip())
            buffer = ""
    if buffer.strip() and not all(
        ln.strip().startswith("--") or not ln.strip() for ln in buffer.splitlines()
    ):
        raise ValueError("migration ends with an incomplete statement")
    return statements


def _bind(query: Query, params: dict[str, Any]) -> dict[str, Any]:
    """A list parameter as a JSON array (the queries read it with json_each)."""
    return {
        name: dumps(value) if isinstance(value, list | tuple) else value
        for name, value in params.items()
        if name in query.params
    }


class _SqliteConnection(Connection):
    def __init__(self, db: aiosqlite.Connection, queries: dict[str, Query]) -> None:
        self._db = db
        self._queries = queries
        self._in_tx = False

    def _own_transaction(self, q: Query) -> AbstractAsyncContextManager[None]:
        """A write outside a block's transaction runs in one of its own."""
        if q.writes and not self._in_tx:
            return _immediate(self._db)
        return contextlib.nullcontext()

    # Each call below is one trip to aiosqlite's thread (execute_fetchall runs, fetches and
    # closes there): the trips, not the statements, are most of what a write costs here.
    async def fetch(self, query: str, /, **params: Any) -> list[Row]:
        q = self._queries[query]
        if q.empty:
            return []
        with _mapped_errors():
            async with self._own_transaction(q):
                return list(await self._db.execute_fetchall(q.sql, _bind(q, params)))

    async def fetch_one(self, query: str, /, **params: Any) -> Row | None:
        rows = await self.fetch(query, **params)
        return rows[0] if rows else None

    async def execute(self, query: str, /, **params: Any) -> int:
        q = self._queries[query]
        if q.empty:
            return 0
        with _mapped_errors():
            async with self._own_transaction(q):
                cursor = await self._db.execute(q.sql, _bind(q, params))
                return int(cursor.rowcount)

    async def run_script(self, sql: str) -> None:
        with _mapped_errors():
            for statement in _split_script(sql):
                await self._db.execute(statement)

    @contextlib.asynccontextmanager
    async def transaction(self) -> AsyncIterator[None]:
        with _mapped_errors():
            async with _immediate(self._db):
                self._in_tx = True
                try:
                    yield
                finally:
                    self._in_tx = False


@contextlib.asynccontextmanager
async def _immediate(db: aiosqlite.Connection) -> AsyncIterator[None]:
    await db.execute("BEGIN IMMEDIATE")
    try:
        yield
        await db.execute("COMMIT")
    except BaseException:
        if db.in_transaction:  # also when COMMIT itself failed
            await db.execute("ROLLBACK")
        raise


class SqliteConnector(Connector):
    dialect = "sqlite"

    def __init__(self, url: str) -> None:
        super().__init__()
        self._path = sqlite_path(url)
        self._db: aiosqlite.Connection | None = None
        self._lock = asyncio.Lock()

    async def open(self) -> None:
        if self._db is not None:
            return
        if self._path != ":memory:":
            Path(self._path).expanduser().parent.mkdir(parents=True, exist_ok=True)
        try:
            db = await aiosqlite.connect(self._path, isolation_level=None)
            db.row_factory = sqlite3.Row
            await db.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
            await db.execute("PRAGMA journal_mode = WAL")
            await db.execute("PRAGMA synchronous = NORMAL")
            await db.execute("PRAGMA foreign_keys = ON")
            # deleted and overwritten content is zeroed in the file, not left in free space
            # (an erasure must leave no copy; Debian's build has it on by default already)
            await db.execute("PRAGMA secure_delete = ON")
        except sqlite3.Error as exc:
            raise StoreError(f"cannot open SQLite database: {exc}") from exc
        self._db = db

    async def close(self) -> None:
        db, self._db = self._db, None
        if db is not None:
            with _mapped_errors():
                await db.close()

    def _conn(self) -> aiosqlite.Connection:
        if self._db is None:
            raise StoreError("store is not connected")
        return self._db

    @contextlib.asynccontextmanager
    async def connection(self) -> AsyncIterator[Connection]:
        async with self._lock:
            yield _SqliteConnection(self._conn(), self.queries)

    async def listen(self, on_wakeup: Callable[[], None]) -> None:
        """Nothing to listen to: one process, whose own wake-ups the store calls directly."""

    def notify(self) -> None:
        """No other process to tell."""

    async def forget_overwritten(self) -> None:
        """Copy the write-ahead log into the database and truncate it to nothing: the log's
        older frames hold pages as they were before an erasure."""
        async with self._lock:
            with _mapped_errors():
                await self._conn().execute("PRAGMA wal_checkpoint(TRUNCATE)")
