"""State an integrator polls (contract section 7), built from events by `tidings.projections`:
an order's compliance rollup, a dlt owner's account locks, a dlt entitlement, and the look-ups
the seeds imply (issue 26): rollups changed since a time, an owner with its locks and
entitlements, owners by the integrator's own id, entitlements by owner, trigger and state.
Organization keys; state of another organization, or none yet, is a 404."""

from __future__ import annotations

from typing import Any

from tidings.auth import Actor, require_organization
from tidings.errors import NotFoundError, ValidationFailed, time_at
from tidings.models import JSON, Page, Projection
from tidings.projections import (
    COMPLIANCE,
    ENTITLEMENT,
    ENTITLEMENT_STATUS,
    LOCKS,
    OWNER,
    public_state,
)
from tidings.services.deps import Deps
from tidings.services.paging import bad_cursor, check_page
from tidings.store.base import ProjectionLookup

_WHAT = {COMPLIANCE: "order", LOCKS: "owner", ENTITLEMENT: "entitlement", OWNER: "owner"}
ENTITLEMENT_STATES = tuple(sorted(set(ENTITLEMENT_STATUS.values())))
OWNER_ENTITLEMENTS = 100  # listed on an owner's state; the rest through GET /v1/entitlements


async def get_state(deps: Deps, actor: Actor, kind: str, key: str) -> Projection:
    """`kind` is one of COMPLIANCE (key: an order id), LOCKS (an owner id), ENTITLEMENT (an
    entitlement id)."""
    organization_id = require_organization(actor)
    projection = await deps.store.get_projection(organization_id, kind, key)
    if projection is None:
        raise NotFoundError(f"no {kind} state for {_WHAT[kind]} {key}")
    return projection


def state_view(deps: Deps, projection: Projection) -> dict[str, JSON]:
    """The state as the API and the console show it, read at the service's clock (an
    entitlement's lock-out ends with its release date, without an event)."""
    return public_state(projection, deps.clock())


async def owner(deps: Deps, actor: Actor, owner_id: str) -> dict[str, Any]:
    """A dlt owner: its type and external id, its account locks and its entitlements (the
    first OWNER_ENTITLEMENTS in change order; `entitlementsCursor` continues them in
    GET /v1/entitlements?ownerId=). 404 when no event has been about this owner."""
    organization_id = require_organization(actor)
    store = deps.store
    found = await store.get_projection(organization_id, OWNER, owner_id)
    locks = await store.get_projection(organization_id, LOCKS, owner_id)
    entitlements = await store.list_projections(
        organization_id,
        ENTITLEMENT,
        limit=OWNER_ENTITLEMENTS,
        cursor=None,
        lookup=ProjectionLookup(owner_id=owner_id),
    )
    if found is None and locks is None and not entitlements.items:
        raise NotFoundError(f"no state for owner {owner_id}")
    identity = {} if found is None else found.state
    lock_state = {"funding_locked": False, "trading_locked": False, "updatedAt": None}
    if locks is not None:
        shown = state_view(deps, locks)
        lock_state = {name: shown.get(name) for name in lock_state}
    return {
        "ownerId": owner_id,
        "owner_type": identity.get("owner_type"),
        "external_id": identity.get("external_id"),
        "locks": lock_state,
        "entitlements": [state_view(deps, p) for p in entitlements.items],
        "entitlementsCursor": entitlements.next_cursor,
    }


async def owners(
    deps: Deps, actor: Actor, *, external_id: str | None, limit: int, cursor: str | None
) -> Page[dict[str, JSON]]:
    """The organization's dlt owners in change order; with `external_id`, those the integrator
    knows by that id (normally one)."""
    return await _list(deps, actor, OWNER, limit, cursor, ProjectionLookup(external_id=external_id))


async def entitlements(
    deps: Deps,
    actor: Actor,
    *,
    owner_id: str | None,
    trigger_id: str | None,
    state: str | None,
    limit: int,
    cursor: str | None,
) -> Page[dict[str, JSON]]:
    """Entitlements in change order, by owner, by the trigger that started them and by state
    (`started`, `pending_requirements`, `completed`, `failed`)."""
    if state is not None and state not in ENTITLEMENT_STATES:
        raise ValidationFailed.at("query.state", f"must be one of {', '.join(ENTITLEMENT_STATES)}")
    look = ProjectionLookup(owner_id=owner_id, trigger_id=trigger_id, status=state)
    return await _list(deps, actor, ENTITLEMENT, limit, cursor, look)


async def orders(
    deps: Deps,
    actor: Actor,
    *,
    status: str | None,
    decision: str | None,
    changed_since: str | None,
    limit: int,
    cursor: str | None,
) -> Page[dict[str, JSON]]:
    """Compliance rollups in the order they changed (oldest change first), changed at or after
    `changed_since` (RFC 3339), by status and decision: how an integrator that lost a webhook
    finds what moved without knowing the order ids. Status and decision values are the
    catalog's own (`compliance.status_changed`, `compliance.decision_made`)."""
    _one_of(deps, "query.status", status, "compliance.status_changed", "status")
    _one_of(deps, "query.decision", decision, "compliance.decision_made", "decision")
    since = time_at(changed_since, "query.changedSince")
    look = ProjectionLookup(status=status, decision=decision, changed_since=since)
    return await _list(deps, actor, COMPLIANCE, limit, cursor, look)


async def _list(
    deps: Deps,
    actor: Actor,
    kind: str,
    limit: int,
    cursor: str | None,
    lookup: ProjectionLookup,
) -> Page[dict[str, JSON]]:
    organization_id = require_organization(actor)
    check_page(limit)
    try:
        page = await deps.store.list_projections(
            organization_id, kind, limit=limit, cursor=cursor, lookup=lookup
        )
    except ValueError:
        raise bad_cursor() from None
    return Page([state_view(deps, p) for p in page.items], page.next_cursor)


def _one_of(deps: Deps, path: str, value: str | None, type_name: str, field: str) -> None:
    if value is None:
        return
    allowed: set[str] = set()
    event_type = deps.catalog.get(type_name)
    for version in [] if event_type is None else event_type.versions.values():
        prop = version.schema.get("properties", {}).get(field, {})
        allowed.update(v for v in prop.get("enum", []) if isinstance(v, str))
    if value not in allowed:
        raise ValidationFailed.at(path, f"must be one of {', '.join(sorted(allowed))}")
