"""Workers seen (migration 0017), on both backends: a worker's row keeps its start and moves its
last time, the overview's window leaves out workers not seen lately, a graceful stop deletes the
row, and rows a day old go with the next upsert of any worker."""

from __future__ import annotations

from tidings.store.base import Store

from .helpers import T0

DAY = 86_400.0


async def test_workers_seen_since(store: Store) -> None:
    await store.worker_seen("wrk_a", T0, T0, forget_before=T0 - DAY)
    await store.worker_seen("wrk_b", T0 + 5, T0 + 5, forget_before=T0 - DAY)
    await store.worker_seen("wrk_a", T0, T0 + 30, forget_before=T0 + 30 - DAY)
    assert await store.workers_seen(T0) == [("wrk_a", T0, T0 + 30), ("wrk_b", T0 + 5, T0 + 5)]
    assert await store.workers_seen(T0 + 10) == [("wrk_a", T0, T0 + 30)]
    await store.worker_gone("wrk_a")
    assert await store.workers_seen(T0) == [("wrk_b", T0 + 5, T0 + 5)]
    await store.worker_gone("wrk_nope")  # nothing to delete: no error


async def test_rows_a_day_old_go_with_the_next_upsert(store: Store) -> None:
    await store.worker_seen("wrk_dead", T0, T0, forget_before=T0 - DAY)
    later = T0 + DAY + 60
    await store.worker_seen("wrk_new", later, later, forget_before=later - DAY)
    assert await store.workers_seen(0.0) == [("wrk_new", later, later)]
