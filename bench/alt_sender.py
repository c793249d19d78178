"""The `sender-pyreqwest` scenario (issue 27 §4): a `Sender` on pyreqwest (Rust: hyper, rustls,
its own tokio threads) in place of aiohttp, to learn whether the whole engine gains from the
faster client, not only the bare loop.

`python -m bench.alt_sender worker` runs `tidings worker` with this sender swapped in (the same
settings from the environment). It honours what the scenarios need (timeouts, no redirects, a
bounded excerpt, TIDINGS_CA_BUNDLE) and nothing more: there is no connect-time address guard
(pyreqwest resolves names itself and takes only fixed `resolve` overrides, no resolver hook),
which is why it is a bench experiment and not a product option. The scenario drains the same
deliveries with one worker of each kind, alternated ABAB, on loopback nginx (as throughput-pg)
and on the distant TLS receiver (as wan)."""

from __future__ import annotations

import sys
import time
from collections.abc import Mapping
from datetime import timedelta
from pathlib import Path
from typing import Any

from tidings.config import DELIVERY_TIMEOUT_SECONDS, RESPONSE_EXCERPT_BYTES
from tidings.delivery.sender import SendResult, decode_excerpt, describe_error


class PyreqwestSender:
    def __init__(
        self,
        *,
        timeout_seconds: float = DELIVERY_TIMEOUT_SECONDS,
        allow_private: bool = False,
        ca_bundle: str | None = None,
        **_: Any,
    ) -> None:
        self.timeout_seconds = timeout_seconds
        self.ca_bundle = ca_bundle
        self._client: Any = None

    def _get(self) -> Any:
        if self._client is None:
            from pyreqwest.client import ClientBuilder

            builder = (
                ClientBuilder()
                .timeout(timedelta(seconds=self.timeout_seconds))
                .follow_redirects(False)
                .http1_only()
            )
            if self.ca_bundle:
                builder = builder.add_root_certificate_pem(Path(self.ca_bundle).read_bytes())
            self._client = builder.build()
        return self._client

    async def send(self, url: str, body: bytes, headers: Mapping[str, str]) -> SendResult:
        started = time.perf_counter()
        try:
            request = self._get().post(url).body_bytes(body).headers(dict(headers)).build()
            response = await request.send()
            raw = bytes(await response.bytes())
            return SendResult(
                response.status,
                None,
                decode_excerpt(raw, RESPONSE_EXCERPT_BYTES),
                (time.perf_counter() - started) * 1000,
                response.headers.get("Retry-After"),
            )
        except Exception as exc:  # an attempt outcome, never a crash
            return SendResult(
                None, describe_error(exc), None, (time.perf_counter() - started) * 1000
            )

    async def close(self) -> None:
        if self._client is not None:
            await self._client.close()
            self._client = None


ALT_WORKER = Path(__file__).resolve().parent / "alt_sender_worker.sh"
ROUNDS = 2  # A B A B


async def _alternated(
    urls: list[str], events: int, env_extra: dict[str, str]
) -> dict[str, list[float]]:
    import bench.env as env

    rates: dict[str, list[float]] = {"aiohttp": [], "pyreqwest": []}
    tidings = env.TIDINGS
    env_extra = {**env_extra, "TIDINGS_BENCH_PYTHON": sys.executable}
    try:
        for _ in range(ROUNDS):
            for name in rates:
                env.TIDINGS = tidings if name == "aiohttp" else str(ALT_WORKER)
                drain = await env.tidings_drain(urls, events, env_extra=env_extra)
                rates[name].append(drain.rate)
    finally:
        env.TIDINGS = tidings
    return rates


def _figure(where: str, rates: dict[str, list[float]], size: str) -> Any:
    import statistics

    from bench.scenarios import Figure

    ours = statistics.fmean(rates["aiohttp"])
    alt = statistics.fmean(rates["pyreqwest"])
    runs = "; ".join(f"{k} " + ", ".join(f"{r:,.0f}" for r in v) + "/s" for k, v in rates.items())
    return Figure(
        "sender-pyreqwest",
        f"worker with pyreqwest / with aiohttp ({where})",
        alt / ours,
        "x",
        "adopt if the engine gains",
        None,
        ours,
        alt / ours,
        f"{size}; {runs}",
    )


async def sender_pyreqwest(scale: float, receiver: str) -> list[Any]:
    from bench.receiver import start_receiver
    from bench.scenarios import _n
    from bench.wan import WAN_ENDPOINTS, WAN_EVENTS
    from bench.wan_net import wan_receiver

    events = _n(10_000, scale, 10)
    rx = start_receiver(receiver)
    try:
        loopback = await _alternated([f"{rx.url}/ep{i}" for i in range(10)], events, {})
    finally:
        rx.stop()
    figures = [
        _figure(
            f"{rx.kind}",
            loopback,
            f"{events:,} events x 10 endpoints, one worker, ABAB",
        )
    ]
    endpoints = _n(WAN_ENDPOINTS, scale, 10)
    with wan_receiver() as wrx:
        urls = [f"{wrx.url}/ep{i}" for i in range(endpoints)]
        distant = await _alternated(urls, WAN_EVENTS, {"TIDINGS_CA_BUNDLE": str(wrx.ca_file)})
        label = wrx.label
    size = f"{endpoints:,} endpoints x {WAN_EVENTS} events, one worker, ABAB; {label}"
    figures.append(_figure("wan", distant, size))
    return figures


def main() -> None:
    import tidings.delivery as delivery
    from tidings.cli import main as tidings_main

    delivery.HttpSender = PyreqwestSender  # type: ignore[misc,assignment]
    sys.argv = ["tidings", *sys.argv[1:]]
    tidings_main()


if __name__ == "__main__":
    main()
