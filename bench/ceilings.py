"""The `ceilings` scenario (issue 27 §4): the ceiling itself. The same bare loop (bench.ceiling)
with each HTTP client a fast sender could use, against the same receivers: loopback nginx at
tidings' 256 in flight, and the distant TLS receiver of `wan` at 2,048 in flight. Each figure
is a client's rate over aiohttp's (the ceiling every other scenario reports against), measured
in the order A B C C B A so a drift of the VM weighs on all alike; a client 1.5 x faster would
be worth reporting against, and trying behind the `Sender` interface."""

from __future__ import annotations

import statistics

from bench.ceiling import CLIENTS
from bench.env import ceiling_rate
from bench.receiver import start_receiver
from bench.scenarios import CONCURRENCY, Figure, _n
from bench.wan import CEILING_IN_FLIGHT
from bench.wan_net import wan_receiver

REQUESTS = 100_000


def _mirrored(url: str, count: int, in_flight: int, ca: str | None) -> dict[str, list[float]]:
    rates: dict[str, list[float]] = {c: [] for c in CLIENTS}
    for client in [*CLIENTS, *reversed(CLIENTS)]:
        rates[client].append(ceiling_rate(url, count, in_flight, client=client, ca_file=ca))
    return rates


def _figures(where: str, rates: dict[str, list[float]], size: str) -> list[Figure]:
    base = statistics.fmean(rates["aiohttp"])
    figures = []
    for client in CLIENTS:
        rate = statistics.fmean(rates[client])
        figures.append(
            Figure(
                "ceilings",
                f"{client} ({where})",
                rate,
                "requests/s",
                "report against it if ≥ 1.5 x aiohttp",
                None,
                base,
                rate / base,
                size + f"; {client}: " + ", ".join(f"{r:,.0f}" for r in rates[client]) + "/s",
            )
        )
    return figures


async def ceilings(scale: float, receiver: str) -> list[Figure]:
    count = _n(REQUESTS, scale, 1_000)
    rx = start_receiver(receiver)
    try:
        loopback = _mirrored(rx.url + "/ceiling", count, CONCURRENCY, None)
    finally:
        rx.stop()
    size = f"{count:,} signed 1 KiB POSTs per run, runs in the order A B C C B A"
    figures = _figures(f"{rx.kind}, {CONCURRENCY} in flight", loopback, size)
    with wan_receiver() as wrx:
        distant = _mirrored(wrx.url + "/ceiling", count, CEILING_IN_FLIGHT, str(wrx.ca_file))
        label = wrx.label
    figures += _figures(f"wan, {CEILING_IN_FLIGHT:,} in flight", distant, f"{size}; {label}")
    return figures
