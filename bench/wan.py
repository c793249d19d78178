"""The `wan` scenario (issue 27 §1): deliveries to distant HTTPS endpoints (bench.wan_net: nginx
with TLS 1.3 in a network namespace, 50 ms ± 10 ms away), measured against a ceiling loop with
the same TLS and delay allowed 2,048 requests in flight; TLS handshakes per delivery; and the
p99 of publish to receipt at 500 events/s."""

from __future__ import annotations

import statistics

from bench.env import ceiling_rate, tidings_drain
from bench.latency import paced_latency
from bench.scenarios import Figure, _n
from bench.wan_net import wan_receiver

WAN_ENDPOINTS = 1_000
WAN_EVENTS = 100  # each to every endpoint: 100 x 1,000 = 100,000 deliveries
CEILING_IN_FLIGHT = 2_048
LATENCY_RATE = 500  # events/s, each to one endpoint
LATENCY_SECONDS = 30.0


async def _drain(scale: float) -> tuple[float, float, dict[str, object], str, int]:
    """(tidings deliveries/s, ceiling requests/s, receiver stats, receiver label, deliveries)
    for WAN_EVENTS events to `endpoints` distant endpoints, one worker, default settings."""
    endpoints = _n(WAN_ENDPOINTS, scale, 10)
    total = endpoints * WAN_EVENTS
    with wan_receiver() as rx:
        ceiling = ceiling_rate(
            rx.url + "/ceiling", total, CEILING_IN_FLIGHT, ca_file=str(rx.ca_file)
        )
        urls = [f"{rx.url}/ep{i}" for i in range(endpoints)]
        drain = await tidings_drain(urls, WAN_EVENTS, TIDINGS_CA_BUNDLE=str(rx.ca_file))
    return drain.rate, ceiling, rx.stats, rx.label, total


async def wan(scale: float, receiver: str) -> list[Figure]:
    rate, ceiling, stats, label, total = await _drain(scale)
    handshakes = stats.get("handshakes", {})
    requests = stats.get("requests", {})
    made = int(handshakes.get("tidings", 0))  # type: ignore[attr-defined]
    sent = max(1, int(requests.get("tidings", 0)))  # type: ignore[attr-defined]
    per_delivery = made / sent
    dups = int(stats.get("duplicates", 0))  # type: ignore[call-overload]
    seconds = max(3.0, LATENCY_SECONDS * scale)
    with wan_receiver() as rx:
        latencies = await paced_latency(
            [rx.url + "/latency"],
            LATENCY_RATE,
            seconds,
            rx.stop,
            TIDINGS_CA_BUNDLE=str(rx.ca_file),
        )
    p50 = statistics.median(latencies)
    p99 = latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))]
    size = (
        f"{total // WAN_EVENTS:,} endpoints x {WAN_EVENTS} events = {total:,} deliveries, one "
        f"`worker` with default settings; ceiling: the aiohttp loop with {CEILING_IN_FLIGHT:,} "
        f"in flight; {label}; handshakes {made:,} for {sent:,} requests "
        f"(ceiling: {handshakes.get('ceiling', 0):,}); latency: {LATENCY_RATE} events/s for "  # type: ignore[attr-defined]
        f"{seconds:.0f} s to one endpoint, one `api` + one `worker`, p50 {p50:.1f} ms"
    )
    return [
        Figure(
            "wan",
            "deliveries/s",
            rate,
            "deliveries/s",
            "≥ 0.8 x ceiling",
            rate >= 0.8 * ceiling,
            ceiling,
            rate / ceiling,
            size,
        ),
        Figure(
            "wan",
            "TLS handshakes per delivery",
            per_delivery,
            "handshakes",
            "≤ 0.01",
            per_delivery <= 0.01,
            size=size,
        ),
        Figure("wan", "sent twice", dups, "deliveries", "0", dups == 0, size=size),
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
