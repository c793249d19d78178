"""The `sender-pyreqwest` scenario (issue 27 §4): does the whole engine gain from pyreqwest, not
only the bare loop? One worker with its fast lane (the default: busy hosts through pyreqwest,
`tidings/delivery/fast_lane.py`) against one with `TIDINGS_FAST_LANE=false` (aiohttp alone), the
same deliveries, alternated ABAB, on the distant TLS receiver (as wan)."""

from __future__ import annotations

from typing import Any

ROUNDS = 2  # A B A B
LANES = {"aiohttp": {"TIDINGS_FAST_LANE": "false"}, "fast lane": {"TIDINGS_FAST_LANE": "true"}}


async def _alternated(
    urls: list[str], events: int, env_extra: dict[str, str]
) -> dict[str, list[float]]:
    from bench.env import tidings_drain

    rates: dict[str, list[float]] = {name: [] for name in LANES}
    for _ in range(ROUNDS):
        for name, lane in LANES.items():
            drain = await tidings_drain(urls, events, env_extra={**env_extra, **lane})
            rates[name].append(drain.rate)
    return rates


def _figure(where: str, rates: dict[str, list[float]], size: str) -> Any:
    import statistics

    from bench.scenarios import Figure

    ours = statistics.fmean(rates["aiohttp"])
    alt = statistics.fmean(rates["fast lane"])
    runs = "; ".join(f"{k} " + ", ".join(f"{r:,.0f}" for r in v) + "/s" for k, v in rates.items())
    return Figure(
        "sender-pyreqwest",
        f"worker with its fast lane / aiohttp alone ({where})",
        alt / ours,
        "x",
        "adopted if the engine gains",
        None,
        ours,
        alt / ours,
        f"{size}; {runs}",
    )


async def sender_pyreqwest(scale: float, receiver: str) -> list[Any]:
    """On the distant TLS receiver only: plain HTTP never takes the fast lane (for it the
    lane's hops between threads cost more than aiohttp's send, fast_lane.LANE_SCHEMES)."""
    from bench.scenarios import _n
    from bench.wan import WAN_ENDPOINTS, WAN_EVENTS
    from bench.wan_net import wan_receiver

    endpoints = _n(WAN_ENDPOINTS, scale, 10)
    with wan_receiver() as wrx:
        urls = [f"{wrx.url}/ep{i}" for i in range(endpoints)]
        distant = await _alternated(urls, WAN_EVENTS, {"TIDINGS_CA_BUNDLE": str(wrx.ca_file)})
        label = wrx.label
    size = f"{endpoints:,} endpoints x {WAN_EVENTS} events, one worker, ABAB; {label}"
    return [_figure("wan", distant, size)]
