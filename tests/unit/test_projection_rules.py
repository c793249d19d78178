"""The state projections as pure functions (issue 4 item 5): each rule, and out-of-order events
never moving a field back."""

from __future__ import annotations

import itertools
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from tidings.models import Event, Projection
from tidings.projections import (
    COMPLIANCE,
    ENTITLEMENT,
    LOCKS,
    OWNER,
    lock_holds,
    projection_updates,
    public_state,
)

ATTRS = {
    "owner_id": "own_1",
    "owner_type": "person",
    "external_id": "ext_1",
    "entitlement_trigger_id": "trg_1",
    "entitlement_id": "ent_1",
}
_ids = itertools.count()


def ev(
    type_: str, data: dict[str, Any], at: float, attributes: dict[str, Any] | None = None
) -> Event:
    return Event(
        id=f"evt_{next(_ids)}",
        organization_id="org",
        type=type_,
        schema_version=1,
        source="SYSTEM",
        created_at=at,
        data=data,
        attributes=ATTRS if attributes is None else attributes,
    )


def fold(events: list[Event]) -> dict[tuple[str, str], Projection]:
    """Apply events one by one as the store does."""
    states: dict[tuple[str, str], Projection] = {}
    for event in events:
        for update in projection_updates(event):
            current = states.get((update.kind, update.key))
            new = update.apply(current)
            if new is None:
                continue
            states[(update.kind, update.key)] = Projection(
                organization_id="org",
                kind=update.kind,
                key=update.key,
                state=new,
                version=(current.version + 1) if current else 1,
                updated_at=event.created_at,
                source_created_at=event.created_at,
                last_event_id=event.id,
            )
    return states


def status(order: str, previous: str | None, new: str, at: float) -> Event:
    data = {"orderId": order, "previousStatus": previous, "status": new}
    return ev("compliance.status_changed", data, at, {})


def test_compliance_status_then_decision() -> None:
    states = fold(
        [
            status("o1", None, "INCOMPLETE", 1),
            status("o1", "INCOMPLETE", "VALID", 2),
            ev("compliance.decision_made", {"orderId": "o1", "decision": "VALID_EXPORT"}, 3, {}),
        ]
    )
    view = public_state(states[(COMPLIANCE, "o1")], 0.0)
    assert view["status"] == "VALID"
    assert view["previousStatus"] == "INCOMPLETE"
    assert view["decision"] == "VALID_EXPORT"
    assert view["updatedAt"] == "1970-01-01T00:00:03Z"
    assert "_at" not in view


def test_an_older_status_does_not_move_state_back_but_a_missing_field_is_filled() -> None:
    late = status("o1", "INCOMPLETE", "VALID", 2)
    newest = status("o1", "VALID", "ON_HOLD", 5)
    decision = ev("compliance.decision_made", {"orderId": "o1", "decision": "NO"}, 1, {})
    states = fold([newest, late, decision])
    view = public_state(states[(COMPLIANCE, "o1")], 0.0)
    assert view["status"] == "ON_HOLD"
    assert view["decision"] == "NO"  # older, but nothing newer set it
    assert view["lastEventId"] == newest.id
    assert view["updatedAt"] == "1970-01-01T00:00:05Z"


def test_a_restated_fact_of_the_same_time_changes_nothing() -> None:
    first = status("o1", None, "VALID", 1)
    again = status("o1", None, "VALID", 1)  # the same fact again (a re-sent event)
    states = fold([first])
    [update] = projection_updates(again)
    assert update.apply(states[(COMPLIANCE, "o1")]) is None


def test_lock_events_and_edd_rfi_outcomes() -> None:
    states = fold(
        [
            ev("account_locks.applyFundingLock", {}, 1),
            ev("account_locks.applyTradingLock", {}, 2),
            ev("account_locks.releaseTradingLock", {}, 3),
        ]
    )
    assert public_state(states[(LOCKS, "own_1")], 0.0)["funding_locked"] is True
    assert public_state(states[(LOCKS, "own_1")], 0.0)["trading_locked"] is False
    edd = {"outcome": "failed", "funding_locked": True, "trading_locked": True}
    states = fold([ev("adhoc_edd.entitlementFailed", edd, 1)])
    view = public_state(states[(LOCKS, "own_1")], 0.0)
    assert view["funding_locked"] is True and view["trading_locked"] is True
    rfi = {"outcome": "passed", "funding_locked": False, "trading_locked": False}
    states = fold(
        [ev("adhoc_edd.entitlementFailed", edd, 1), ev("rfi.entitlementCompleted", rfi, 2)]
    )
    view = public_state(states[(LOCKS, "own_1")], 0.0)
    assert view["funding_locked"] is False and view["trading_locked"] is False


def test_events_without_lock_facts_make_no_lock_state() -> None:
    assert (LOCKS, "own_1") not in fold([ev("onboarding.failedIDV", {"status": "failed"}, 1)])
    # a lock event has no entitlement state of its own
    assert (ENTITLEMENT, "ent_1") not in fold([ev("account_locks.applyFundingLock", {}, 1)])


def test_entitlement_lifecycle() -> None:
    q = {"pending_questionnaire_ids": ["q1"], "reason": "onboarding"}
    events = [
        ev("onboarding.requirementsQuestionnaire", q, 1),
        ev("onboarding.failedIDV", {"status": "failed", "messages": []}, 2),
    ]
    view = public_state(fold(events)[(ENTITLEMENT, "ent_1")], 0.0)
    assert view["status"] == "pending_requirements"
    assert view["lastNotification"] == "failedIDV"
    assert view["workflow"] == "onboarding"
    done = ev("onboarding.entitlementCompleted", {"riskScore": 15}, 3)
    view = public_state(fold([*events, done])[(ENTITLEMENT, "ent_1")], 0.0)
    assert view["status"] == "completed"
    assert view["details"] == {"riskScore": 15}
    failed = ev("onboarding.entitlementFailed", {"code": "FL0001"}, 3)
    assert public_state(fold([*events, failed])[(ENTITLEMENT, "ent_1")], 0.0)["status"] == "failed"
    started = ev("rfi.entitlementStarted", {"description": "x"}, 1)
    assert public_state(fold([started])[(ENTITLEMENT, "ent_1")], 0.0)["status"] == "started"


def test_an_entitlement_knows_its_owner_and_trigger_and_an_owner_its_ids() -> None:
    states = fold([ev("rfi.entitlementStarted", {"description": "x"}, 1)])
    view = public_state(states[(ENTITLEMENT, "ent_1")], 0.0)
    assert (view["ownerId"], view["triggerId"]) == ("own_1", "trg_1")
    owner = public_state(states[(OWNER, "own_1")], 0.0)
    assert (owner["owner_type"], owner["external_id"]) == ("person", "ext_1")
    # a lock event is about the owner too
    assert (OWNER, "own_1") in fold([ev("account_locks.applyFundingLock", {}, 1)])


BLACKLIST = {
    "code": "retailDerivatives30DaysBlacklist",
    "description": "locked for 30 days",
    "lock_date": "2024-10-29",
    "lock_release_date": "2024-11-28",
}
RELEASE = 1_732_752_000.0  # 2024-11-28T00:00:00Z


def test_the_derivatives_blacklist_holds_until_its_release_date_begins() -> None:
    states = fold([ev("derivatives.entitlementFailed", BLACKLIST, 1)])
    entitlement = states[(ENTITLEMENT, "ent_1")]
    before = public_state(entitlement, RELEASE - 1)
    assert before["locked_until"] == "2024-11-28" and before["locked"] is True
    after = public_state(entitlement, RELEASE)
    assert after["locked_until"] == "2024-11-28" and after["locked"] is False
    assert (lock_holds(entitlement, RELEASE - 1), lock_holds(entitlement, RELEASE)) == (True, False)
    # access granted later: the lock-out is over whatever the date
    granted = ev("derivatives.entitlementCompleted", {}, 2)
    later = fold([ev("derivatives.entitlementFailed", BLACKLIST, 1), granted])
    assert public_state(later[(ENTITLEMENT, "ent_1")], RELEASE - 1)["locked"] is False
    # an entitlement without a lock-out has neither field
    plain = fold([ev("derivatives.entitlementFailed", {"code": "R0003", "description": "x"}, 1)])
    view = public_state(plain[(ENTITLEMENT, "ent_1")], 0.0)
    assert "locked" not in view and "locked_until" not in view
    assert lock_holds(plain[(ENTITLEMENT, "ent_1")], 0.0) is None


LOCK_TYPES = [
    "account_locks.applyFundingLock",
    "account_locks.releaseFundingLock",
    "account_locks.applyTradingLock",
    "account_locks.releaseTradingLock",
]
STATUSES = ["INCOMPLETE", "VALID", "ON_HOLD", "INVALID"]


@st.composite
def histories(draw: st.DrawFn) -> list[Event]:
    n = draw(st.integers(min_value=1, max_value=8))
    events = []
    for i in range(n):
        kind = draw(st.sampled_from(["lock", "status", "decision"]))
        at = float(i + 1)  # distinct times: "in order" is well defined
        if kind == "lock":
            events.append(ev(draw(st.sampled_from(LOCK_TYPES)), {}, at))
        elif kind == "status":
            events.append(status("o1", None, draw(st.sampled_from(STATUSES)), at))
        else:
            decision = draw(st.sampled_from(["VALID_EXPORT", "NO_EXPORT"]))
            events.append(
                ev("compliance.decision_made", {"orderId": "o1", "decision": decision}, at, {})
            )
    return events


def _public(states: dict[tuple[str, str], Projection]) -> dict[tuple[str, str], dict[str, Any]]:
    return {k: public_state(v, 0.0) for k, v in states.items()}


@settings(max_examples=200, deadline=None)
@given(histories(), st.randoms(use_true_random=False))
def test_any_arrival_order_ends_in_the_state_of_createdAt_order(
    events: list[Event], rnd: Any
) -> None:
    """The property of issue 4 item 5: whatever order the events arrive in, the state is the
    one of applying them in createdAt order (out-of-order events never move state back)."""
    shuffled = list(events)
    rnd.shuffle(shuffled)
    in_order = _public(fold(events))
    any_order = _public(fold(shuffled))
    assert any_order.keys() == in_order.keys()
    for key, state in in_order.items():
        other = any_order[key]
        for field in ("status", "decision", "funding_locked", "trading_locked", "updatedAt"):
            assert other.get(field) == state.get(field), (key, field)
