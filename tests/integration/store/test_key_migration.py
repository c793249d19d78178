"""Keys made before migration 0010 (issue 22 section 1) keep working after it, on both
backends: a platform key and an organization key written with the old columns only come out
of the migration with their full powers (admin, write), no name or prefix, never used, never
expiring, listed, and revocable like any other."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from tidings.auth import hash_key
from tidings.models import KeyScope
from tidings.store.connect import open_store

from .helpers import T0, migrate_before

PLATFORM = "tdk_platform_made_before_0010_abcdefghijklmnop"
ORGANIZATION = "tdk_org_made_before_0010_abcdefghijklmnopqrs"
OLD_ROWS = f"""
INSERT INTO organizations (id, name, created_at) VALUES ('org_old', 'old', {T0});
INSERT INTO api_keys (id, key_hash, kind, organization_id, created_at)
VALUES ('key_old_platform', '{hash_key(PLATFORM)}', 'platform', NULL, {T0});
INSERT INTO api_keys (id, key_hash, kind, organization_id, created_at)
VALUES ('key_old_org', '{hash_key(ORGANIZATION)}', 'organization', 'org_old', {T0 + 1});
"""


async def test_keys_made_before_0010_keep_working(
    backend: str,
    fresh_database_url_factory: Callable[..., str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    store = open_store(fresh_database_url_factory(backend, migrated=False))
    await store.connect()
    try:
        await migrate_before(store, 10, monkeypatch)
        async with store._db.connection() as conn:
            await conn.run_script(OLD_ROWS)
        assert 10 in await store.migrate()
        platform = await store.find_api_key(hash_key(PLATFORM))
        organization = await store.find_api_key(hash_key(ORGANIZATION))
        assert platform is not None and organization is not None
        assert platform.effective_scope is KeyScope.ADMIN and platform.scope is KeyScope.ADMIN
        assert organization.effective_scope is KeyScope.WRITE
        for key in (platform, organization):
            assert key.usable_at(T0 + 10 * 365 * 86_400)
            assert (key.name, key.prefix, key.last_used_at, key.expires_at) == (None,) * 4
        page = await store.api_keys_page("org_old", limit=10, cursor=None)
        assert [k.id for k in page.items] == ["key_old_org"]
        await store.touch_api_key("key_old_org", T0 + 100)
        assert await store.revoke_api_key(organization, T0 + 200)
        revoked = await store.find_api_key(hash_key(ORGANIZATION))
        assert revoked is not None and revoked.last_used_at == T0 + 100
        assert not revoked.usable_at(T0 + 201)
    finally:
        await store.close()
