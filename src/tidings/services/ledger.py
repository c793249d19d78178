"""What an endpoint is owed, for a receiver that checks it has everything (issue 25): the
ledger (its deliveries in sequence order) and the digest of a range of sequence numbers, as
the records `tidings.receiver.ledger` defines for the API and the SDK alike."""

from __future__ import annotations

from tidings.auth import Actor, require_organization
from tidings.errors import Issues, NotFoundError
from tidings.receiver.digest import event_ids_digest
from tidings.receiver.ledger import MAX_DIGEST_RANGE, LedgerPage, RangeDigest
from tidings.services.deps import Deps
from tidings.services.paging import check_page


async def _endpoint_of(deps: Deps, actor: Actor, endpoint_id: str) -> str:
    organization_id = require_organization(actor)
    if await deps.store.get_endpoint(organization_id, endpoint_id, include_deleted=True) is None:
        raise NotFoundError(f"no endpoint {endpoint_id}")
    return organization_id


async def ledger(
    deps: Deps, actor: Actor, endpoint_id: str, *, after: int, limit: int
) -> LedgerPage:
    """The endpoint's deliveries numbered after `after`, oldest first."""
    check_page(limit)
    organization_id = await _endpoint_of(deps, actor, endpoint_id)
    last = await deps.store.last_sequence(endpoint_id)
    items = await deps.store.ledger(organization_id, endpoint_id, after=after, limit=limit)
    more = len(items) == limit and items[-1].sequence < last
    return LedgerPage(items, items[-1].sequence if more else None, last)


async def digest(deps: Deps, actor: Actor, endpoint_id: str, first: int, last: int) -> RangeDigest:
    """Count and digest of the event ids of the deliveries numbered `first` to `last`."""
    issues = Issues()
    if last < first:
        issues.add("query.to", "must not be below from")
    elif last - first + 1 > MAX_DIGEST_RANGE:
        issues.add("query.to", f"a digest covers at most {MAX_DIGEST_RANGE:,} numbers")
    issues.raise_if_any()
    organization_id = await _endpoint_of(deps, actor, endpoint_id)
    highest = await deps.store.last_sequence(endpoint_id)
    ids = await deps.store.ledger_event_ids(organization_id, endpoint_id, first, last)
    return RangeDigest(first, last, len(ids), event_ids_digest(ids), highest)


__all__ = ["MAX_DIGEST_RANGE", "digest", "ledger"]
