"""Group commit: concurrent single requests stored together, each answered on its own.

A client publishing one event per request costs the store one statement and one commit per
event. On PostgreSQL that is about three times the server CPU per event of a batch (issue 6's
probe: ~800 µs against ~240 µs for an event fanning out to 10 endpoints), and the API's own cost
per store call is paid per event too. `GroupCommit` lets requests that arrive while store calls
are already under way be stored by the next call, together, while each caller waits for its own
answer.

Nothing waits for a timer: a request that finds a free slot (fewer than `max_in_flight` calls
running) is stored at once, alone, so under light load nothing changes; groups form only from
requests that would otherwise have queued for the store anyway.

Two items whose `keys` meet (the same event id, the same idempotency key) never share a call: the
later one waits for a later call, where the store sees the first as existing, just as for two
separate requests. When a call for a group fails, each member is stored again on its own, so one
item the store refuses cannot fail the requests that merely arrived beside it.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Awaitable, Callable, Hashable, Iterable
from typing import Generic, TypeVar

T = TypeVar("T")
R = TypeVar("R")


class GroupCommit(Generic[T, R]):
    def __init__(
        self,
        store_many: Callable[[list[T]], Awaitable[list[R]]],
        *,
        keys: Callable[[T], Iterable[Hashable]],
        max_group: int,
        max_in_flight: int,
    ) -> None:
        if max_group < 1 or max_in_flight < 1:
            raise ValueError("max_group and max_in_flight must be at least 1")
        self._store_many = store_many
        self._keys = keys
        self._max_group = max_group
        self._max_in_flight = max_in_flight
        self._waiting: deque[tuple[T, asyncio.Future[R]]] = deque()
        self._in_flight = 0
        self._tasks: set[asyncio.Task[None]] = set()
        self.calls = 0  # store calls made (groups stored), read by tests

    async def submit(self, item: T) -> R:
        """Store `item` with whatever else is waiting; its own result, or its own error."""
        future: asyncio.Future[R] = asyncio.get_running_loop().create_future()
        self._waiting.append((item, future))
        if self._in_flight < self._max_in_flight:
            self._in_flight += 1
            task = asyncio.create_task(self._run())
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        # A caller cancelled while waiting cancels its future: a group not yet taken skips it,
        # a group under way stores it anyway (as a commit already sent would be).
        return await future

    async def _run(self) -> None:
        try:
            while self._waiting:
                group = self._take()
                if group:
                    await self._store(group)
        finally:
            self._in_flight -= 1

    def _take(self) -> list[tuple[T, asyncio.Future[R]]]:
        group: list[tuple[T, asyncio.Future[R]]] = []
        taken_keys: set[Hashable] = set()
        left: deque[tuple[T, asyncio.Future[R]]] = deque()
        # Set-aside items are bounded too: a crowd of repeats of one key (a client retrying in a
        # loop) must not make every call scan the whole queue.
        while self._waiting and len(group) < self._max_group and len(left) < self._max_group:
            item, future = self._waiting.popleft()
            if future.done():  # its caller went away before it was taken
                continue
            keys = set(self._keys(item))
            if keys & taken_keys:
                left.append((item, future))
                continue
            taken_keys |= keys
            group.append((item, future))
        left.extend(self._waiting)
        self._waiting = left
        return group

    async def _store(self, group: list[tuple[T, asyncio.Future[R]]]) -> None:
        try:
            try:
                self.calls += 1
                results = await self._store_many([item for item, _ in group])
            except Exception as exc:
                if len(group) == 1:
                    _fail(group[0][1], exc)
                    return
                for member in group:
                    await self._store([member])
                return
            if len(results) != len(group):
                error = RuntimeError("the store answered a different number of results")
                for _, future in group:
                    _fail(future, error)
                return
            for (_, future), result in zip(group, results, strict=True):
                _resolve(future, result)
        finally:
            # Cancelled mid-call (shutdown): nobody may wait forever for an answer.
            for _, future in group:
                if not future.done():
                    future.cancel()


def _resolve(future: asyncio.Future[R], result: R) -> None:
    if not future.done():
        future.set_result(result)


def _fail(future: asyncio.Future[R], error: Exception) -> None:
    if not future.done():
        future.set_exception(error)
