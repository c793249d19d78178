"""The two migration sets declare the same tables and columns and add up to the schema files
beside them, from a new database or one made at any earlier version; the loaders reject bad
files; cursors are opaque and checked."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable

import asyncpg
import pytest

from tidings.store.base import Store
from tidings.store.connect import open_store
from tidings.store.rows import decode_cursor, encode_cursor
from tidings.store.schema import schema_path, schema_text
from tidings.store.sql import compile_query, load_migrations, parse_queries
from tidings.store.sqlite import sqlite_path


def _sqlite_columns(url: str) -> dict[str, set[str]]:
    conn = sqlite3.connect(sqlite_path(url))
    try:
        tables = [
            r[0]
            for r in conn.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
            )
        ]
        return {t: {r[1] for r in conn.execute(f"PRAGMA table_info({t})")} for t in tables}
    finally:
        conn.close()


async def _postgres_columns(url: str) -> dict[str, set[str]]:
    conn = await asyncpg.connect(url)
    try:
        rows = await conn.fetch(  # a partitioned table's partitions are not tables of their own
            "SELECT table_name, column_name FROM information_schema.columns"
            " JOIN pg_class AS c ON c.oid = ('public.' || quote_ident(table_name))::regclass"
            " WHERE table_schema = 'public' AND NOT c.relispartition"
        )
    finally:
        await conn.close()
    found: dict[str, set[str]] = {}
    for r in rows:
        found.setdefault(r["table_name"], set()).add(r["column_name"])
    return found


@pytest.mark.postgres
async def test_both_backends_have_the_same_tables_and_columns(
    fresh_database_url_factory: Callable[..., str],
) -> None:
    sqlite_cols = _sqlite_columns(fresh_database_url_factory("sqlite"))
    pg_cols = await _postgres_columns(fresh_database_url_factory("postgres"))
    assert sqlite_cols == pg_cols
    assert {
        "organizations",
        "api_keys",
        "partners",
        "endpoints",
        "events",
        "deliveries",
        "attempts",
        "projections",
        "console_sessions",
        "portal_links",
        "schema_migrations",
        "workers_seen",
        "endpoint_stats",
        "audit_log",
        "endpoint_sequences",
        "subject_heads",
    } == set(sqlite_cols)


def test_migration_versions_mean_one_change_in_both_dialects() -> None:
    """One sequence of numbers: a version both dialects have is the same change (same name);
    a dialect with nothing to do for a version has no file of that number."""
    sqlite = {m.version: m.name for m in load_migrations("sqlite")}
    postgres = {m.version: m.name for m in load_migrations("postgres")}
    assert sqlite[1] == postgres[1] == "init"
    assert {v: sqlite[v] for v in sqlite.keys() & postgres.keys()} == {
        v: postgres[v] for v in sqlite.keys() & postgres.keys()
    }


def test_query_file_parser() -> None:
    text = "-- header\n-- name: a\nSELECT 1;\n\n-- name: b\nSELECT\n  2\n"
    assert parse_queries(text) == {"a": "SELECT 1", "b": "SELECT\n  2"}
    with pytest.raises(ValueError):
        parse_queries("-- name: a\nSELECT 1\n-- name: a\nSELECT 2\n")
    with pytest.raises(ValueError):
        parse_queries("-- name: a\n\n-- name: b\nSELECT 2\n")


def test_query_parameters_are_named_in_both_dialects_and_numbered_for_postgres() -> None:
    sql = (
        "-- for :nobody\nSELECT ':not_a_param', x::text FROM t\n"
        "WHERE a = :first AND (:second::bigint IS NULL OR b > :second) AND c = :first"
    )
    pg = compile_query("q", sql, "postgres")
    assert pg.params == ("first", "second")
    assert pg.sql.endswith("WHERE a = $1 AND ($2::bigint IS NULL OR b > $2) AND c = $1")
    assert "':not_a_param', x::text" in pg.sql and "-- for :nobody" in pg.sql
    sqlite = compile_query("q", sql, "sqlite")
    assert (sqlite.sql, sqlite.params) == (sql, ("first", "second"))
    assert not pg.writes and not pg.empty
    assert compile_query("w", "-- first\nUPDATE t SET a = :a", "sqlite").writes
    nothing = compile_query("n", "-- nothing to do in this dialect", "sqlite")
    assert nothing.empty and nothing.params == ()


@pytest.mark.parametrize("seq", [0, 1, 42, 9_007_199_254_740_993])
def test_cursor_round_trip(seq: int) -> None:
    cursor = encode_cursor(seq)
    assert cursor.isascii() and str(seq) not in cursor
    assert decode_cursor(cursor) == seq


@pytest.mark.parametrize("bad", ["", "!!", "YWJj", "LTE", "MS4y", "é", "x" * 40])
def test_malformed_cursor(bad: str) -> None:
    with pytest.raises(ValueError):
        decode_cursor(bad)


def test_no_cursor() -> None:
    assert decode_cursor(None) is None


async def test_the_migrations_make_the_schema_file(store: Store) -> None:
    """migrations/<dialect>/schema.sql is what the migrations add up to (scripts/schema writes
    it); a migration added without writing it again fails here."""
    assert await schema_text(store) == schema_path(store.dialect).read_text(encoding="utf-8")


async def _made_at(url: str, version: int, recorded: list[int]) -> None:
    """A database as tidings made it when `version` was its newest migration: the migrations
    up to it applied, and `recorded` the versions it wrote down (SQLite's 2 to 6 were empty
    files, recorded all the same, until they were removed)."""
    store = open_store(url)
    await store.connect()
    try:
        async with store._db.transaction() as tx:
            await tx.execute("create_migrations_table")
            for m in load_migrations(store.dialect):
                if m.version <= version:
                    await tx.run_script(m.sql)
            for v in recorded:
                await tx.execute("record_migration", version=v, name=f"v{v}")
    finally:
        await store.close()


@pytest.mark.parametrize("version", [1, 3, 6, 7])
async def test_a_database_made_at_an_earlier_version_migrates_to_the_schema_file(
    backend: str, version: int, fresh_database_url_factory: Callable[..., str]
) -> None:
    url = fresh_database_url_factory(backend, migrated=False)
    await _made_at(url, version, list(range(1, version + 1)))
    store = open_store(url)
    await store.connect()
    try:
        later = [m.version for m in load_migrations(backend) if m.version > version]
        before = await store.migration_status()
        assert before.current == version and before.pending == tuple(later)
        assert await store.migrate() == later
        assert (await store.migration_status()).up_to_date
        assert await schema_text(store) == schema_path(backend).read_text(encoding="utf-8")
    finally:
        await store.close()
