"""State projections: what an integrator can poll when a webhook went astray (contract section 7).

Pure functions from an event to `ProjectionUpdate`s, applied by the store inside the event's
publishing transaction:

- `compliance` per `orderId` (from `compliance.*`): status, previousStatus, decision.
- `locks` per dlt owner (`attributes.owner_id`): funding_locked / trading_locked, from the
  `account_locks.*` events and the lock outcomes of the EDD (`adhoc_edd.*`) and RFI (`rfi.*`)
  entitlement results.
- `entitlement` per dlt `attributes.entitlement_id`: started, pending_requirements, completed,
  failed, with the last notification and its details, the owner and the trigger that started it,
  and `locked_until` when a failure locks the owner out until a date (the derivatives
  blacklist's `lock_release_date`); whether that lock still holds is computed when read
  (`public_state`, handed `now`).
- `owner` per dlt owner: `owner_type` and `external_id` (the integrator's own id), from every
  dlt event about the owner, so an owner can be found by its external id.

Erasure (issue 22 section 4): of all this state, only the entitlement's `details` is a copy of
an event's data; `erasure_updates(event)` gives the updates that remove that copy (the other
fields are statuses, dates and ids: the skeleton an erasure keeps).

Out of order: each field remembers the `createdAt` of the event that set it (`_at`), and an event
older than that does not move the field back; an event that changes nothing answers None (state,
version and ETag stay as they are).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

from tidings.clock import to_rfc3339
from tidings.models import JSON, Event, Projection
from tidings.store.base import ProjectionUpdate

COMPLIANCE = "compliance"
LOCKS = "locks"
ENTITLEMENT = "entitlement"
OWNER = "owner"

# The details field of a failure that locks the owner out of the entitlement until a date
# (`retailDerivatives30DaysBlacklist`; the error-code reference names it as `locksUntil`).
LOCK_RELEASE_FIELD = "lock_release_date"

_TIMES = "_at"  # field -> createdAt (epoch seconds) of the event that set it

ENTITLEMENT_STATUS = {
    "entitlementStarted": "started",
    "requirementsIDV": "pending_requirements",
    "requirementsQuestionnaire": "pending_requirements",
    "entitlementCompleted": "completed",
    "entitlementFailed": "failed",
}
LOCK_EVENTS = {
    "account_locks.applyFundingLock": ("funding_locked", True),
    "account_locks.releaseFundingLock": ("funding_locked", False),
    "account_locks.applyTradingLock": ("trading_locked", True),
    "account_locks.releaseTradingLock": ("trading_locked", False),
}
LOCK_OUTCOME_WORKFLOWS = ("adhoc_edd", "rfi")


def _newest(times: Mapping[str, JSON]) -> float | None:
    values = [t for t in times.values() if isinstance(t, int | float)]
    return max(values) if values else None


def merge_fields(
    current: Projection | None, fields: Mapping[str, JSON], event: Event
) -> dict[str, JSON] | None:
    """The new state with `fields` applied where the event is not older than what set each
    field before; None when nothing changes (every field already holds this value from an event
    of the same time). A later event restating a value moves `updatedAt` and `lastEventId`, so
    the state does not depend on the order events arrive in."""
    state: dict[str, JSON] = dict(current.state) if current is not None else {}
    times_raw = state.get(_TIMES)
    times: dict[str, JSON] = dict(times_raw) if isinstance(times_raw, dict) else {}
    newest_before = _newest(times)
    changed = False
    for name, value in fields.items():
        previous_at = times.get(name)
        if isinstance(previous_at, int | float) and event.created_at < previous_at:
            continue  # an older fact does not overwrite a newer one
        if name not in state or state[name] != value or previous_at != event.created_at:
            changed = True  # a new value, or the same fact asserted again, later
        state[name] = value
        times[name] = event.created_at
    if not changed:
        return None
    state[_TIMES] = times
    newest = _newest(times)
    state["updatedAt"] = to_rfc3339(newest if newest is not None else event.created_at)
    if newest_before is None or event.created_at >= newest_before:
        state["lastEventId"] = event.id
    return state


def _update(kind: str, key: str, event: Event, fields: dict[str, JSON]) -> ProjectionUpdate:
    def apply(current: Projection | None) -> dict[str, JSON] | None:
        return merge_fields(current, fields, event)

    return ProjectionUpdate(kind=kind, key=key, apply=apply)


def _compliance(event: Event, data: Mapping[str, Any]) -> list[ProjectionUpdate]:
    order_id = data.get("orderId")
    if not isinstance(order_id, str):
        return []
    fields: dict[str, JSON] = {"orderId": order_id}
    if event.type == "compliance.status_changed":
        fields["status"] = data.get("status")
        fields["previousStatus"] = data.get("previousStatus")
    elif event.type == "compliance.decision_made":
        fields["decision"] = data.get("decision")
    else:
        return []
    return [_update(COMPLIANCE, order_id, event, fields)]


def _locks(event: Event, data: Mapping[str, Any], owner_id: str) -> list[ProjectionUpdate]:
    fields: dict[str, JSON] = {"ownerId": owner_id}
    if event.type in LOCK_EVENTS:
        name, value = LOCK_EVENTS[event.type]
        fields[name] = value
    elif event.type.split(".", 1)[0] in LOCK_OUTCOME_WORKFLOWS:
        for name in ("funding_locked", "trading_locked"):
            if isinstance(data.get(name), bool):
                fields[name] = data[name]
    if len(fields) == 1:
        return []
    return [_update(LOCKS, owner_id, event, fields)]


def _entitlement(
    event: Event, data: Mapping[str, Any], attributes: Mapping[str, Any]
) -> list[ProjectionUpdate]:
    entitlement_id = attributes.get("entitlement_id")
    workflow, _, notification = event.type.partition(".")
    if not isinstance(entitlement_id, str) or workflow == "account_locks":
        return []
    fields: dict[str, JSON] = {
        "entitlementId": entitlement_id,
        "workflow": workflow,
        "ownerId": attributes.get("owner_id"),
        "triggerId": attributes.get("entitlement_trigger_id"),
        "lastNotification": notification,
        "details": dict(data),
    }
    status = ENTITLEMENT_STATUS.get(notification)
    if status is not None:
        fields["status"] = status
    release = data.get(LOCK_RELEASE_FIELD)
    if isinstance(release, str) and _release_time(release) is not None:
        fields["locked_until"] = release
    return [_update(ENTITLEMENT, entitlement_id, event, fields)]


def _owner(attributes: Mapping[str, Any], owner_id: str, event: Event) -> list[ProjectionUpdate]:
    fields: dict[str, JSON] = {"ownerId": owner_id}
    for name in ("owner_type", "external_id"):
        if isinstance(attributes.get(name), str):
            fields[name] = attributes[name]
    return [_update(OWNER, owner_id, event, fields)]


def _release_time(date: str) -> float | None:
    """The start (00:00 UTC) of a `YYYY-MM-DD` release date: from then on the lock is over."""
    try:
        return dt.datetime.strptime(date, "%Y-%m-%d").replace(tzinfo=dt.UTC).timestamp()
    except ValueError:
        return None


def projection_updates(event: Event) -> list[ProjectionUpdate]:
    """Every projection the event changes (possibly none)."""
    data = event.data if isinstance(event.data, dict) else {}
    if event.type.startswith("compliance."):
        return _compliance(event, data)
    attributes = event.attributes or {}
    owner_id = attributes.get("owner_id")
    if not isinstance(owner_id, str):
        return []
    return (
        _locks(event, data, owner_id)
        + _entitlement(event, data, attributes)
        + _owner(attributes, owner_id, event)
    )


DETAILS = "details"  # the one field holding a copy of an event's data


def erasure_updates(event: Event) -> list[ProjectionUpdate]:
    """The updates that remove the copy of `event`'s data from the projections it changed (read
    before the erasure, while `event.data` is still there): an entitlement's `details`, when
    they are this event's data (a later event's details are its own and stay)."""
    data = event.data if isinstance(event.data, dict) else {}

    def erase(current: Projection | None) -> dict[str, JSON] | None:
        if current is None or current.state.get(DETAILS) != data:
            return None
        return {**current.state, DETAILS: None}

    return [
        ProjectionUpdate(kind=u.kind, key=u.key, apply=erase)
        for u in projection_updates(event)
        if u.kind == ENTITLEMENT
    ]


def public_state(projection: Projection, now: float) -> dict[str, JSON]:
    """The state as the API shows it: internal bookkeeping removed, defaults filled in, and for
    an entitlement with `locked_until`, `locked`: true while its last outcome is the failure
    that locked the owner out and the release date has not begun (at `now`)."""
    state = {k: v for k, v in projection.state.items() if k != _TIMES}
    state.setdefault("lastEventId", projection.last_event_id)
    if projection.kind == LOCKS:
        state.setdefault("funding_locked", False)
        state.setdefault("trading_locked", False)
    if projection.kind == COMPLIANCE:
        state.setdefault("status", None)
        state.setdefault("decision", None)
    if projection.kind == ENTITLEMENT:
        state.setdefault("status", None)
        state.setdefault("triggerId", None)
        until = state.get("locked_until")
        if isinstance(until, str):
            release = _release_time(until)
            state["locked"] = state["status"] == "failed" and release is not None and now < release
    return state


def lock_holds(projection: Projection, now: float) -> bool | None:
    """Whether an entitlement's lock-out holds at `now` (None: it has none). What the clock
    changes in a state without an event: part of its ETag."""
    locked = public_state(projection, now).get("locked")
    return locked if isinstance(locked, bool) else None
