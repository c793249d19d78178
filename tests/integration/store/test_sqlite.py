"""SQLite-only details: URL forms, file creation, in-memory databases."""

from __future__ import annotations

from pathlib import Path

import pytest

from tidings.store.base import StoreError
from tidings.store.connect import open_store
from tidings.store.sql import load_migrations
from tidings.store.sqlite import sqlite_path

from .helpers import make_org


def test_url_forms() -> None:
    assert sqlite_path("sqlite:///data/tidings.db") == "data/tidings.db"
    assert sqlite_path("sqlite:////var/lib/tidings.db") == "/var/lib/tidings.db"
    assert sqlite_path("sqlite://:memory:") == ":memory:"
    for bad in ("sqlite://relative.db", "sqlite:///", "postgresql://x"):
        with pytest.raises(ValueError):
            sqlite_path(bad)


async def test_connect_creates_the_directory_and_data_persists(tmp_path: Path) -> None:
    path = tmp_path / "deep" / "er" / "tidings.db"
    store = open_store(f"sqlite:///{path}")
    await store.connect()
    await store.migrate()
    org = await make_org(store)
    await store.close()
    assert path.exists()
    again = open_store(f"sqlite:///{path}")
    await again.connect()
    try:
        assert (await again.migration_status()).up_to_date
        assert await again.get_organization(org) is not None
    finally:
        await again.close()


async def test_in_memory_database() -> None:
    store = open_store("sqlite://:memory:")
    await store.connect()
    try:
        assert await store.migrate() == [m.version for m in load_migrations("sqlite")]
        org = await make_org(store)
        assert await store.get_organization(org) is not None
    finally:
        await store.close()


async def test_using_a_closed_store_is_a_store_error(tmp_path: Path) -> None:
    store = open_store(f"sqlite:///{tmp_path / 'x.db'}")
    with pytest.raises(StoreError):
        await store.ping()
