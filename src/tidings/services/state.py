"""State an integrator polls (contract section 7), built from events by `tidings.projections`:
an order's compliance rollup, a dlt owner's account locks, a dlt entitlement. Organization
keys; state of another organization, or none yet, is a 404."""

from __future__ import annotations

from tidings.auth import Actor, require_organization
from tidings.errors import NotFoundError
from tidings.models import Projection
from tidings.projections import COMPLIANCE, ENTITLEMENT, LOCKS
from tidings.services.deps import Deps

_WHAT = {COMPLIANCE: "order", LOCKS: "owner", ENTITLEMENT: "entitlement"}


async def get_state(deps: Deps, actor: Actor, kind: str, key: str) -> Projection:
    """`kind` is one of COMPLIANCE (key: an order id), LOCKS (an owner id), ENTITLEMENT (an
    entitlement id)."""
    organization_id = require_organization(actor)
    projection = await deps.store.get_projection(organization_id, kind, key)
    if projection is None:
        raise NotFoundError(f"no {kind} state for {_WHAT[kind]} {key}")
    return projection
