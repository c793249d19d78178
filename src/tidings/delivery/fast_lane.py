"""The sender's fast lane: HTTPS hosts tidings sends to often go through pyreqwest (Rust: hyper
and rustls, on a thread of their own) instead of aiohttp, one client per host, pinned to the address
the guard allowed. Part of the sender (`sender.py` decides which lane a request takes and turns
both lanes' answers and failures into one `SendResult`).

Why: a worker's deliveries to a distant TLS endpoint spend most of the worker's one Python thread
in aiohttp's send path and TLS; pyreqwest does that work off the thread, and the worker drains
1.23 times as fast through it (`python -m bench sender-pyreqwest`: the wan receiver, ABAB
against `TIDINGS_FAST_LANE=false`; docs/benchmarks.md).

The address guard holds in this lane too. pyreqwest resolves names itself and takes no resolver,
only fixed `resolve(host, ip)` entries, so a client is made per host with the one address
`GuardedResolver` allowed for it, and reqwest never looks the name up:
- a host enters the lane only when it is plain ASCII (`[a-z0-9-]` labels, no final dot) or a
  literal IP, the form reqwest and yarl spell alike, so the pinned name is the name reqwest looks
  for (a name it spelled otherwise would be looked up by the system, unguarded: the tests try
  upper case and a final dot); anything else (percent-escapes, underscores) stays on aiohttp;
- the pin lasts as long as the guard's own cache (`netguard.AddressCache.ttl`); then the host is
  resolved through the guard again, a new answer makes a new client, and a refusal (or any
  failure to resolve) sends the request back to aiohttp, which answers it exactly as before;
- redirects are never followed, proxies never used (`no_proxy`), so no other host is contacted.

Which hosts: HTTPS hosts only (TLS is the cost the lane takes off the worker's thread; for plain
HTTP the hops between threads cost more than aiohttp's whole send, 0.8 x on loopback nginx), and
a host enters after `hot_after` sends through aiohttp (a client costs ~4 ms of the event loop
and ~120 KB, most of it loading the system's roots), and at most `max_clients` hosts are in the
lane at once. When it is full no host enters until one has been idle `idle_seconds`
(its client closed then); a host never pushes another out, so hosts cannot churn clients.

A connection the lane cannot make (refused, unreachable, a certificate refused: `not_connected`)
is made again through aiohttp by the sender: nothing was sent, aiohttp tries every address the
guard allowed (the lane pins the first), and the failure reads as it always has.

Same behaviour as aiohttp's lane: the total and connect timeouts, no redirects, the system's
roots plus `TIDINGS_CA_BUNDLE` with verification always on, HTTP/1.1, gzip/deflate answers
decoded, at most `excerpt_bytes` of an answer read (then the connection is dropped, not drained).
"""

from __future__ import annotations

import functools
import re
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

from pyreqwest.client import Client, ClientBuilder
from pyreqwest.exceptions import ConnectError, DetailedPyreqwestError
from yarl import URL

from tidings.netguard import is_ip_literal

# the sends through aiohttp after which a host gets its own client
HOT_AFTER_SENDS = 32
MAX_CLIENTS = 256
IDLE_SECONDS = 120.0
# how often the idle and retired clients are looked for
SWEEP_EVERY_SECONDS = 10.0
COUNTED_HOSTS = 16_384
# TLS is what the lane takes off the worker's thread; plain HTTP loses by it (the hops between
# threads cost more than aiohttp's send: 0.8 x on loopback nginx, docs/benchmarks.md)
LANE_SCHEMES = ("https",)

_PLAIN_HOST = re.compile(r"^[a-z0-9-]+(\.[a-z0-9-]+)*$")
_PEM_CERTIFICATE = re.compile(
    rb"-----BEGIN CERTIFICATE-----.+?-----END CERTIFICATE-----", re.DOTALL
)
# hyper's cause when the connection was never made (refused, unreachable, TLS refused); pyreqwest
# raises ConnectError for a connection lost after the request was written too ("client error
# (SendRequest)"), which must not be sent again
_CONNECT_CAUSE = "client error (Connect)"
# reqwest's first cause names the whole URL (its query may carry a token); it is left out
_URL_CAUSE = "error sending request for url"

Key = tuple[str, str, int]
# the guard: the addresses a host may be reached at, or an exception
Resolve = Callable[[str, int], Awaitable[list[str]]]


@dataclass(slots=True)
class _Pinned:
    client: Client
    ip: str | None  # None for a literal IP host (nothing to pin)
    checked_at: float
    used_at: float


def ca_certificates(ca_bundle: str | None) -> list[bytes]:
    """Each CA certificate of a PEM bundle (reqwest takes one per call)."""
    if ca_bundle is None:
        return []
    return _PEM_CERTIFICATE.findall(Path(ca_bundle).read_bytes())


# cached like the sender's parse_target: a busy host sends to the same URLs thousands of times
@functools.lru_cache(maxsize=COUNTED_HOSTS)
def lane_key(target: URL, schemes: tuple[str, ...] = LANE_SCHEMES) -> Key | None:
    """(scheme, host, port) of a URL the lane may take, or None (it stays on aiohttp)."""
    host = target.raw_host
    port = target.port
    if target.scheme not in schemes or host is None or port is None:
        return None
    if _PLAIN_HOST.match(host) is None and not is_ip_literal(host):
        return None
    return (target.scheme, host, port)


@functools.lru_cache(maxsize=COUNTED_HOSTS)
def _text(target: URL) -> str:
    return str(target)


async def read_at_most(read: Callable[[int], Awaitable[Any]], limit: int) -> bytes:
    """At most `limit` bytes of an answer's body, read with `read(n)` (aiohttp's
    `content.read` or pyreqwest's `body_reader.read`: either may answer fewer bytes than asked,
    and empty or None at the end); the rest is never read."""
    chunks: list[bytes] = []
    size = 0
    while size < limit:
        chunk = await read(limit - size)
        if not chunk:
            break
        chunks.append(bytes(chunk))
        size += len(chunk)
    return b"".join(chunks)


def not_connected(exc: BaseException) -> bool:
    """Did the lane fail before any byte of the request was sent (so it may be sent again)?"""
    if not isinstance(exc, ConnectError):
        return False
    causes = exc.details.get("causes") or []
    return any(cause["message"] == _CONNECT_CAUSE for cause in causes)


def error_text(exc: BaseException) -> str | None:
    """A pyreqwest failure as "<message>: <cause>: <cause>" (None for any other exception)."""
    if not isinstance(exc, DetailedPyreqwestError):
        return None
    causes = exc.details.get("causes") or []
    parts = [exc.message] + [
        cause["message"] for cause in causes if not cause["message"].startswith(_URL_CAUSE)
    ]
    return ": ".join(parts)


class FastLane:
    """Clients per busy host, pinned to the guard's answer; the clock is handed in."""

    def __init__(
        self,
        *,
        resolve: Resolve,
        timeout_seconds: float,
        connect_timeout_seconds: float,
        excerpt_bytes: int,
        ca_bundle: str | None = None,
        pin_seconds: float,
        hot_after: int = HOT_AFTER_SENDS,
        max_clients: int = MAX_CLIENTS,
        idle_seconds: float = IDLE_SECONDS,
        schemes: tuple[str, ...] = LANE_SCHEMES,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._resolve = resolve
        self._timeout = timedelta(seconds=timeout_seconds)
        self._connect_timeout = timedelta(seconds=connect_timeout_seconds)
        self._retire_after = timeout_seconds + 1.0
        self.excerpt_bytes = excerpt_bytes
        self._roots = ca_certificates(ca_bundle)
        if self._roots:
            # a bundle rustls cannot read stops the worker now, as OpenSSL's refusal does
            self._build("localhost", None)
        self._pin_seconds = pin_seconds
        self.hot_after = hot_after
        self.max_clients = max_clients
        self._idle_seconds = idle_seconds
        self.schemes = schemes
        self._monotonic = monotonic
        self._pinned: dict[Key, _Pinned] = {}
        self._counts: dict[Key, int] = {}
        self._retired: list[tuple[float, Client]] = []
        self._swept_at = monotonic()

    @property
    def hosts(self) -> int:
        return len(self._pinned)

    async def client_for(self, target: URL) -> Client | None:
        """The host's client, made when the host turns busy; None: send through aiohttp."""
        key = lane_key(target, self.schemes)
        if key is None:
            return None
        now = self._monotonic()
        if now - self._swept_at >= SWEEP_EVERY_SECONDS:
            await self._sweep(now)
        pinned = self._pinned.get(key)
        if pinned is None:
            if not self._enters(key):
                return None
            pinned = await self._pin(key, now, None)
        elif pinned.ip is not None and now - pinned.checked_at >= self._pin_seconds:
            pinned = await self._pin(key, now, pinned)
        if pinned is None:
            return None
        pinned.used_at = now
        return pinned.client

    def _enters(self, key: Key) -> bool:
        if len(self._pinned) >= self.max_clients:
            return False
        sent = self._counts.get(key, 0)
        if sent < self.hot_after:
            if len(self._counts) >= COUNTED_HOSTS and key not in self._counts:
                self._counts.clear()  # a count only decides when to enter; losing one is cheap
            self._counts[key] = sent + 1
            return False
        self._counts.pop(key, None)
        return True

    async def _pin(self, key: Key, now: float, old: _Pinned | None) -> _Pinned | None:
        """Resolve the host through the guard and (re)make its client; None when the guard
        refuses or the name does not resolve (aiohttp then answers the request)."""
        _, host, port = key
        ip: str | None = None
        if not is_ip_literal(host):
            try:
                ip = (await self._resolve(host, port))[0]
            except Exception:
                self._drop(key, now)
                return None
        if old is not None and old.ip == ip:
            old.checked_at = now
            return old
        self._drop(key, now)
        pinned = _Pinned(self._build(host, ip), ip, now, now)
        self._pinned[key] = pinned
        return pinned

    def _build(self, host: str, ip: str | None) -> Client:
        builder = (
            ClientBuilder()
            .no_proxy()
            .timeout(self._timeout)
            .connect_timeout(self._connect_timeout)
            .follow_redirects(False)
            .http1_only()
            .gzip(True)
            .deflate(True)
        )
        for pem in self._roots:
            builder = builder.add_root_certificate_pem(pem)
        if ip is not None:
            builder = builder.resolve(host, ip, 0)
        return builder.build()

    def _drop(self, key: Key, now: float) -> None:
        pinned = self._pinned.pop(key, None)
        if pinned is not None:
            # requests may still be under way on it; closed once they have had their timeout
            self._retired.append((now + self._retire_after, pinned.client))

    async def _sweep(self, now: float) -> None:
        self._swept_at = now
        for key, pinned in list(self._pinned.items()):
            if now - pinned.used_at >= self._idle_seconds:
                self._drop(key, now)
        due = [client for at, client in self._retired if at <= now]
        self._retired = [(at, client) for at, client in self._retired if at > now]
        for client in due:
            await client.close()

    async def post(
        self, client: Client, target: URL, body: bytes, headers: Mapping[str, str]
    ) -> tuple[int, bytes, str | None]:
        """(status, at most `excerpt_bytes` of the answer, Retry-After); raises on failure."""
        request = (
            client.post(_text(target))
            .body_bytes(body)
            .headers(headers)
            .streamed_read_buffer_limit(max(self.excerpt_bytes, 1))
            .build_streamed()
        )
        async with request as response:
            raw = await read_at_most(response.body_reader.read, self.excerpt_bytes)
            return response.status, raw, response.headers.get("Retry-After")

    async def close(self) -> None:
        clients = [pinned.client for pinned in self._pinned.values()]
        clients += [client for _, client in self._retired]
        self._pinned.clear()
        self._retired.clear()
        self._counts.clear()
        for client in clients:
            await client.close()


__all__ = [
    "LANE_SCHEMES",
    "FastLane",
    "ca_certificates",
    "error_text",
    "lane_key",
    "not_connected",
    "read_at_most",
]
