"""Erasure of personal data (issue 22 section 4), with a platform admin key: one event, or every
event about a subject (the envelope's `subject`: the order, owner or person it is about), in one
organization or in all.

An erased event keeps its skeleton (id, type, times, source, subject, attributes; its deliveries
and attempts with their statuses and outcomes), so the history still adds up, and loses every
copy of its data: the event's `data` (JSON null, `erasedAt` set), the receivers' response
excerpts of its attempts, and the entitlement `details` copied from it. What was still to be
sent of it is not sent (its pending and held deliveries become skipped, reason "erased"), and it
can no longer be replayed or published again under its id (409 `event_erased`). tidings stores
no request bodies: they are rendered from the event at each attempt.

Each organization's part is one transaction with its audit entry (`event.erase`, or
`subject.erase` naming the subject, with the counts). A subject's events are erased in batches
of ERASE_BATCH, each a transaction of its own; one erasure with nothing to erase is still
recorded.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

from tidings.auth import Actor, require_admin
from tidings.errors import NotFoundError, ValidationFailed
from tidings.models import Event
from tidings.projections import erasure_updates
from tidings.publishing import MAX_ID_CHARS
from tidings.services import audit
from tidings.services.deps import Deps
from tidings.services.organizations import get_organization
from tidings.store.base import ErasureCounts

ERASE_BATCH = 500


@dataclass(frozen=True, slots=True)
class Erased:
    counts: ErasureCounts
    erased_at: float  # when (for an event erased before: then)
    organizations: tuple[str, ...]  # the organizations whose events were erased


async def erase_event(deps: Deps, actor: Actor, organization_id: str, event_id: str) -> Erased:
    """Erase one event of an organization (404 for an unknown organization or event). Erasing
    it again changes nothing and answers when it was erased."""
    require_admin(actor)
    await get_organization(deps, actor, organization_id)
    event = await deps.store.event_to_erase(organization_id, event_id)
    if event is None:
        stored = await deps.store.get_event(organization_id, event_id)
        if stored is None or stored.erased_at is None:
            raise NotFoundError(f"no event {event_id} in organization {organization_id}")
        return Erased(ErasureCounts(), stored.erased_at, ())
    now = deps.clock()
    counts = await _erase(deps, actor, organization_id, [event], "event.erase", event_id, now)
    return Erased(counts, now, (organization_id,))


async def erase_subject(
    deps: Deps, actor: Actor, subject: str, organization_id: str | None = None
) -> Erased:
    """Erase every event about `subject`, in `organization_id` (404 if unknown) or in every
    organization."""
    require_admin(actor)
    if not 0 < len(subject) <= MAX_ID_CHARS:
        raise ValidationFailed.at("path.subject", f"must be 1 to {MAX_ID_CHARS} characters")
    if organization_id is not None:
        await get_organization(deps, actor, organization_id)
    now = deps.clock()
    total = ErasureCounts()
    touched: set[str] = set()
    while batch := await deps.store.events_to_erase_by_subject(
        subject, organization_id, limit=ERASE_BATCH
    ):
        by_organization: dict[str, list[Event]] = defaultdict(list)
        for event in batch:
            by_organization[event.organization_id].append(event)
        erased_now = 0
        for org, events in sorted(by_organization.items()):
            counts = await _erase(deps, actor, org, events, "subject.erase", subject, now)
            total += counts
            erased_now += counts.events
            touched.add(org)
        if erased_now == 0:  # erased meanwhile by another call: nothing left to do here
            break
    if not touched:
        await audit.record(
            deps, actor, "subject.erase", subject, ErasureCounts().as_json(),
            organization_id=organization_id,
        )  # fmt: skip
    return Erased(total, now, tuple(sorted(touched)))


async def _erase(
    deps: Deps,
    actor: Actor,
    organization_id: str,
    events: list[Event],
    action: str,
    target: str,
    now: float,
) -> ErasureCounts:
    entry = audit.entry(deps, actor, action, target, organization_id=organization_id, now=now)
    updates = [u for e in events for u in erasure_updates(e)]
    return await deps.store.erase_events(organization_id, events, updates, now, entry)
