"""API keys: who a presented key is (with the in-process cache), and new organization keys
(platform keys only). A key is shown once, in clear, when it is made; the store keeps only its
hash (`tidings.auth` makes keys and hashes)."""

from __future__ import annotations

from tidings.auth import Actor, NewKey, hash_key, new_organization_key
from tidings.errors import Unauthorized
from tidings.models import ApiKey
from tidings.services.deps import Deps
from tidings.services.organizations import get_organization


async def authenticate(deps: Deps, presented: str) -> Actor:
    """The actor a presented key makes (401 for a key tidings does not know). Known keys are
    remembered for a while (`KeyCache`), saving a database round trip per request."""
    key_hash = hash_key(presented)
    actor = deps.keys.get(key_hash)
    if actor is not None:
        return actor
    key = await deps.store.find_api_key(key_hash)
    if key is None:
        raise Unauthorized("unknown API key")
    actor = Actor(key_id=key.id, kind=key.kind, organization_id=key.organization_id)
    deps.keys.put(key_hash, actor)
    return actor


async def create_organization_key(deps: Deps, actor: Actor, organization_id: str) -> NewKey:
    """Another key for an organization (platform keys; 404 for an unknown organization)."""
    await get_organization(deps, actor, organization_id)
    key = new_organization_key(organization_id, deps.clock())
    await deps.store.create_api_key(key.record, key.key_hash)
    return key


async def list_organization_keys(deps: Deps, actor: Actor, organization_id: str) -> list[ApiKey]:
    """An organization's keys, oldest first: what they are, never the keys themselves
    (platform keys; 404 for an unknown organization)."""
    await get_organization(deps, actor, organization_id)
    return await deps.store.list_api_keys(organization_id)
