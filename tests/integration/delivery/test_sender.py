"""HttpSender against real local servers: never raises, bounded reads, timeouts, and the
connect-time address guard (DNS answers and literals)."""

from __future__ import annotations

import asyncio
import socket

import pytest
from aiohttp import web
from aiohttp.abc import AbstractResolver, ResolveResult

from tidings.delivery.sender import GuardedResolver, HttpSender, literal_host_problem
from tidings.netguard import ForbiddenAddress

from .helpers import running_receiver

pytestmark = pytest.mark.timeout(30)

# aiohttp alone, and the fast lane taking every host from its first send (plain HTTP too)
LANES: dict[str, dict[str, object]] = {
    "aiohttp": {"fast_lane": False},
    "fast lane": {"fast_lane_after": 0, "fast_lane_schemes": ("http", "https")},
}


class FixedResolver(AbstractResolver):
    """Answers every name with the given addresses and counts the look-ups."""

    def __init__(self, *ips: str) -> None:
        self.ips = ips
        self.calls = 0

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        self.calls += 1
        return [
            {
                "hostname": host,
                "host": ip,
                "port": port,
                "family": socket.AF_INET,
                "proto": 0,
                "flags": 0,
            }
            for ip in self.ips
        ]

    async def close(self) -> None:
        return None


@pytest.mark.parametrize(
    "answers", [("127.0.0.1",), ("10.1.2.3",), ("169.254.169.254",), ("8.8.8.8", "192.168.0.1")]
)
async def test_guarded_resolver_refuses_any_forbidden_answer(answers: tuple[str, ...]) -> None:
    resolver = GuardedResolver(allow_private=False, inner=FixedResolver(*answers))
    with pytest.raises(ForbiddenAddress):
        await resolver.resolve("hooks.example.com", 443)


async def test_guarded_resolver_caches_allowed_answers() -> None:
    inner = FixedResolver("93.184.215.14")
    resolver = GuardedResolver(allow_private=False, inner=inner)
    first = await resolver.resolve("hooks.example.com", 443)
    second = await resolver.resolve("HOOKS.example.com", 443)
    assert [r["host"] for r in first] == [r["host"] for r in second] == ["93.184.215.14"]
    assert inner.calls == 1


def test_literal_hosts_are_checked_before_connecting() -> None:
    for url in (
        "http://127.0.0.1:8080/x",
        "https://10.0.0.5/x",
        "http://169.254.169.254/latest",
        "http://[::1]:9000/",
        "http://[::ffff:127.0.0.1]/",
    ):
        assert literal_host_problem(url, allow_private=False) is not None, url
        assert literal_host_problem(url, allow_private=True) is None
    assert literal_host_problem("https://93.184.215.14/x", allow_private=False) is None
    assert literal_host_problem("https://hooks.example.com/x", allow_private=False) is None


@pytest.mark.parametrize("lane", LANES)
async def test_dns_answer_pointing_inside_is_refused_at_connect_time(lane: str) -> None:
    # the fast lane taking every host at once: the refused name gets no client of its own
    async with running_receiver() as rx:
        sender = HttpSender(
            timeout_seconds=2,
            allow_private=False,
            resolver=FixedResolver("127.0.0.1"),
            **LANES[lane],  # type: ignore[arg-type]
        )
        try:
            res = await sender.send(f"http://hooks.example.com:{rx.port}/x", b"{}", {})
            assert sender.fast_lane_hosts == 0
        finally:
            await sender.close()
    assert res.status_code is None
    assert res.error is not None and res.error.startswith("ForbiddenAddress")
    assert rx.received == []


async def test_connects_to_the_address_the_resolver_answered() -> None:
    async with running_receiver() as rx:
        sender = HttpSender(
            timeout_seconds=2, allow_private=True, resolver=FixedResolver("127.0.0.1")
        )
        try:
            res = await sender.send(
                f"http://hooks.example.com:{rx.port}/x", b'{"a":1}', {"X-Test": "1"}
            )
        finally:
            await sender.close()
    assert res.status_code == 200 and res.error is None
    assert rx.received[0].body == b'{"a":1}'
    assert rx.received[0].headers["Host"] == f"hooks.example.com:{rx.port}"


@pytest.mark.parametrize("lane", LANES)
async def test_timeout_refused_connection_and_redirect_become_results(lane: str) -> None:
    async def slow(request: web.Request, n: int) -> web.StreamResponse:
        await asyncio.sleep(5)
        return web.Response(text="late")

    async def moved(request: web.Request, n: int) -> web.StreamResponse:
        return web.Response(status=302, headers={"Location": "http://127.0.0.1:1/elsewhere"})

    async with running_receiver() as rx:
        url = rx.on("/slow", slow)
        sender = HttpSender(timeout_seconds=0.3, allow_private=True, **LANES[lane])  # type: ignore[arg-type]
        try:
            timed_out = await sender.send(url, b"{}", {})
            with socket.socket() as s:
                s.bind(("127.0.0.1", 0))
                closed_port = s.getsockname()[1]
            refused = await sender.send(f"http://127.0.0.1:{closed_port}/p?token=s3cret", b"{}", {})
            redirect = await sender.send(rx.on("/moved", moved), b"{}", {})
            ok = await sender.send(rx.url("/ok"), b"{}", {})
        finally:
            await sender.close()
    assert timed_out.status_code is None
    assert timed_out.error == "TimeoutError: no answer in 0.3 s"
    assert refused.status_code is None and refused.error is not None
    # the fast lane makes a connection it could not make again through aiohttp: the same text
    assert refused.error.startswith("ClientConnectorError")
    assert "s3cret" not in refused.error and "/p" not in refused.error
    assert redirect.status_code == 302  # an answer, never followed
    assert ok.status_code == 200  # the session survives failures


async def test_large_and_invalid_utf8_bodies_are_cut_and_replaced() -> None:
    async def big(request: web.Request, n: int) -> web.StreamResponse:
        return web.Response(body=b"\xc3" + "é".encode() * 50_000, headers={"Retry-After": "7"})

    async with running_receiver() as rx:
        sender = HttpSender(timeout_seconds=5, allow_private=True)
        try:
            res = await sender.send(rx.on("/big", big), b"{}", {})
        finally:
            await sender.close()
    assert res.status_code == 200
    assert res.retry_after == "7"
    assert res.response_excerpt is not None
    assert res.response_excerpt.startswith("\ufffd")
    assert len(res.response_excerpt) <= 4096
