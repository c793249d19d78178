"""The sender's fast lane (pyreqwest clients for busy hosts) against real local servers: it is
taken once a host is busy, keeps the aiohttp lane's rules (bounded reads, timeouts, no
redirects, TLS with TIDINGS_CA_BUNDLE), and keeps the address guard: a client is pinned to the
address the guard answered, refused names never get one, and the pin ends with the guard's TTL."""

from __future__ import annotations

import asyncio
import gzip
from pathlib import Path

import pytest
import trustme
from aiohttp import web
from yarl import URL

from tidings.delivery.fast_lane import FastLane, ca_certificates, lane_key
from tidings.delivery.sender import HttpSender

from .helpers import running_receiver
from .test_sender import LANES, FixedResolver

pytestmark = pytest.mark.timeout(30)


def lane_sender(**kwargs: object) -> HttpSender:
    """A sender whose every host takes the fast lane from its first send, plain HTTP too (the
    receivers here; by default only HTTPS hosts take it: the TLS tests below)."""
    return HttpSender(**{**LANES["fast lane"], **kwargs})  # type: ignore[arg-type]


async def test_a_host_enters_the_lane_after_its_sends_through_aiohttp() -> None:
    async with running_receiver() as rx:
        sender = lane_sender(timeout_seconds=5, allow_private=True, fast_lane_after=3)
        try:
            hosts = []
            for _ in range(5):
                res = await sender.send(rx.url("/x"), b"{}", {})
                assert res.status_code == 200
                hosts.append(sender.fast_lane_hosts)
        finally:
            await sender.close()
    assert hosts == [0, 0, 0, 1, 1]
    assert len(rx.received) == 5


async def test_switched_off_no_host_takes_the_lane() -> None:
    async with running_receiver() as rx:
        sender = lane_sender(timeout_seconds=5, allow_private=True, fast_lane=False)
        try:
            results = [await sender.send(rx.url("/x"), b"{}", {}) for _ in range(3)]
            assert sender.fast_lane_hosts == 0
        finally:
            await sender.close()
    assert [r.status_code for r in results] == [200, 200, 200]


async def test_the_lane_sends_the_body_and_headers_and_reads_the_answer() -> None:
    async def answer(request: web.Request, n: int) -> web.StreamResponse:
        return web.Response(text="thanks", status=202, headers={"Retry-After": "7"})

    async with running_receiver() as rx:
        sender = lane_sender(timeout_seconds=5, allow_private=True)
        try:
            res = await sender.send(
                rx.on("/a", answer), b'{"a":1}', {"X-Test": "1", "Content-Type": "application/json"}
            )
            assert sender.fast_lane_hosts == 1
        finally:
            await sender.close()
    assert (res.status_code, res.error, res.response_excerpt, res.retry_after) == (
        202,
        None,
        "thanks",
        "7",
    )
    got = rx.received[0]
    assert got.body == b'{"a":1}'
    assert got.headers["X-Test"] == "1" and got.headers["Content-Type"] == "application/json"
    assert got.headers["Host"] == f"127.0.0.1:{rx.port}"


@pytest.mark.parametrize(
    ("name", "in_lane"),
    [("hooks.example.com", 1), ("HOOKS.Example.com", 1), ("hooks.example.com.", 0)],
)
async def test_the_client_is_pinned_to_the_address_the_guard_answered(
    name: str, in_lane: int
) -> None:
    # the name resolves nowhere here: the request can only reach the receiver through the guard's
    # answer (a name spelled otherwise than reqwest spells it, the final dot, stays on aiohttp)
    inner = FixedResolver("127.0.0.1")
    async with running_receiver() as rx:
        sender = lane_sender(timeout_seconds=5, allow_private=True, resolver=inner)
        try:
            res = await sender.send(f"http://{name}:{rx.port}/x", b"{}", {})
            assert sender.fast_lane_hosts == in_lane
        finally:
            await sender.close()
    assert (res.status_code, res.error) == (200, None)
    assert rx.received[0].headers["Host"].lower().startswith("hooks.example.com")
    assert inner.calls == 1


async def test_a_dead_first_address_is_passed_over_through_aiohttp() -> None:
    # the guard answers two addresses; the lane pins the first, where nothing listens
    async with running_receiver() as rx:
        sender = lane_sender(
            timeout_seconds=5, allow_private=True, resolver=FixedResolver("127.0.0.2", "127.0.0.1")
        )
        try:
            res = await sender.send(f"http://hooks.example.com:{rx.port}/x", b"{}", {})
            assert sender.fast_lane_hosts == 1
        finally:
            await sender.close()
    assert (res.status_code, res.error) == (200, None)
    assert len(rx.received) == 1


async def test_a_connection_dropped_after_the_request_is_named_without_the_url() -> None:
    # the request was sent, so it is not sent again: the lane's own failure, its URL left out
    requests = []

    async def hang_up(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        requests.append(await reader.readuntil(b"\r\n\r\n"))
        writer.close()

    server = await asyncio.start_server(hang_up, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    sender = lane_sender(timeout_seconds=5, allow_private=True)
    try:
        res = await sender.send(f"http://127.0.0.1:{port}/p?token=s3cret", b"{}", {})
        assert sender.fast_lane_hosts == 1
    finally:
        await sender.close()
        server.close()
    assert res.status_code is None and res.error is not None
    assert len(requests) == 1
    assert res.error.startswith("ConnectError: connection error: client error (SendRequest)")
    assert "s3cret" not in res.error and "/p" not in res.error and "127.0.0.1" not in res.error


async def test_answers_are_cut_decoded_and_replaced() -> None:
    async def big(request: web.Request, n: int) -> web.StreamResponse:
        return web.Response(body=b"\xc3" + "é".encode() * 500_000)

    async def zipped(request: web.Request, n: int) -> web.StreamResponse:
        return web.Response(
            body=gzip.compress(b"plain words"), headers={"Content-Encoding": "gzip"}
        )

    async with running_receiver() as rx:
        sender = lane_sender(timeout_seconds=5, allow_private=True)
        try:
            large = await sender.send(rx.on("/big", big), b"{}", {})
            unzipped = await sender.send(rx.on("/zip", zipped), b"{}", {})
        finally:
            await sender.close()
    assert large.status_code == 200 and large.response_excerpt is not None
    assert large.response_excerpt.startswith("\ufffd")
    # 4,096 bytes read: the two cut characters each became U+FFFD (3 bytes for 1 or 2)
    assert 4_090 <= len(large.response_excerpt.encode()) <= 4_096 + 4
    assert unzipped.response_excerpt == "plain words"


def test_a_sender_is_made_outside_an_event_loop() -> None:
    # as before the lane: nothing that needs a running loop is made until the first send
    assert HttpSender().fast_lane_hosts == 0


def test_a_bundle_rustls_cannot_read_stops_the_sender_at_once(tmp_path: Path) -> None:
    bad = tmp_path / "bad.pem"
    bad.write_text("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n")
    with pytest.raises(ValueError, match="builder error"):
        FastLane(
            resolve=FixedResolver().resolve,  # type: ignore[arg-type]
            timeout_seconds=5.0,
            connect_timeout_seconds=5.0,
            excerpt_bytes=4096,
            ca_bundle=str(bad),
            pin_seconds=60.0,
        )


def test_only_https_plain_host_names_and_literal_addresses_take_the_lane() -> None:
    assert lane_key(URL("https://hooks.example.com/x")) == ("https", "hooks.example.com", 443)
    assert lane_key(URL("https://93.184.215.14:8443/x")) == ("https", "93.184.215.14", 8443)
    assert lane_key(URL("https://[2001:db8::1]/x")) == ("https", "2001:db8::1", 443)
    assert lane_key(URL("http://hooks.example.com/x")) is None  # plain HTTP: aiohttp
    both = ("http", "https")
    assert lane_key(URL("http://93.184.215.14:8080/x"), both) == ("http", "93.184.215.14", 8080)
    for url in (
        "http://ex%61mple.com/x",
        "http://a_b.example.com/x",
        "http://example.com./x",
        "ftp://example.com/x",
    ):
        assert lane_key(URL(url), both) is None, url


# --- the lane's own bookkeeping, on a handed-in clock -------------------------------------


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def lane(clock: Clock, answers: dict[str, list[str] | Exception], **kwargs: object) -> FastLane:
    async def resolve(host: str, port: int) -> list[str]:
        answer = answers[host]
        if isinstance(answer, Exception):
            raise answer
        return answer

    options: dict[str, object] = {
        "resolve": resolve,
        "timeout_seconds": 5.0,
        "connect_timeout_seconds": 5.0,
        "excerpt_bytes": 4096,
        "pin_seconds": 60.0,
        "hot_after": 0,
        "monotonic": clock,
    }
    return FastLane(**{**options, **kwargs})  # type: ignore[arg-type]


async def test_the_pin_ends_with_the_guards_ttl() -> None:
    clock = Clock()
    answers: dict[str, list[str] | Exception] = {"hooks.example.com": ["93.184.215.14"]}
    fast = lane(clock, answers)
    target = URL("https://hooks.example.com/x")
    try:
        first = await fast.client_for(target)
        clock.now += 30
        assert await fast.client_for(target) is first  # within the TTL: not resolved again
        clock.now += 31
        assert await fast.client_for(target) is first  # the same answer keeps the client
        answers["hooks.example.com"] = ["93.184.215.15"]
        clock.now += 61
        moved = await fast.client_for(target)
        assert moved is not None and moved is not first  # a new answer, a new client
        answers["hooks.example.com"] = PermissionError("refused")
        clock.now += 61
        assert await fast.client_for(target) is None  # refused now: back to aiohttp
        assert fast.hosts == 0
    finally:
        await fast.close()


async def test_a_full_lane_takes_a_new_host_only_once_one_is_idle() -> None:
    clock = Clock()
    answers: dict[str, list[str] | Exception] = {"a.example.com": ["93.184.215.14"]}
    answers["b.example.com"] = ["93.184.215.15"]
    fast = lane(clock, answers, max_clients=1, idle_seconds=120.0)
    a, b = URL("https://a.example.com/"), URL("https://b.example.com/")
    try:
        assert await fast.client_for(a) is not None
        clock.now += 100
        assert await fast.client_for(b) is None  # full: b waits on aiohttp
        assert await fast.client_for(a) is not None  # a used again
        clock.now += 119
        assert await fast.client_for(b) is None  # a is not idle yet
        clock.now += 121
        assert await fast.client_for(b) is not None  # a idle 240 s: closed, b enters
        assert fast.hosts == 1
    finally:
        await fast.close()


async def test_a_host_counts_its_sends_before_it_enters() -> None:
    clock = Clock()
    fast = lane(clock, {"a.example.com": ["93.184.215.14"]}, hot_after=2)
    target = URL("https://a.example.com/")
    try:
        got = [await fast.client_for(target) is not None for _ in range(4)]
    finally:
        await fast.close()
    assert got == [False, False, True, True]


# --- TLS in the lane ----------------------------------------------------------------------


def bundle(ca: trustme.CA, folder: Path) -> str:
    # another CA first: every certificate of the bundle is trusted, not only its first
    path = folder / "ca.pem"
    path.write_bytes(trustme.CA().cert_pem.bytes() + ca.cert_pem.bytes())
    return str(path)


async def tls_send(sender: HttpSender, url: str) -> tuple[int | None, str | None]:
    try:
        res = await sender.send(url, b"{}", {})
        assert sender.fast_lane_hosts == 1
    finally:
        await sender.close()
    return res.status_code, res.error


async def test_the_lane_refuses_a_private_ca_without_the_bundle(tls_receiver: int) -> None:
    status, error = await tls_send(
        lane_sender(allow_private=True), f"https://127.0.0.1:{tls_receiver}/"
    )
    # refused by both lanes (the lane's refusal is tried again through aiohttp, and named by it)
    assert status is None and error is not None and "certificate verify failed" in error


async def test_the_lane_trusts_the_bundle_and_still_checks_names(
    tls_receiver: int, ca: trustme.CA, tmp_path: Path
) -> None:
    path = bundle(ca, tmp_path)
    assert len(ca_certificates(path)) == 2
    trusted = lane_sender(allow_private=True, ca_bundle=path)
    assert await tls_send(trusted, f"https://127.0.0.1:{tls_receiver}/") == (200, None)
    other_name = lane_sender(allow_private=True, ca_bundle=path)
    status, error = await tls_send(other_name, f"https://localhost:{tls_receiver}/")
    assert status is None and error is not None and "localhost" in error
