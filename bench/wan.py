"""The `wan` scenario (issue 27 §1): deliveries to distant HTTPS endpoints (bench.wan_net: nginx
with TLS 1.3 in a network namespace, 50 ms ± 10 ms away), measured against a ceiling loop with
the same TLS and delay allowed 2,048 requests in flight; TLS handshakes per delivery; and the
p99 of publish to receipt at 500 events/s."""

from __future__ import annotations

import statistics
from dataclasses import dataclass

from bench.env import ceiling_rate, tidings_drain
from bench.latency import paced_latency
from bench.scenarios import Figure, _n, against_fastest
from bench.wan_net import wan_receiver

WAN_ENDPOINTS = 1_000
WAN_EVENTS = 100  # each to every endpoint: 100 x 1,000 = 100,000 deliveries
CEILING_IN_FLIGHT = 2_048
LATENCY_RATE = 500  # events/s, each to one endpoint
LATENCY_SECONDS = 30.0


@dataclass
class WanDrain:
    rate: float  # tidings' deliveries/s
    ceiling: float  # the aiohttp loop's requests/s, CEILING_IN_FLIGHT in flight
    fastest: float  # the pyreqwest loop's (bench.ceilings: ~3.9 x aiohttp here)
    deliveries: int
    label: str  # the receiver's (where the delay came from)
    handshakes: int  # new connections tidings made (each a TLS handshake)
    requests: int  # tidings' requests the receiver logged
    ceiling_handshakes: int
    duplicates: int


async def _drain(scale: float) -> WanDrain:
    """WAN_EVENTS events to `endpoints` distant endpoints, one worker, default settings, and
    both ceilings on the same receiver."""
    endpoints = _n(WAN_ENDPOINTS, scale, 10)
    total = endpoints * WAN_EVENTS
    with wan_receiver() as rx:
        ca = str(rx.ca_file)
        url = rx.url + "/ceiling"
        ceiling = ceiling_rate(url, total, CEILING_IN_FLIGHT, ca_file=ca)
        fastest = ceiling_rate(url, total, CEILING_IN_FLIGHT, client="pyreqwest", ca_file=ca)
        urls = [f"{rx.url}/ep{i}" for i in range(endpoints)]
        drain = await tidings_drain(urls, WAN_EVENTS, env_extra={"TIDINGS_CA_BUNDLE": ca})
    stats = rx.stats
    return WanDrain(
        rate=drain.rate,
        ceiling=ceiling,
        fastest=fastest,
        deliveries=total,
        label=rx.label,
        handshakes=int(stats["handshakes"]["tidings"]),
        requests=max(1, int(stats["requests"]["tidings"])),
        ceiling_handshakes=int(stats["handshakes"]["ceiling"]),
        duplicates=int(stats["duplicates"]),
    )


async def wan(scale: float, receiver: str) -> list[Figure]:
    d = await _drain(scale)
    per_delivery = d.handshakes / d.requests
    seconds = max(3.0, LATENCY_SECONDS * scale)
    with wan_receiver() as rx:
        measured = await paced_latency(
            [rx.url + "/latency"],
            LATENCY_RATE,
            seconds,
            rx.stop,
            TIDINGS_CA_BUNDLE=str(rx.ca_file),
        )
    latencies = measured.receipt
    p50 = statistics.median(latencies)
    p99 = measured.quantile(latencies, 0.99)
    size = (
        f"{d.deliveries // WAN_EVENTS:,} endpoints x {WAN_EVENTS} events = {d.deliveries:,} "
        "deliveries, one `worker` with default settings; ceiling: the aiohttp loop with "
        f"{CEILING_IN_FLIGHT:,} in flight (pyreqwest's: {d.fastest:,.0f}/s); {d.label}; "
        f"handshakes {d.handshakes:,} for {d.requests:,} requests (the ceiling's: "
        f"{d.ceiling_handshakes:,}); latency: {LATENCY_RATE} events/s for {seconds:.0f} s to "
        f"one endpoint, one `api` + one `worker`, p50 {p50:.1f} ms; {measured.answered()}"
    )
    return [
        Figure(
            "wan",
            "deliveries/s",
            d.rate,
            "deliveries/s",
            "≥ 0.8 x ceiling",
            d.rate >= 0.8 * d.ceiling,
            d.ceiling,
            d.rate / d.ceiling,
            size,
        ),
        against_fastest("wan", d.rate, d.fastest, size),
        Figure(
            "wan",
            "TLS handshakes per delivery",
            per_delivery,
            "handshakes",
            "≤ 0.01",
            per_delivery <= 0.01,
            size=size,
        ),
        Figure("wan", "sent twice", d.duplicates, "deliveries", "0", d.duplicates == 0, size=size),
        Figure(
            "wan",
            f"p99 ms at {LATENCY_RATE} events/s",
            p99,
            "ms",
            "≤ 250 ms",
            p99 <= 250,
            size=size,
        ),
    ]
