"""The audit trail (issue 22 section 3) through the service layer, on both backends: every
change and every secret read leaves an entry naming the actor, its session and address, the
organization, the action, the target and the changed fields (never a secret); an entry is
written in the change's transaction (a change that fails leaves none); an organization reads
its own entries, the platform all; filters, keyset pages and retention."""

from __future__ import annotations

from dataclasses import replace

import orjson
import pytest

from tests.integration.services.conftest import World
from tidings.errors import ConflictError, Forbidden, ValidationFailed
from tidings.models import AuditEntry, KeyScope
from tidings.services import audit, deliveries, endpoints, organizations, replay
from tidings.services.endpoints import EndpointPatch
from tidings.store.base import NotFound


def _actions(entries: list[AuditEntry]) -> list[str]:
    return [e.action for e in entries]


async def _all(world: World, **filters: object) -> list[AuditEntry]:
    page = await audit.list_entries(
        world.deps,
        world.platform,
        limit=500,
        cursor=None,
        **filters,  # type: ignore[arg-type]
    )
    return page.items


async def test_every_endpoint_change_and_secret_read_is_recorded_without_secrets(
    world: World,
) -> None:
    org = replace(await world.org(), session_id="cs_1", client_address="203.0.113.7")
    created = await endpoints.create_endpoint(
        world.deps, org, world.endpoint_input(headers={"X-Token": "hdr-credential-42"})
    )
    patch = EndpointPatch(url="https://hooks.example.com/v2", description="second")
    await endpoints.update_endpoint(world.deps, org, created.id, patch)
    read = await endpoints.read_secrets(world.deps, org, created.id)
    rotated = await endpoints.rotate_secret(world.deps, org, created.id, 60)
    event_id = await world.publish(org)
    (delivery,) = (await deliveries.get_event(world.deps, org, event_id)).deliveries
    await replay.replay_delivery(world.deps, org, delivery.id)
    window = replay.ReplayWindow(since=0.0, status="pending")
    await replay.replay_endpoint(world.deps, org, created.id, window)
    await endpoints.pause_endpoint(world.deps, org, created.id)
    await endpoints.resume_endpoint(world.deps, org, created.id)
    await endpoints.delete_endpoint(world.deps, org, created.id)

    page = await audit.list_entries(world.deps, org, limit=100, cursor=None)
    mine = [e for e in page.items if e.action != "organization.create"]
    assert _actions(mine) == [
        "endpoint.create",
        "endpoint.update",
        "endpoint.secret_read",
        "endpoint.secret_rotate",
        "delivery.replay",
        "endpoint.replay",
        "endpoint.pause",
        "endpoint.resume",
        "endpoint.delete",
    ]
    for e in mine:
        assert e.actor_key_id == org.key_id
        assert e.actor_session_id == "cs_1" and e.client_address == "203.0.113.7"
        assert e.organization_id == org.organization_id
    by_action = {e.action: e for e in mine}
    assert by_action["delivery.replay"].target_id == delivery.id
    assert all(e.target_id == created.id for a, e in by_action.items() if a != "delivery.replay")
    assert by_action["endpoint.update"].changes == {
        "url": "https://hooks.example.com/v2",
        "description": "second",
    }
    assert by_action["endpoint.create"].changes["headers"] == audit.CHANGED
    assert by_action["endpoint.replay"].changes["replayed"] == 1
    assert by_action["endpoint.secret_rotate"].changes == {"graceSeconds": 60}
    written = orjson.dumps([e.changes for e in page.items]).decode()
    secrets = [s.secret for s in (*read.signing, *rotated.signing)]
    for secret in [*secrets, "hdr-credential-42"]:
        assert secret not in written


async def test_organization_and_partner_changes_are_recorded_and_a_failed_change_leaves_none(
    world: World,
) -> None:
    made = await organizations.create_organization(world.deps, world.platform, "acme")
    org_id = made.organization.id
    await organizations.create_partner(world.deps, world.platform, org_id, "bank", "p-1")
    with pytest.raises(ConflictError):
        await organizations.create_partner(world.deps, world.platform, org_id, "again", "p-1")
    entries = await _all(world)
    assert _actions(entries) == ["organization.create", "partner.create"]
    assert entries[0].organization_id == org_id and entries[0].changes["name"] == "acme"
    assert made.api_key not in orjson.dumps(entries[0].changes).decode()
    assert entries[1].target_id == "p-1" and entries[1].actor_key_id == "key_platform"

    # the store writes the entry in the change's transaction: no change, no entry
    org = await world.org("globex")
    ep = await endpoints.create_endpoint(world.deps, org, world.endpoint_input())
    entry = audit.entry(world.deps, org, "endpoint.update", "ep_missing")
    with pytest.raises(NotFound):
        await world.deps.store.update_endpoint(replace(ep, id="ep_missing"), entry)
    assert "ep_missing" not in [e.target_id for e in await _all(world)]


async def test_an_organization_reads_its_own_entries_and_the_platform_all(world: World) -> None:
    acme = await world.org("acme")
    globex = await world.org("globex")
    a = await endpoints.create_endpoint(world.deps, acme, world.endpoint_input())
    g = await endpoints.create_endpoint(world.deps, globex, world.endpoint_input())
    await endpoints.pause_endpoint(world.deps, acme, a.id)
    seen = await audit.list_entries(world.deps, acme, limit=50, cursor=None)
    assert {e.organization_id for e in seen.items} == {acme.organization_id}
    assert g.id not in [e.target_id for e in seen.items]
    everything = await _all(world)
    assert {acme.organization_id, globex.organization_id} <= {e.organization_id for e in everything}
    assert _actions(await _all(world, action="endpoint.pause")) == ["endpoint.pause"]
    assert [e.target_id for e in await _all(world, target_id=g.id)] == [g.id]
    world.clock.advance(100)
    later = world.clock()
    await endpoints.resume_endpoint(world.deps, acme, a.id)
    assert _actions(await _all(world, since=later)) == ["endpoint.resume"]
    # keyset pages: one at a time, in order, nothing twice
    cursor: str | None = None
    paged: list[str] = []
    while True:
        page = await audit.list_entries(world.deps, world.platform, limit=1, cursor=cursor)
        paged += [e.id for e in page.items]
        cursor = page.next_cursor
        if cursor is None:
            break
    assert paged == [e.id for e in await _all(world)]
    with pytest.raises(ValidationFailed):
        await audit.list_entries(world.deps, acme, limit=1, cursor="nonsense!")
    publisher = replace(world.platform, scope=KeyScope.PUBLISH)
    with pytest.raises(Forbidden):
        await audit.list_entries(world.deps, publisher, limit=1, cursor=None)


async def test_audit_retention_removes_only_entries_older_than_the_cutoff(world: World) -> None:
    org = await world.org()
    await endpoints.create_endpoint(world.deps, org, world.endpoint_input())
    world.clock.advance(1000)
    cutoff = world.clock()
    await endpoints.create_endpoint(world.deps, org, world.endpoint_input())
    removed = 0
    while n := await world.deps.store.purge_audit(cutoff, 1):
        removed += n
    assert removed == 2  # organization.create and the first endpoint.create
    assert _actions(await _all(world)) == ["endpoint.create"]


async def test_keys_made_and_revoked_and_portal_links_minted_are_recorded(world: World) -> None:
    from tidings.services import console_sessions, keys

    org = await world.org("acme")
    org_id = org.organization_id
    assert org_id is not None
    made = await keys.create_key(world.deps, world.platform, org_id, name="bi export", scope="read")
    platform_key = await keys.create_key(world.deps, world.platform, None, name="ops")
    await keys.revoke_key(world.deps, org, made.record.id)
    await keys.revoke_key(world.deps, org, made.record.id)  # again: no change, no entry
    operator = await keys.authenticate(world.deps, platform_key.api_key)  # a stored key
    link = await console_sessions.mint_portal_link(
        world.deps, operator, org_id, ttl_seconds=60, read_only=True
    )
    entries = [e for e in await _all(world) if e.action != "organization.create"]
    assert _actions(entries) == ["key.create", "key.create", "key.revoke", "portal_link.mint"]
    created, platform_made, revoked, minted = entries
    assert created.target_id == made.record.id and created.organization_id == org_id
    assert created.actor_key_id == "key_platform"
    assert created.changes == {
        "kind": "organization",
        "name": "bi export",
        "scope": "read",
        "prefix": made.record.prefix,
        "expiresAt": None,
    }
    assert platform_made.organization_id is None and platform_made.changes["scope"] == "admin"
    assert platform_made.target_id == platform_key.record.id
    assert revoked.target_id == made.record.id and revoked.actor_key_id == org.key_id
    assert revoked.organization_id == org_id
    assert minted.target_id == link.link.id and minted.organization_id == org_id
    assert minted.actor_key_id == platform_key.record.id
    assert minted.changes["readOnly"] is True
    written = orjson.dumps([e.changes for e in entries]).decode()
    for secret in (made.api_key, platform_key.api_key, link.token):
        assert secret not in written
    # the organization sees its key's and its portal link's entries, not the platform key's
    own = await audit.list_entries(world.deps, org, limit=50, cursor=None)
    assert platform_key.record.id not in [e.target_id for e in own.items]
    assert {made.record.id, link.link.id} <= {e.target_id for e in own.items}


async def test_a_refused_revocation_leaves_no_entry(world: World) -> None:
    from tidings.services import keys

    only = await keys.create_key(world.deps, world.platform, None)
    with pytest.raises(ConflictError):
        await keys.revoke_key(world.deps, world.platform, only.record.id)
    assert _actions(await _all(world)) == ["key.create"]
