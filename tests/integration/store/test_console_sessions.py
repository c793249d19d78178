"""Console sessions and portal links in the store, on both backends: found by token hash until
they expire, ended by sign-out, a portal link opens once, and the key behind them bounds them."""

from __future__ import annotations

import asyncio

import pytest

from tidings.ids import new_id
from tidings.models import ApiKey, ConsoleSession, KeyKind, PortalLink
from tidings.store.base import Conflict, Store

from .helpers import T0, make_org

HOUR = 3600.0


async def platform_key(store: Store) -> ApiKey:
    key = ApiKey(id=new_id("key"), kind=KeyKind.PLATFORM, organization_id=None, created_at=T0)
    await store.create_api_key(key, f"hash-{key.id}")
    return key


def session(key: ApiKey, org_id: str | None = None, **kw: object) -> ConsoleSession:
    fields: dict[str, object] = {
        "id": new_id("cs"),
        "key_id": key.id,
        "kind": KeyKind.ORGANIZATION if org_id else KeyKind.PLATFORM,
        "organization_id": org_id,
        "read_only": False,
        "created_at": T0,
        "expires_at": T0 + HOUR,
    }
    fields.update(kw)
    return ConsoleSession(**fields)  # type: ignore[arg-type]


def link(key: ApiKey, org_id: str, **kw: object) -> PortalLink:
    fields: dict[str, object] = {
        "id": new_id("pl"),
        "organization_id": org_id,
        "key_id": key.id,
        "read_only": True,
        "created_at": T0,
        "expires_at": T0 + 900,
    }
    fields.update(kw)
    return PortalLink(**fields)  # type: ignore[arg-type]


async def test_a_session_is_found_by_its_hash_until_it_expires(store: Store) -> None:
    key = await platform_key(store)
    org = await make_org(store)
    mine = session(key, org, read_only=True)
    await store.create_console_session(mine, "h1")
    assert await store.find_console_session("h1", T0 + 10) == mine
    assert await store.find_console_session("h2", T0 + 10) is None
    assert await store.find_console_session("h1", T0 + HOUR) is None
    with pytest.raises(Conflict):
        await store.create_console_session(session(key), "h1")


async def test_sign_out_ends_the_session(store: Store) -> None:
    key = await platform_key(store)
    await store.create_console_session(session(key), "h1")
    await store.create_console_session(session(key), "other")
    assert await store.delete_console_session("h1") is True
    assert await store.find_console_session("h1", T0) is None
    assert await store.delete_console_session("h1") is False
    assert await store.find_console_session("other", T0) is not None


async def test_a_portal_link_opens_once(store: Store) -> None:
    key = await platform_key(store)
    org = await make_org(store)
    minted = link(key, org)
    await store.create_portal_link(minted, "p1")
    first = await store.use_portal_link("p1", T0 + 5)
    assert first.opened and first.link is not None
    assert first.link.organization_id == org and first.link.read_only
    assert first.link.used_at == T0 + 5
    second = await store.use_portal_link("p1", T0 + 6)
    assert not second.opened and second.link is not None and second.link.used_at == T0 + 5
    unknown = await store.use_portal_link("nope", T0)
    assert unknown.link is None and not unknown.opened


async def test_an_expired_portal_link_does_not_open(store: Store) -> None:
    key = await platform_key(store)
    org = await make_org(store)
    await store.create_portal_link(link(key, org), "p1")
    late = await store.use_portal_link("p1", T0 + 900)
    assert not late.opened and late.link is not None and late.link.used_at is None


async def test_concurrent_opens_of_one_link_open_it_once(store: Store) -> None:
    key = await platform_key(store)
    org = await make_org(store)
    await store.create_portal_link(link(key, org), "p1")
    uses = await asyncio.gather(*(store.use_portal_link("p1", T0 + 1) for _ in range(5)))
    assert sum(u.opened for u in uses) == 1


async def test_purge_removes_what_expired_before_the_cutoff(store: Store) -> None:
    key = await platform_key(store)
    org = await make_org(store)
    await store.create_console_session(session(key, expires_at=T0 + 10), "old")
    await store.create_console_session(session(key, expires_at=T0 + HOUR), "new")
    await store.create_portal_link(link(key, org, expires_at=T0 + 10), "old-link")
    await store.create_portal_link(link(key, org, expires_at=T0 + HOUR), "new-link")
    assert await store.purge_console_sessions(T0 + 100) == 2
    assert await store.find_console_session("new", T0 + 100) is not None
    assert (await store.use_portal_link("old-link", T0)).link is None
    assert (await store.use_portal_link("new-link", T0 + 100)).opened
