"""Publish-to-receipt latency, shared by the `latency` and `wan` scenarios: a fresh PostgreSQL
database with one endpoint per URL, one `tidings api` and one `tidings worker`, single events
published over HTTP at a steady pace (after two seconds of warm-up at the same pace), and each
event's first receipt time as the receiver logged it."""

from __future__ import annotations

import asyncio
import gc
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from bench.env import (
    PLATFORM_KEY,
    connected,
    envelope,
    fresh_database,
    make_tenant,
    many_processes,
    tidings_env,
    wait_delivered,
    wait_http,
)
from bench.receiver import free_port

WARM_UP_SECONDS = 2


@dataclass
class Latencies:
    """Sorted milliseconds of the timed events: publish call to first receipt (`receipt`),
    and publish call to the API's answer (`answer`: how much of it the publishing took)."""

    receipt: list[float]
    answer: list[float]

    @staticmethod
    def quantile(values: list[float], q: float) -> float:
        return values[min(len(values) - 1, int(len(values) * q))]

    def answered(self) -> str:
        p50, p99 = self.quantile(self.answer, 0.5), self.quantile(self.answer, 0.99)
        return f"the API answered the publishes in {p50:.1f} ms (p50), {p99:.1f} ms (p99)"


async def paced_latency(
    urls: list[str],
    rate: int,
    seconds: float,
    receipts: Callable[[], dict[str, Any]],
    **env_extra: str,
) -> Latencies:
    """Milliseconds from each timed event's publish call to its first receipt, and to the
    API's answer. `receipts` stops the receiver and answers its stats (`first_seen`: event id
    -> time)."""
    import aiohttp
    import orjson

    count = int(rate * seconds)
    warmup = WARM_UP_SECONDS * rate
    sent: dict[str, float] = {}
    answered: dict[str, float] = {}
    async with fresh_database("postgres") as url:
        async with connected(url) as store:
            tenant = await make_tenant(store, urls)
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        env = tidings_env(url, **env_extra)
        with many_processes([["api", "--port", str(port)], ["worker"]], env):
            await wait_http(base)
            await asyncio.sleep(1.0)  # the worker is listening
            headers = {
                "Authorization": f"Bearer {PLATFORM_KEY}",
                "Content-Type": "application/json",
            }
            async with aiohttp.ClientSession(headers=headers) as session:

                async def one(n: int) -> None:
                    body = orjson.dumps(envelope(tenant.org_id, n) | {"id": f"evt_lat_{n}"})
                    sent[f"evt_lat_{n}"] = time.time()
                    async with session.post(base + "/v1/events", data=body) as r:
                        await r.read()
                    answered[f"evt_lat_{n}"] = time.time()

                async def paced(first: int, n_events: int) -> None:
                    tasks = []
                    started = time.perf_counter()
                    for n in range(first, first + n_events):
                        delay = started + (n - first) / rate - time.perf_counter()
                        if delay > 0:
                            await asyncio.sleep(delay)
                        tasks.append(asyncio.create_task(one(n)))
                    await asyncio.gather(*tasks)

                # warm-up at the same pace, not counted: the first requests open the client's
                # and the API's connections and prepare statements
                await paced(-warmup, warmup)
                for n in range(-warmup, 0):
                    sent.pop(f"evt_lat_{n}", None)
                # the measuring client's own collector pauses are not tidings' latency
                gc.collect()
                gc.disable()
                try:
                    await paced(0, count)
                finally:
                    gc.enable()
            async with connected(url) as store:
                delivered = (count + warmup) * len(urls)
                await wait_delivered(store, delivered, timeout=120, url=url)
    first_seen: dict[str, float] = receipts().get("first_seen", {})
    return Latencies(
        sorted((first_seen[k] - t) * 1000 for k, t in sent.items() if k in first_seen),
        sorted((answered[k] - t) * 1000 for k, t in sent.items() if k in answered),
    )
