"""`python -m bench.drain_cpu EVENTS`: the worker's CPU seconds per 1,000 deliveries, for side by
side comparisons on a shared machine (with `PYTHONPATH=<tree>/src:<tree>` to measure another
revision's tree, as bench/abab.py exports them). 10 endpoints x EVENTS events are published
straight through the store (untimed), then one `tidings worker` drains them to nginx; its CPU
time (user + system, psutil) over what it delivered is printed, then the drain's rate. CPU time,
not wall time: a neighbour's load moves it far less than it moves a rate."""

from __future__ import annotations

import asyncio
import sys

import psutil

from bench.env import (
    bulk_publish,
    connected,
    fresh_database,
    make_tenant,
    tidings_env,
    tidings_process,
    wait_delivered,
)
from bench.receiver import start_receiver

ENDPOINTS = 10


async def drain_cpu(events: int) -> tuple[float, float]:
    """(worker CPU seconds per 1,000 deliveries, deliveries per second)."""
    rx = start_receiver("nginx")
    try:
        async with fresh_database("postgres") as url:
            async with connected(url) as store:
                tenant = await make_tenant(store, [f"{rx.url}/ep{i}" for i in range(ENDPOINTS)])
                await bulk_publish(store, tenant.org_id, events)
            total = events * ENDPOINTS
            async with connected(url) as store:
                with tidings_process(["worker"], tidings_env(url)) as proc:
                    worker = psutil.Process(proc.pid)
                    drain = await wait_delivered(store, total, timeout=600, url=url)
                    cpu = worker.cpu_times()
            return (cpu.user + cpu.system) / total * 1000, drain.rate
    finally:
        rx.stop()


def main() -> None:
    per_thousand, rate = asyncio.run(drain_cpu(int(sys.argv[1]) if len(sys.argv) > 1 else 3000))
    print(f"{per_thousand:.4f} {rate:.0f}")


if __name__ == "__main__":
    main()
