"""`tidings listen --key` fetches the secrets again when a delivery does not verify: a request
is always checked against secrets read after it arrived (a rotation just before it must not make
it a 401), fetches stay REFETCH_SECONDS apart, and a burst shares one fetch."""

from __future__ import annotations

import asyncio

from tidings.cli.apiclient import ConnectionFailed
from tidings.cli.fetched_secrets import REFETCH_SECONDS, FetchedSecrets, points_here


class Clock:
    def __init__(self) -> None:
        self.now = 100.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


class Scripted(FetchedSecrets):
    """Each fetch reads the next entry of `answers` (a list of secrets, or an exception)."""

    def __init__(self, clock: Clock, answers: list[list[str] | Exception]) -> None:
        super().__init__("http://api", "key", "127.0.0.1", 9000, [], [], clock=clock,
                         sleep=clock.sleep)  # fmt: skip
        self.answers = answers
        self.fetches = 0
        self.gate: asyncio.Event | None = None

    async def fetch(self) -> None:
        self._fetched_at = self._clock()
        self.fetches += 1
        if self.gate is not None:
            await self.gate.wait()
        answer = self.answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        self.secrets[:] = answer


async def test_a_request_right_after_a_fetch_waits_for_a_fresh_one() -> None:
    clock = Clock()
    fetched = Scripted(clock, [["old"], ["new"]])
    assert await fetched.refresh() is True
    assert fetched.secrets == ["old"]
    clock.now += 0.2  # the secret is rotated, a delivery signed with the new one arrives
    assert await fetched.refresh() is True
    assert fetched.secrets == ["new"]
    assert fetched.fetches == 2
    assert len(clock.slept) == 1
    assert abs(clock.slept[0] - (REFETCH_SECONDS - 0.2)) < 1e-9


async def test_a_fetch_long_enough_ago_is_done_at_once() -> None:
    clock = Clock()
    fetched = Scripted(clock, [["a"], ["b"]])
    await fetched.refresh()
    clock.now += REFETCH_SECONDS + 1
    await fetched.refresh()
    assert clock.slept == []
    assert fetched.secrets == ["b"]


async def test_requests_waiting_on_a_fetch_begun_after_they_arrived_share_it() -> None:
    clock = Clock()
    fetched = Scripted(clock, [["one"]])
    fetched.gate = asyncio.Event()
    first = asyncio.create_task(fetched.refresh())
    await asyncio.sleep(0)  # the first holds the lock, its fetch has begun
    # the others arrive at the instant the fetch began (the clock has not moved)
    others = [asyncio.create_task(fetched.refresh()) for _ in range(5)]
    await asyncio.sleep(0)
    fetched.gate.set()
    assert await first is True
    assert await asyncio.gather(*others) == [True] * 5
    assert fetched.fetches == 1


async def test_a_request_arriving_during_a_fetch_gets_a_later_one() -> None:
    """The fetch in progress may have read the secrets before a rotation the request carries."""
    clock = Clock()
    fetched = Scripted(clock, [["before"], ["after"]])
    fetched.gate = asyncio.Event()
    first = asyncio.create_task(fetched.refresh())
    await asyncio.sleep(0)
    clock.now += 0.3
    late = asyncio.create_task(fetched.refresh())
    await asyncio.sleep(0)
    fetched.gate.set()
    assert await first is True
    assert await late is True
    assert fetched.fetches == 2
    assert fetched.secrets == ["after"]


async def test_a_failing_api_answers_false_and_names_the_problem() -> None:
    clock = Clock()
    fetched = Scripted(clock, [ConnectionFailed("connection refused"), ["back"]])
    assert await fetched.refresh() is False
    assert fetched.problem is not None
    clock.now += 0.1
    assert await fetched.refresh() is True  # after the pause, asked again
    assert fetched.problem is None
    assert fetched.secrets == ["back"]


def test_points_here() -> None:
    assert points_here("http://127.0.0.1:9000/hooks", "127.0.0.1", 9000)
    assert points_here("http://localhost:9000/hooks", "127.0.0.1", 9000)
    assert not points_here("http://127.0.0.1:9001/hooks", "127.0.0.1", 9000)
    assert not points_here("http://example.com:9000/hooks", "127.0.0.1", 9000)
