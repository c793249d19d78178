"""The ceiling: a bare aiohttp + uvloop loop posting the same 1 KiB bodies, signed the same way
(HMAC-SHA256 over `t.body`, as the novatrade format), with the same concurrency and one shared
connection pool, to the same receiver, with no storage. Runs in its own process so it gets the
same CPU share a worker process gets."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import os
import sys
import time

BODY_BYTES = 1024


def body_of(n: int) -> bytes:
    head = json.dumps({"id": f"evt_{n}", "type": "compliance.status_changed", "pad": ""})
    pad = "x" * max(0, BODY_BYTES - len(head))
    return json.dumps({"id": f"evt_{n}", "type": "compliance.status_changed", "pad": pad}).encode()


async def post_all(url: str, count: int, concurrency: int) -> float:
    """Requests per second for `count` signed POSTs."""
    import aiohttp

    secret = os.urandom(32)
    connector = aiohttp.TCPConnector(limit=concurrency, ttl_dns_cache=300)
    timeout = aiohttp.ClientTimeout(total=15)
    queue: asyncio.Queue[int] = asyncio.Queue()
    for n in range(count):
        queue.put_nowait(n)

    async def one(session: aiohttp.ClientSession) -> None:
        while True:
            try:
                n = queue.get_nowait()
            except asyncio.QueueEmpty:
                return
            body = body_of(n)
            ts = str(int(time.time()))
            sig = hmac.new(secret, ts.encode() + b"." + body, hashlib.sha256).hexdigest()
            headers = {
                "Content-Type": "application/json",
                "X-Novatrade-Signature": f"t={ts},v1={sig}",
                "X-Tidings-Delivery-Id": f"dlv_ceiling_{n}",
            }
            async with session.post(url, data=body, headers=headers, allow_redirects=False) as r:
                await r.read()

    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        started = time.perf_counter()
        await asyncio.gather(*(one(session) for _ in range(concurrency)))
        elapsed = time.perf_counter() - started
    return count / elapsed


def main() -> None:
    try:
        import uvloop

        uvloop.install()
    except ImportError:  # pragma: no cover
        pass
    url, count, concurrency = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    print(json.dumps({"rate": asyncio.run(post_all(url, count, concurrency))}))


if __name__ == "__main__":
    main()
