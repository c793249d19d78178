"""Backend fixtures shared by every test that needs a database.

- `backend`: "sqlite" or "postgres" (the latter marked `postgres`; skipped with a reason when the
  local server is unreachable, an error instead when TIDINGS_TEST_REQUIRE_PG=1, as in CI).
- `database_url`: a fresh database of that backend for this test, schema migrated, no rows.
  SQLite: a file under tmp_path copied from a template migrated once per session. PostgreSQL:
  `CREATE DATABASE ... TEMPLATE tidings_test_tpl_<pid>` (migrated once per session), dropped at
  teardown. Admin URL from TIDINGS_TEST_PG_URL.
- `fresh_database_url_factory(backend, migrated=True)`: more fresh URLs in the same test (e.g. for
  process tests), cleaned up at teardown.
- `store`: a connected, migrated Store on `database_url`, closed after the test.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import shutil
from collections.abc import AsyncIterator, Callable, Coroutine, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import pytest

from tidings.store.base import Store
from tidings.store.connect import open_store

PG_ADMIN_URL = os.environ.get(
    "TIDINGS_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)
REQUIRE_PG = os.environ.get("TIDINGS_TEST_REQUIRE_PG") == "1"
PG_TEMPLATE = f"tidings_test_tpl_{os.getpid()}"
_counter = itertools.count()

FreshUrlFactory = Callable[..., str]


def pg_url_for(database: str) -> str:
    """The admin URL pointed at another database."""
    parts = urlsplit(PG_ADMIN_URL)
    return urlunsplit(parts._replace(path=f"/{database}"))


def _pg_admin(*statements: str) -> None:
    """Run admin statements on their own loop (in a thread when the caller is a coroutine)."""

    async def run() -> None:
        import asyncpg

        conn = await asyncpg.connect(PG_ADMIN_URL, timeout=5)
        try:
            for statement in statements:
                await conn.execute(statement)
        finally:
            await conn.close()

    _blocking(run())


def _blocking(coro: Coroutine[Any, Any, None]) -> None:
    """Run `coro` to the end on a new loop; in a thread when a loop already runs here."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        asyncio.run(coro)
        return
    with ThreadPoolExecutor(max_workers=1) as pool:
        pool.submit(asyncio.run, coro).result()


async def _migrate(url: str) -> None:
    store = open_store(url)
    await store.connect()
    try:
        await store.migrate()
    finally:
        await store.close()


@pytest.fixture(scope="session")
def pg_unavailable_reason() -> str | None:
    """None when the PostgreSQL server answers, else why not."""
    try:
        _pg_admin("SELECT 1")
    except Exception as exc:
        return f"PostgreSQL unreachable at {PG_ADMIN_URL}: {type(exc).__name__}: {exc}"
    return None


@pytest.fixture(scope="session")
def pg_template(pg_unavailable_reason: str | None) -> Iterator[str | None]:
    """Name of a migrated template database (built on first use), or None without a server."""
    if pg_unavailable_reason is not None:
        yield None
        return
    _pg_admin(
        f"DROP DATABASE IF EXISTS {PG_TEMPLATE} WITH (FORCE)", f"CREATE DATABASE {PG_TEMPLATE}"
    )
    _blocking(_migrate(pg_url_for(PG_TEMPLATE)))
    yield PG_TEMPLATE
    _pg_admin(f"DROP DATABASE IF EXISTS {PG_TEMPLATE} WITH (FORCE)")


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("sqlite-template") / "template.db"
    _blocking(_migrate(f"sqlite:///{path}"))
    return path


def require_pg(request: pytest.FixtureRequest) -> None:
    reason = request.getfixturevalue("pg_unavailable_reason")
    if reason is not None:
        if REQUIRE_PG:
            pytest.fail(f"TIDINGS_TEST_REQUIRE_PG=1 but {reason}")
        pytest.skip(reason)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def backend(request: pytest.FixtureRequest) -> str:
    name: str = request.param
    if name == "postgres":
        require_pg(request)
    return name


@pytest.fixture
def fresh_database_url_factory(
    request: pytest.FixtureRequest, tmp_path: Path
) -> Iterator[FreshUrlFactory]:
    """`make(backend, migrated=True) -> url`: a new database each call, dropped at teardown."""
    created: list[str] = []

    def make(backend: str, migrated: bool = True) -> str:
        n = next(_counter)
        if backend == "sqlite":
            path = tmp_path / f"tidings-{n}.db"
            if migrated:
                shutil.copyfile(request.getfixturevalue("sqlite_template"), path)
            return f"sqlite:///{path}"
        if backend != "postgres":
            raise ValueError(f"unknown backend {backend!r}")
        require_pg(request)
        name = f"tidings_test_{os.getpid()}_{n}"
        template = request.getfixturevalue("pg_template") if migrated else "template0"
        _pg_admin(f"CREATE DATABASE {name} TEMPLATE {template}")
        created.append(name)
        return pg_url_for(name)

    yield make
    for name in created:
        _pg_admin(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


@pytest.fixture
def database_url(backend: str, fresh_database_url_factory: FreshUrlFactory) -> str:
    return fresh_database_url_factory(backend)


@pytest.fixture
async def store(database_url: str) -> AsyncIterator[Store]:
    s = open_store(database_url)
    await s.connect()
    await s.migrate()
    try:
        yield s
    finally:
        await s.close()
