"""The two migration sets declare the same tables and columns, and the loaders reject bad
files; cursors are opaque and checked."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable

import asyncpg
import pytest

from tidings.store._common import decode_cursor, encode_cursor, load_migrations, parse_queries
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
        rows = await conn.fetch(
            "SELECT table_name, column_name FROM information_schema.columns"
            " WHERE table_schema = 'public'"
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
    # PostgreSQL only: what lets a process keep endpoints in memory (migration 0003); SQLite's
    # store reads them in-process on every publish.
    pg_cols["organizations"].remove("endpoints_version")
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
    } == set(sqlite_cols)


def test_migration_versions_match_between_dialects() -> None:
    sqlite = [(m.version, m.name) for m in load_migrations("sqlite")]
    assert sqlite == [(m.version, m.name) for m in load_migrations("postgres")]
    assert sqlite[0] == (1, "init")


def test_query_file_parser() -> None:
    text = "-- header\n-- name: a\nSELECT 1;\n\n-- name: b\nSELECT\n  2\n"
    assert parse_queries(text) == {"a": "SELECT 1", "b": "SELECT\n  2"}
    with pytest.raises(ValueError):
        parse_queries("-- name: a\nSELECT 1\n-- name: a\nSELECT 2\n")
    with pytest.raises(ValueError):
        parse_queries("-- name: a\n\n-- name: b\nSELECT 2\n")


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
