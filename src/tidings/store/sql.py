"""The store's SQL files: the named queries of each dialect (`queries/<dialect>.sql`) and its
migrations (`migrations/<dialect>/NNNN_name.sql`).

Queries are written with `:name` parameters in both dialects. SQLite takes them as they are;
for PostgreSQL each name becomes `$n` (the same name, the same number) and the query remembers
the order, so the connector turns the store's keyword arguments into asyncpg's positional ones.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from importlib import resources

DIALECTS = ("sqlite", "postgres")
# What only PostgreSQL has: one-round-trip versions of operations the other queries also do
# (the store's plain path). Every other name is defined by both dialects.
FAST_PATHS = frozenset({"publish_in_one_round_trip", "record_outcomes_in_one_round_trip"})

_NAME = re.compile(r"^--\s*name:\s*([a-z_][a-z0-9_]*)\s*$")
_MIGRATION = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")
# A string literal, a line comment, a `::` cast, or a parameter (`:name`).
_TOKEN = re.compile(r"'(?:[^']|'')*'|--[^\n]*|::|:([a-z_][a-z0-9_]*)")


@dataclass(frozen=True, slots=True)
class Query:
    name: str
    sql: str
    params: tuple[str, ...]  # PostgreSQL: the names of $1, $2, ...; SQLite: the names used
    writes: bool  # anything but a plain SELECT
    # A block of comments only: a step this dialect has nothing to do for (SQLite's locks:
    # its one write transaction holds the whole database). Run, it answers nothing.
    empty: bool


def parse_queries(text: str) -> dict[str, str]:
    """Split a file of `-- name: x` blocks into {name: sql}."""
    queries: dict[str, str] = {}
    name: str | None = None
    lines: list[str] = []

    def flush() -> None:
        if name is not None:
            sql = "\n".join(lines).strip().rstrip(";").strip()
            if not sql:
                raise ValueError(f"query {name!r} is empty")
            queries[name] = sql

    for line in text.splitlines():
        match = _NAME.match(line.strip())
        if match:
            flush()
            name = match.group(1)
            if name in queries:
                raise ValueError(f"query {name!r} defined twice")
            lines = []
        elif name is not None:
            lines.append(line)
    flush()
    return queries


def compile_query(name: str, sql: str, dialect: str) -> Query:
    order: list[str] = []

    def number(match: re.Match[str]) -> str:
        param = match.group(1)
        if param is None:  # a literal, a comment or a cast: as it is
            return match.group(0)
        if param not in order:
            order.append(param)
        return f"${order.index(param) + 1}" if dialect == "postgres" else match.group(0)

    text = _TOKEN.sub(number, sql)
    body = "\n".join(ln for ln in text.splitlines() if not ln.lstrip().startswith("--")).strip()
    return Query(name, text, tuple(order), not body.upper().startswith("SELECT"), not body)


def load_queries(dialect: str) -> dict[str, Query]:
    text = (
        resources.files("tidings.store")
        .joinpath("queries", f"{dialect}.sql")
        .read_text(encoding="utf-8")
    )
    return {name: compile_query(name, sql, dialect) for name, sql in parse_queries(text).items()}


@dataclass(frozen=True, slots=True)
class Migration:
    version: int
    name: str
    sql: str


def load_migrations(dialect: str) -> list[Migration]:
    """In version order. Versions are shared by the dialects: a number means the same change in
    both, and a dialect with nothing to do for it has no file of that number."""
    folder = resources.files("tidings.store").joinpath("migrations", dialect)
    found: list[Migration] = []
    for entry in folder.iterdir():
        match = _MIGRATION.match(entry.name)
        if match:
            found.append(
                Migration(int(match.group(1)), match.group(2), entry.read_text(encoding="utf-8"))
            )
    found.sort(key=lambda m: m.version)
    versions = [m.version for m in found]
    if len(set(versions)) != len(versions):
        raise ValueError(f"duplicate migration versions in {dialect}")
    return found
