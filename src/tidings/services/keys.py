"""API keys (issue 22): who a presented key is (with the in-process cache), and the keys'
lifecycle: made with a name, a scope and an optional expiry (shown once, in clear; the store
keeps only the hash and a visible prefix), listed, revoked. A revoked or expired key is refused
by every process within `auth.KEY_CACHE_SECONDS`; the last platform key that works cannot be
revoked (409), so an operator cannot lock themselves out (`tidings keys create --platform`,
run where the database is, is the way back in)."""

from __future__ import annotations

from tidings.auth import (
    Actor,
    NewKey,
    hash_key,
    make_key,
    require_admin,
    require_writer,
)
from tidings.clock import to_rfc3339
from tidings.errors import ConflictError, NotFoundError, Unauthorized, ValidationFailed
from tidings.models import SCOPES_OF_KIND, ApiKey, AuditEntry, KeyKind, KeyScope, Page
from tidings.services import audit
from tidings.services.deps import Deps
from tidings.services.organizations import get_organization
from tidings.services.paging import bad_cursor, check_page
from tidings.store.base import Conflict

MAX_NAME_CHARS = 100


async def authenticate(deps: Deps, presented: str) -> Actor:
    """The actor a presented key makes (401 for a key tidings does not know, or one revoked or
    expired). Known keys are remembered for a few seconds (`KeyCache`), saving a database round
    trip per request; the key's last use is written at most once a minute."""
    key_hash = hash_key(presented)
    now = deps.clock()
    actor = deps.keys.get(key_hash)
    if actor is None:
        key = await deps.store.find_api_key(key_hash)
        if key is None or not key.usable_at(now):
            raise Unauthorized("unknown API key" if key is None else "revoked or expired API key")
        actor = Actor(
            key_id=key.id,
            kind=key.kind,
            organization_id=key.organization_id,
            scope=key.effective_scope,
            expires_at=key.expires_at,
        )
        deps.keys.put(key_hash, actor)
    if deps.keys.is_revoked(actor.key_id) or (
        actor.expires_at is not None and now >= actor.expires_at
    ):
        raise Unauthorized("revoked or expired API key")
    if deps.keys.should_touch(actor.key_id, now):
        await deps.store.touch_api_key(actor.key_id, now)
    return actor


def _checked(
    kind: KeyKind, name: str | None, scope: str | None, expires_at: float | None, now: float
) -> KeyScope | None:
    """The scope asked (None: the kind's full powers); 422 naming the field for a name too
    long, a scope of the other kind, an expiry not in the future."""
    issues = []
    if name is not None and not 0 < len(name) <= MAX_NAME_CHARS:
        issues.append({"path": "$.name", "message": f"must be 1 to {MAX_NAME_CHARS} characters"})
    allowed = [str(s) for s in SCOPES_OF_KIND[str(kind)]]
    if scope is not None and scope not in allowed:
        issues.append({"path": "$.scope", "message": f"must be one of {', '.join(allowed)}"})
    if expires_at is not None and expires_at <= now:
        issues.append({"path": "$.expiresAt", "message": "must be in the future"})
    if issues:
        raise ValidationFailed.of(issues)
    return None if scope is None else KeyScope(scope)


async def create_key(
    deps: Deps,
    actor: Actor,
    organization_id: str | None,
    *,
    name: str | None = None,
    scope: str | None = None,
    expires_at: float | None = None,
) -> NewKey:
    """A new organization key (`organization_id`; 404 for an unknown organization) or, with
    None, a new platform key. Platform keys with scope admin only."""
    require_admin(actor)
    if organization_id is not None:
        await get_organization(deps, actor, organization_id)
    kind = KeyKind.PLATFORM if organization_id is None else KeyKind.ORGANIZATION
    now = deps.clock()
    chosen = _checked(kind, name, scope, expires_at, now)
    key = make_key(kind, organization_id, now, name=name, scope=chosen, expires_at=expires_at)
    await deps.store.create_api_key(
        key.record, key.key_hash, key_entry(actor, "key.create", key.record, now)
    )
    return key


def key_entry(actor: Actor, action: str, key: ApiKey, now: float) -> AuditEntry:
    """A key's audit entry: what it is (never the key itself), in its organization's trail."""
    changes = {
        "kind": str(key.kind),
        "name": key.name,
        "scope": str(key.effective_scope),
        "prefix": key.prefix,
        "expiresAt": None if key.expires_at is None else to_rfc3339(key.expires_at),
    }
    return audit.entry_at(now, actor, action, key.id, changes, organization_id=key.organization_id)


LOCAL_ACTOR = Actor(key_id=audit.LOCAL_ACTOR, kind=KeyKind.PLATFORM, organization_id=None,
                    client_address=audit.LOCAL_ACTOR)  # fmt: skip


async def list_keys(deps: Deps, actor: Actor, *, limit: int, cursor: str | None) -> Page[ApiKey]:
    """An organization key: its organization's keys; a platform key: the platform keys. Oldest
    first, revoked and expired ones included (they say so); never the keys themselves."""
    check_page(limit)
    if actor.kind is KeyKind.PLATFORM:
        require_admin(actor)
    owner = actor.organization_id if actor.kind is KeyKind.ORGANIZATION else None
    try:
        return await deps.store.api_keys_page(owner, limit=limit, cursor=cursor)
    except ValueError:
        raise bad_cursor() from None


async def revoke_key(deps: Deps, actor: Actor, key_id: str) -> ApiKey:
    """Revoke a key: an organization key (scope write) revokes its organization's keys, a
    platform key (scope admin) any key. 404 for another organization's key; 409 for the last
    platform admin key that works (publish keys make no keys, so they cannot stand in for
    it). Revoking twice is no error."""
    if actor.kind is KeyKind.ORGANIZATION:
        organization_id: str | None = require_writer(actor)
    else:
        require_admin(actor)
        organization_id = None
    key = await deps.store.get_api_key(key_id)
    if key is None or (organization_id is not None and key.organization_id != organization_id):
        raise NotFoundError(f"no API key {key_id}")
    now = deps.clock()
    try:
        await deps.store.revoke_api_key(key, now, key_entry(actor, "key.revoke", key, now))
    except Conflict as exc:
        raise ConflictError(
            "this is the last platform admin key that works: make another first "
            "(POST /v1/api-keys, or `tidings keys create --platform` where the database is)",
            code="last_platform_key",
        ) from exc
    deps.keys.revoke(key.id)
    found = await deps.store.get_api_key(key_id)
    assert found is not None
    return found


async def list_organization_keys(deps: Deps, actor: Actor, organization_id: str) -> list[ApiKey]:
    """An organization's keys, oldest first: what they are, never the keys themselves
    (platform keys; 404 for an unknown organization)."""
    await get_organization(deps, actor, organization_id)
    return await deps.store.list_api_keys(organization_id)
