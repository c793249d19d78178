"""The URL → backend factory. It sits apart from `base.py` because it imports both backends,
which import `base.py`: kept there, it made the one import circle of the house."""

from __future__ import annotations

from tidings.store.base import Store


def open_store(database_url: str) -> Store:
    """Pick the implementation by URL: sqlite:///path (or sqlite://:memory:) or postgresql://."""
    # Imported on demand: an embedded SQLite process never loads asyncpg, nor PostgreSQL aiosqlite.
    if database_url.startswith("sqlite"):
        from tidings.store.sqlite import SqliteStore

        return SqliteStore(database_url)
    if database_url.startswith(("postgres://", "postgresql://")):
        from tidings.store.postgres import PostgresStore

        return PostgresStore(database_url)
    raise ValueError(f"unsupported TIDINGS_DATABASE_URL scheme: {database_url.split(':', 1)[0]}")
