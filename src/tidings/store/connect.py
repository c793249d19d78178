"""The URL → store factory. It sits apart from `base.py` because it imports both connectors,
which import what `base.py` imports: kept there, it made the one import circle of the house."""

from __future__ import annotations

from tidings.store.base import Store


def open_store(database_url: str) -> Store:
    """The store over the connector the URL names: sqlite:///path (or sqlite://:memory:) or
    postgresql://."""
    # Imported on demand: an embedded SQLite process never loads asyncpg, nor PostgreSQL aiosqlite.
    if database_url.startswith("sqlite"):
        from tidings.store.sqlite import SqliteConnector

        return Store(SqliteConnector(database_url))
    if database_url.startswith(("postgres://", "postgresql://")):
        from tidings.store.postgres import PostgresConnector

        return Store(PostgresConnector(database_url))
    raise ValueError(f"unsupported TIDINGS_DATABASE_URL scheme: {database_url.split(':', 1)[0]}")
