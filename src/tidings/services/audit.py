"""The audit trail (issue 22 section 3): who changed what, and who read a secret.

An operation that changes something builds its entry with `entry(...)` and hands it to the
store method that makes the change, which writes it in the same transaction (all of it is
stored, or none). A sensitive read (a signing secret) is recorded with `record(...)` before the
secret is answered. The entry names the actor's key, the console session acting with it, the
client's address, the organization, the action, the target and the changed fields: names and
non-secret values only (`SECRET_FIELDS` are written as "(changed)", never their value).

Reading: `list_entries` (an organization key sees its organization's entries; a platform key
sees all, optionally one organization's), keyset paged, oldest first.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from tidings.auth import Actor, require_scope
from tidings.errors import ValidationFailed
from tidings.ids import new_id
from tidings.models import AuditEntry, KeyKind, KeyScope, Page
from tidings.services.deps import Deps
from tidings.services.paging import bad_cursor, check_page

SECRET_FIELDS: Final = frozenset({"secret", "secrets", "headers", "api_key", "apiKey", "token"})
CHANGED: Final = "(changed)"
# The actor of what is done on the server's own machine, straight to the database, with no key
# (`tidings keys create --platform`, the way back in when every platform key is lost).
LOCAL_ACTOR: Final = "local"


def entry(
    deps: Deps,
    actor: Actor,
    action: str,
    target_id: str | None,
    changes: Mapping[str, Any] | None = None,
    *,
    organization_id: str | None = None,
    now: float | None = None,
) -> AuditEntry:
    """The entry for `actor` doing `action` to `target_id` (in the actor's organization unless
    `organization_id` names the one a platform key acted on), at `now` or the clock's time."""
    at = deps.clock() if now is None else now
    return entry_at(at, actor, action, target_id, changes, organization_id=organization_id)


def entry_at(
    at: float,
    actor: Actor,
    action: str,
    target_id: str | None,
    changes: Mapping[str, Any] | None = None,
    *,
    organization_id: str | None = None,
) -> AuditEntry:
    """`entry` at a given time (for callers without the service's deps: the local CLI)."""
    return AuditEntry(
        id=new_id("aud", at),
        at=at,
        organization_id=organization_id or actor.organization_id,
        actor_key_id=actor.key_id,
        actor_session_id=actor.session_id,
        client_address=actor.client_address,
        action=action,
        target_id=target_id,
        changes={k: CHANGED if k in SECRET_FIELDS else v for k, v in (changes or {}).items()},
    )


async def record(
    deps: Deps,
    actor: Actor,
    action: str,
    target_id: str | None,
    changes: Mapping[str, Any] | None = None,
    *,
    organization_id: str | None = None,
) -> None:
    """An entry on its own: a sensitive read (a change hands its entry to the store instead)."""
    await deps.store.record_audit(
        entry(deps, actor, action, target_id, changes, organization_id=organization_id)
    )


async def list_entries(
    deps: Deps,
    actor: Actor,
    *,
    action: str | None = None,
    target_id: str | None = None,
    since: float | None = None,
    limit: int,
    cursor: str | None,
) -> Page[AuditEntry]:
    """An organization's own entries (organization key: write or read scope); every entry for a
    platform admin key."""
    require_scope(actor, KeyScope.ADMIN, KeyScope.WRITE, KeyScope.READ)
    check_page(limit)
    if since is not None and since < 0:
        raise ValidationFailed.at("query.since", "must not be before 1970")
    organization_id = None if actor.kind is KeyKind.PLATFORM else actor.organization_id
    try:
        return await deps.store.list_audit(
            organization_id,
            action=action,
            target_id=target_id,
            since=since,
            limit=limit,
            cursor=cursor,
        )
    except ValueError as exc:
        raise bad_cursor() from exc
