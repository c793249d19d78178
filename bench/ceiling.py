"""The ceiling: a bare loop posting the same 1 KiB bodies, signed the same way (HMAC-SHA256 over
`t.body`, as the novatrade format), with a fixed number in flight over one shared connection
pool, to the same receiver, with no storage. Runs in its own process so it gets the same CPU
share a worker process gets.

`python -m bench.ceiling URL COUNT IN_FLIGHT [--client aiohttp|pyreqwest|pycurl] [--ca PEM]`
prints `{"rate": requests/s}`. aiohttp + uvloop is the ceiling every scenario reports against
(it is what tidings sends with); pyreqwest (Rust: hyper + rustls, asyncio) and pycurl's multi
interface (libcurl, one thread) are the alternatives a faster sender could use (issue 27 §4),
measured the same way by `ceilings`. With `--ca`, HTTPS trusts that CA beside the system's roots,
as tidings does with TIDINGS_CA_BUNDLE."""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import hmac
import json
import os
import time
from collections.abc import Callable

BODY_BYTES = 1024
CLIENTS = ("aiohttp", "pyreqwest", "pycurl")
TIMEOUT_SECONDS = 15


def body_of(n: int) -> bytes:
    head = json.dumps({"id": f"evt_{n}", "type": "compliance.status_changed", "pad": ""})
    pad = "x" * max(0, BODY_BYTES - len(head))
    return json.dumps({"id": f"evt_{n}", "type": "compliance.status_changed", "pad": pad}).encode()


def signed(secret: bytes) -> Callable[[int], tuple[bytes, dict[str, str]]]:
    """n -> (body, headers) of the n-th request, signed as the novatrade format signs."""

    def request(n: int) -> tuple[bytes, dict[str, str]]:
        body = body_of(n)
        ts = str(int(time.time()))
        sig = hmac.new(secret, ts.encode() + b"." + body, hashlib.sha256).hexdigest()
        return body, {
            "Content-Type": "application/json",
            "X-Novatrade-Signature": f"t={ts},v1={sig}",
            "X-Tidings-Delivery-Id": f"dlv_ceiling_{n}",
        }

    return request


async def post_aiohttp(url: str, count: int, in_flight: int, ca: str | None) -> float:
    """Requests per second for `count` signed POSTs."""
    import aiohttp

    from tidings.delivery.sender import tls_context

    request = signed(os.urandom(32))
    connector = aiohttp.TCPConnector(limit=in_flight, ttl_dns_cache=300, ssl=tls_context(ca))
    timeout = aiohttp.ClientTimeout(total=TIMEOUT_SECONDS)
    numbers = iter(range(count))

    async def one(session: aiohttp.ClientSession) -> None:
        for n in numbers:
            body, headers = request(n)
            async with session.post(url, data=body, headers=headers, allow_redirects=False) as r:
                await r.read()

    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        started = time.perf_counter()
        await asyncio.gather(*(one(session) for _ in range(in_flight)))
        elapsed = time.perf_counter() - started
    return count / elapsed


async def post_pyreqwest(url: str, count: int, in_flight: int, ca: str | None) -> float:
    from datetime import timedelta
    from pathlib import Path

    from pyreqwest.client import ClientBuilder

    request = signed(os.urandom(32))
    builder = (
        ClientBuilder()
        .max_connections(in_flight)
        .timeout(timedelta(seconds=TIMEOUT_SECONDS))
        .follow_redirects(False)
        .http1_only()
    )
    if ca:
        builder = builder.add_root_certificate_pem(Path(ca).read_bytes())
    numbers = iter(range(count))

    async def one(client: object) -> None:
        for n in numbers:
            body, headers = request(n)
            req = client.post(url).body_bytes(body).headers(headers).build()  # type: ignore[attr-defined]
            response = await req.send()
            await response.bytes()

    async with builder.build() as client:
        started = time.perf_counter()
        await asyncio.gather(*(one(client) for _ in range(in_flight)))
        elapsed = time.perf_counter() - started
    return count / elapsed


def post_pycurl(url: str, count: int, in_flight: int, ca: str | None) -> float:
    """libcurl's multi interface: `in_flight` easy handles, each reused (its connection kept
    alive in the multi handle's cache) for request after request."""
    import pycurl

    request = signed(os.urandom(32))
    multi = pycurl.CurlMulti()
    multi.setopt(pycurl.M_MAXCONNECTS, in_flight)
    handles = []
    for _ in range(in_flight):
        easy = pycurl.Curl()
        easy.setopt(pycurl.URL, url)
        easy.setopt(pycurl.POST, 1)
        easy.setopt(pycurl.TIMEOUT, TIMEOUT_SECONDS)
        easy.setopt(pycurl.FOLLOWLOCATION, 0)
        easy.setopt(pycurl.WRITEFUNCTION, lambda chunk: None)
        if ca:
            easy.setopt(pycurl.CAINFO, ca)
        handles.append(easy)
    numbers = iter(range(count))

    def start(easy: pycurl.Curl) -> bool:
        n = next(numbers, None)
        if n is None:
            return False
        body, headers = request(n)
        easy.setopt(pycurl.POSTFIELDS, body)
        easy.setopt(pycurl.HTTPHEADER, [f"{k}: {v}" for k, v in headers.items()])
        multi.add_handle(easy)
        return True

    started = time.perf_counter()
    active = sum(start(easy) for easy in handles)
    done = 0
    while active:
        multi.select(1.0)
        while multi.perform()[0] == pycurl.E_CALL_MULTI_PERFORM:
            pass
        _, finished, failed = multi.info_read()
        if failed:
            raise RuntimeError(f"pycurl ceiling: {failed[0][2]}")
        for easy in finished:
            multi.remove_handle(easy)
            done += 1
            if not start(easy):
                active -= 1
    elapsed = time.perf_counter() - started
    return done / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.ceiling")
    parser.add_argument("url")
    parser.add_argument("count", type=int)
    parser.add_argument("in_flight", type=int)
    parser.add_argument("--client", choices=CLIENTS, default="aiohttp")
    parser.add_argument("--ca", default=None)
    args = parser.parse_args()
    if args.client == "pycurl":
        rate = post_pycurl(args.url, args.count, args.in_flight, args.ca)
    else:
        try:
            import uvloop

            uvloop.install()
        except ImportError:  # pragma: no cover
            pass
        post = post_aiohttp if args.client == "aiohttp" else post_pyreqwest
        rate = asyncio.run(post(args.url, args.count, args.in_flight, args.ca))
    print(json.dumps({"rate": rate}))


if __name__ == "__main__":
    main()
