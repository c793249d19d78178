"""GroupCommit: single requests that arrive while a store call is under way are stored together
by the next call, each answered on its own; colliding items never share a call; one failing item
does not fail its group."""

from __future__ import annotations

import asyncio

import pytest

from tidings.group_commit import GroupCommit


class Store:
    """Records each call's items; answers `r<item>`; a call waits while `gate` is closed."""

    def __init__(self, refuse: str | None = None) -> None:
        self.calls: list[list[str]] = []
        self.gate = asyncio.Event()
        self.gate.set()
        self.refuse = refuse

    async def store_many(self, items: list[str]) -> list[str]:
        self.calls.append(list(items))
        await self.gate.wait()
        if self.refuse is not None and self.refuse in items:
            raise ValueError(f"refused {self.refuse}")
        return [f"r{item}" for item in items]


def group(store: Store, *, max_group: int = 100, max_in_flight: int = 1) -> GroupCommit[str, str]:
    return GroupCommit(
        store.store_many,
        keys=lambda item: [item.split("/")[0]],  # "a/1" and "a/2" collide
        max_group=max_group,
        max_in_flight=max_in_flight,
    )


async def first_call_under_way(
    gc: GroupCommit[str, str], store: Store, item: str
) -> asyncio.Task[str]:
    """Close the store's gate and submit `item`: its call starts, alone, and waits; whatever is
    submitted next gathers for the following call."""
    store.gate.clear()
    first = asyncio.create_task(gc.submit(item))
    await asyncio.sleep(0)
    await asyncio.sleep(0)
    assert store.calls[-1] == [item]
    return first


async def test_a_request_alone_is_stored_at_once_by_itself() -> None:
    store = Store()
    gc = group(store)
    assert await gc.submit("a") == "ra"
    assert store.calls == [["a"]]
    assert gc.calls == 1


async def test_requests_arriving_during_a_call_are_stored_together_each_with_its_answer() -> None:
    store = Store()
    gc = group(store)
    first = await first_call_under_way(gc, store, "a")
    rest = [asyncio.create_task(gc.submit(x)) for x in "bcdefg"]
    await asyncio.sleep(0)
    store.gate.set()
    assert await first == "ra"
    assert [await t for t in rest] == [f"r{x}" for x in "bcdefg"]
    assert store.calls == [["a"], list("bcdefg")]


async def test_calls_in_flight_are_bounded_and_groups_are_bounded() -> None:
    store = Store()
    gc = group(store, max_group=3, max_in_flight=2)
    store.gate.clear()
    tasks = [asyncio.create_task(gc.submit(str(n))) for n in range(10)]
    for _ in range(3):
        await asyncio.sleep(0)
    assert len(store.calls) == 2  # two in flight, the rest wait
    store.gate.set()
    assert [await t for t in tasks] == [f"r{n}" for n in range(10)]
    assert max(len(c) for c in store.calls) <= 3
    assert sorted(x for c in store.calls for x in c) == sorted(str(n) for n in range(10))


async def test_items_whose_keys_meet_never_share_a_call() -> None:
    store = Store()
    gc = group(store)
    first = await first_call_under_way(gc, store, "z")
    rest = [asyncio.create_task(gc.submit(x)) for x in ["a/1", "b", "a/2", "c", "a/3"]]
    await asyncio.sleep(0)
    store.gate.set()
    await asyncio.gather(first, *rest)
    assert store.calls == [["z"], ["a/1", "b", "c"], ["a/2"], ["a/3"]]


async def test_an_item_the_store_refuses_fails_alone() -> None:
    store = Store(refuse="bad")
    gc = group(store)
    first = await first_call_under_way(gc, store, "z")
    rest = [asyncio.create_task(gc.submit(x)) for x in ["a", "bad", "c"]]
    await asyncio.sleep(0)
    store.gate.set()
    assert await first == "rz"
    assert await rest[0] == "ra"
    with pytest.raises(ValueError, match="refused bad"):
        await rest[1]
    assert await rest[2] == "rc"
    # the group's call, then each member again on its own
    assert store.calls == [["z"], ["a", "bad", "c"], ["a"], ["bad"], ["c"]]


async def test_a_caller_gone_before_its_group_was_taken_is_not_stored() -> None:
    store = Store()
    gc = group(store)
    first = await first_call_under_way(gc, store, "a")
    gone = asyncio.create_task(gc.submit("b"))
    kept = asyncio.create_task(gc.submit("c"))
    await asyncio.sleep(0)
    gone.cancel()
    await asyncio.sleep(0)
    store.gate.set()
    assert await first == "ra"
    assert await kept == "rc"
    assert gone.cancelled()
    assert store.calls == [["a"], ["c"]]


async def test_a_store_answering_the_wrong_count_fails_its_callers() -> None:
    async def short(items: list[str]) -> list[str]:
        return items[:-1]

    gc: GroupCommit[str, str] = GroupCommit(
        short, keys=lambda i: [i], max_group=10, max_in_flight=1
    )
    with pytest.raises(RuntimeError, match="different number"):
        await gc.submit("a")


def test_bounds_must_be_positive() -> None:
    with pytest.raises(ValueError):
        GroupCommit(Store().store_many, keys=lambda i: [i], max_group=0, max_in_flight=1)
