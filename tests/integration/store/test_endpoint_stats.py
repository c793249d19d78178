"""Endpoint stats (migration 0016), on both backends: workers' hand-overs of the same endpoint
and hour add up (counts, successes, duration buckets) and keep the latest attempt whichever
arrives last, reads are scoped to the organization and the endpoints asked, hours before the
cut-off go with the next hand-over, and held counts come from the deliveries."""

from __future__ import annotations

from tidings.endpoint_health import Recorder, hour_of, summarize
from tidings.models import DeliveryStatus
from tidings.store.base import Store

from .helpers import T0, event, item, make_endpoint, make_org, pending

DAY = 86_400.0


async def test_hand_overs_add_up_and_keep_the_latest_attempt(store: Store) -> None:
    org = await make_org(store)
    other = await make_org(store)
    a, b = Recorder(), Recorder()  # two workers
    a.record("ep_1", org, T0 + 10, 5.0, 200, None)
    a.record("ep_1", org, T0 + 30, 700.0, 503, None)
    b.record("ep_1", org, T0 + 20, 60.0, 200, None)
    b.record("ep_2", org, T0 + 20, 1.0, None, "connection refused")
    b.record("ep_x", other, T0 + 20, 1.0, 200, None)
    await store.add_endpoint_stats(a.take(), forget_before=T0 - DAY)
    await store.add_endpoint_stats(b.take(), forget_before=T0 - DAY)  # older attempt last
    hours = await store.endpoint_stats(org, ["ep_1", "ep_2", "ep_x"], hour_of(T0))
    assert [h.endpoint_id for h in hours] == ["ep_1", "ep_2"]  # ep_x is another org's
    one = hours[0]
    assert (one.attempts, one.successes) == (3, 2)
    assert one.durations == (1, 0, 1, 0, 0, 1, 0, 0)  # ≤10, ≤100, ≤1000 ms
    assert (one.last_attempt_at, one.last_status_code) == (T0 + 30, 503)
    health = summarize(hours[:1], T0 + 60)
    assert health.success_rate == 2 / 3 and health.last_status_code == 503
    assert hours[1].last_error == "connection refused"
    assert await store.endpoint_stats(org, [], 0.0) == []


async def test_old_hours_go_with_the_next_hand_over(store: Store) -> None:
    org = await make_org(store)
    r = Recorder()
    r.record("ep_1", org, T0, 5.0, 200, None)
    await store.add_endpoint_stats(r.take(), forget_before=T0 - DAY)
    later = T0 + 3 * DAY
    r.record("ep_1", org, later, 5.0, 200, None)
    await store.add_endpoint_stats(r.take(), forget_before=later - 2 * DAY)
    hours = await store.endpoint_stats(org, ["ep_1"], 0.0)
    assert [h.hour for h in hours] == [hour_of(later)]


async def test_held_counts(store: Store) -> None:
    org = await make_org(store)
    paused = await make_endpoint(store, org)
    active = await make_endpoint(store, org)
    for _ in range(2):
        deliveries = [pending(paused.id, status=DeliveryStatus.HELD), pending(active.id)]
        await store.publish([item(event(org), deliveries)], now=T0)
    assert await store.held_counts(org, [paused.id, active.id]) == {paused.id: 2}
    assert await store.held_counts(org, []) == {}
    assert await store.held_counts(await make_org(store), [paused.id]) == {}
