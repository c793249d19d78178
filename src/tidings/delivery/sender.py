"""The only module in tidings that sends HTTP to endpoints (with its fast lane, `fast_lane.py`).

`HttpSender` holds ONE shared aiohttp `ClientSession` for the whole worker, and a fast lane of
pyreqwest clients for the hosts it sends to most (`fast_lane.py`: why, and how the guard holds
there); both lanes keep the rules below. Every request:
- is a POST with the exact signed body, `allow_redirects=False` (a 3xx is an answer, not a hop);
- carries the caller's headers as given (the worker's signed headers always name Content-Type
  and User-Agent, so aiohttp's own are never used; it adds Host, Content-Length, Accept and
  Accept-Encoding);
- has a total timeout (the delivery timeout) and a connect timeout of at most 10 s;
- reads at most `RESPONSE_EXCERPT_BYTES` of the answer, then releases the connection (a longer
  body closes it rather than being drained);
- never raises: every failure becomes a `SendResult` with `error` ("<class>: <message>");
- verifies TLS always (`tls_context`): the system's roots, plus the CA certificates of
  `TIDINGS_CA_BUNDLE` for endpoints behind a private PKI. There is no switch to turn it off.

The address guard (contract §6) runs at connect time: host names are resolved by
`GuardedResolver`, which refuses the whole answer if any address is loopback, private,
link-local or metadata (unless private URLs are allowed), and literal IP hosts are checked before
any connection is made (aiohttp never hands literals to the resolver). aiohttp connects to the
addresses the guard returned, so a DNS answer cannot change between check and connect.
"""

from __future__ import annotations

import asyncio
import functools
import socket
import ssl
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Protocol

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.payload import BytesPayload
from yarl import URL

from tidings.config import DELIVERY_TIMEOUT_SECONDS, RESPONSE_EXCERPT_BYTES
from tidings.delivery.fast_lane import (
    HOT_AFTER_SENDS,
    LANE_SCHEMES,
    FastLane,
    error_text,
    not_connected,
    read_at_most,
)
from tidings.netguard import (
    AddressCache,
    ForbiddenAddress,
    is_forbidden_address,
    is_ip_literal,
)

CONNECT_TIMEOUT_CAP_SECONDS = 10.0
CONNECTION_LIMIT = 4096
MAX_ERROR_CHARS = 500


@dataclass(frozen=True, slots=True)
class SendResult:
    """What one HTTP attempt produced. Exactly one of status_code / error is set."""

    status_code: int | None
    error: str | None
    response_excerpt: str | None
    duration_ms: float
    retry_after: str | None = None


class Sender(Protocol):
    async def send(self, url: str, body: bytes, headers: Mapping[str, str]) -> SendResult: ...

    async def close(self) -> None: ...


def describe_error(exc: BaseException) -> str:
    """ "<ExceptionClass>: <message>", bounded; never includes request headers or secrets (nor
    the URL, which pyreqwest's own message names)."""
    message = error_text(exc) or str(exc) or repr(exc)
    return f"{type(exc).__name__}: {message}"[:MAX_ERROR_CHARS]


def decode_excerpt(raw: bytes, limit: int = RESPONSE_EXCERPT_BYTES) -> str:
    """At most `limit` bytes of a response body as text (invalid UTF-8 replaced)."""
    return raw[:limit].decode("utf-8", errors="replace")


class GuardedResolver(AbstractResolver):
    """Wraps aiohttp's default resolver: answers only addresses tidings may connect to.

    Allowed answers are cached per (host, port) in a `netguard.AddressCache`; a refusal raises
    `ForbiddenAddress` every time (never cached as allowed)."""

    def __init__(
        self,
        *,
        allow_private: bool,
        inner: AbstractResolver | None = None,
        cache: AddressCache | None = None,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._inner = inner if inner is not None else aiohttp.DefaultResolver()
        self._allow_private = allow_private
        self._cache = cache if cache is not None else AddressCache()
        self._monotonic = monotonic

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        now = self._monotonic()
        cached = self._cache.get(host, port, now)
        if cached is not None:
            return [_result(host, ip, port) for ip in cached]
        answers = await self._inner.resolve(host, port, family)
        ips: list[str] = []
        for answer in answers:
            ip = answer["host"]
            if not self._allow_private and is_forbidden_address(ip):
                raise ForbiddenAddress(
                    f"{host} resolves to a forbidden address ({ip}); refused unless "
                    "TIDINGS_ALLOW_PRIVATE_URLS=true"
                )
            if ip not in ips:
                ips.append(ip)
        if not ips:
            raise OSError(f"{host} resolved to no address")
        self._cache.put(host, port, ips, now)
        return [_result(host, ip, port) for ip in ips]

    async def close(self) -> None:
        await self._inner.close()


def _result(hostname: str, ip: str, port: int) -> ResolveResult:
    return {
        "hostname": hostname,
        "host": ip,
        "port": port,
        "family": socket.AF_INET6 if ":" in ip else socket.AF_INET,
        "proto": 0,
        "flags": socket.AI_NUMERICHOST,
    }


# Endpoint URLs parsed once each, not on every send (a fan-out to 10,000 endpoints sends to
# 10,000 URLs; a busy endpoint sends to one URL thousands of times a second).
TARGET_CACHE_SIZE = 16_384


@functools.lru_cache(maxsize=TARGET_CACHE_SIZE)
def parse_target(url: str, allow_private: bool) -> tuple[URL | str, str | None]:
    """(the URL as aiohttp is handed it, why it must not be contacted or None).

    The URL comes back parsed (yarl URLs are immutable, so one object serves every send to it),
    or as the string itself when it does not parse: aiohttp then refuses it, and that refusal
    is the attempt's error."""
    try:
        parsed = URL(url)
        host = parsed.raw_host
    except (ValueError, TypeError):
        return url, None
    return parsed, None if allow_private else _literal_problem(host)


def literal_host_problem(url: str, allow_private: bool) -> str | None:
    """Why a URL whose host is a literal IP must not be contacted (None when fine)."""
    return parse_target(url, allow_private)[1]


def _literal_problem(host: str | None) -> str | None:
    if host is None:
        return None
    literal = host.strip("[]")
    if not is_ip_literal(literal):
        return None
    if is_forbidden_address(literal):
        return (
            f"{literal} is a loopback, private, link-local or reserved address; refused unless "
            "TIDINGS_ALLOW_PRIVATE_URLS=true"
        )
    return None


def tls_context(ca_bundle: str | None = None) -> ssl.SSLContext:
    """The one TLS context of every HTTPS delivery: the system's trusted roots with certificate
    and host name verification on (`ssl.create_default_context`), and, when `ca_bundle` names a
    PEM file, its CA certificates trusted beside them, not instead. Loading happens here, at
    start-up, so a bad file stops the worker rather than failing every delivery."""
    context = ssl.create_default_context()
    if ca_bundle is not None:
        context.load_verify_locations(cafile=ca_bundle)
    return context


class HttpSender:
    """Sends deliveries over one shared aiohttp session (created on first use) and, for the
    hosts it sends to most, the fast lane (`fast_lane=False` keeps every host on aiohttp)."""

    def __init__(
        self,
        *,
        timeout_seconds: float = DELIVERY_TIMEOUT_SECONDS,
        allow_private: bool = False,
        excerpt_bytes: int = RESPONSE_EXCERPT_BYTES,
        resolver: AbstractResolver | None = None,
        ca_bundle: str | None = None,
        fast_lane: bool = True,
        fast_lane_after: int = HOT_AFTER_SENDS,
        fast_lane_schemes: tuple[str, ...] = LANE_SCHEMES,
    ) -> None:
        self.timeout_seconds = timeout_seconds
        self._tls = tls_context(ca_bundle)
        self.allow_private = allow_private
        self.excerpt_bytes = excerpt_bytes
        self._inner_resolver = resolver
        # one cache of allowed answers for both lanes: a name is resolved once per TTL
        self._addresses = AddressCache()
        self._session: aiohttp.ClientSession | None = None
        connect_timeout = min(timeout_seconds, CONNECT_TIMEOUT_CAP_SECONDS)
        self._timeout = aiohttp.ClientTimeout(total=timeout_seconds, connect=connect_timeout)
        self._lane_resolver: GuardedResolver | None = None  # made in the loop, on first use
        self._lane = (
            FastLane(
                resolve=self._allowed_addresses,
                timeout_seconds=timeout_seconds,
                connect_timeout_seconds=connect_timeout,
                excerpt_bytes=excerpt_bytes,
                ca_bundle=ca_bundle,
                pin_seconds=self._addresses.ttl,
                hot_after=fast_lane_after,
                schemes=fast_lane_schemes,
            )
            if fast_lane
            else None
        )

    @property
    def fast_lane_hosts(self) -> int:
        """How many hosts the fast lane holds a client for."""
        return 0 if self._lane is None else self._lane.hosts

    def _guarded_resolver(self) -> GuardedResolver:
        return GuardedResolver(
            allow_private=self.allow_private, inner=self._inner_resolver, cache=self._addresses
        )

    async def _allowed_addresses(self, host: str, port: int) -> list[str]:
        if self._lane_resolver is None:
            self._lane_resolver = self._guarded_resolver()
        return [answer["host"] for answer in await self._lane_resolver.resolve(host, port)]

    def _get_session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            connector = aiohttp.TCPConnector(
                limit=CONNECTION_LIMIT,
                limit_per_host=0,
                ssl=self._tls,
                # the guarded resolver caches allowed answers itself (netguard.AddressCache)
                use_dns_cache=False,
                resolver=self._guarded_resolver(),
            )
            self._session = aiohttp.ClientSession(
                connector=connector,
                timeout=self._timeout,
                auto_decompress=True,
                cookie_jar=aiohttp.DummyCookieJar(),
            )
        return self._session

    async def send(self, url: str, body: bytes, headers: Mapping[str, str]) -> SendResult:
        started = time.perf_counter()

        def elapsed_ms() -> float:
            return (time.perf_counter() - started) * 1000.0

        target, problem = parse_target(url, self.allow_private)
        if problem is not None:
            return SendResult(None, f"ForbiddenAddress: {problem}", None, elapsed_ms())
        try:
            lane = self._lane
            if (
                lane is not None
                and isinstance(target, URL)
                and (client := await lane.client_for(target)) is not None
            ):
                try:
                    status, raw, retry_after = await lane.post(client, target, body, headers)
                except Exception as exc:
                    if not not_connected(exc):
                        raise
                    # nothing was sent: aiohttp tries every address the guard allowed
                    status, raw, retry_after = await self._post(target, body, headers)
            else:
                status, raw, retry_after = await self._post(target, body, headers)
        except asyncio.CancelledError:
            raise
        except TimeoutError:  # aiohttp's and pyreqwest's timeouts alike
            return SendResult(
                None,
                f"TimeoutError: no answer in {self.timeout_seconds:g} s",
                None,
                elapsed_ms(),
            )
        except Exception as exc:  # every other failure is an attempt outcome, never a crash
            return SendResult(None, describe_error(_root_cause(exc)), None, elapsed_ms())
        return SendResult(
            status_code=status,
            error=None,
            response_excerpt=decode_excerpt(raw, self.excerpt_bytes),
            duration_ms=elapsed_ms(),
            retry_after=retry_after,
        )

    async def _post(
        self, target: URL | str, body: bytes, headers: Mapping[str, str]
    ) -> tuple[int, bytes, str | None]:
        session = self._get_session()
        async with session.post(
            target, data=BytesPayload(body), headers=headers, allow_redirects=False
        ) as response:
            raw = await read_at_most(response.content.read, self.excerpt_bytes)
            return response.status, raw, response.headers.get("Retry-After")

    async def close(self) -> None:
        if self._session is not None and not self._session.closed:
            await self._session.close()
        self._session = None
        if self._lane is not None:
            await self._lane.close()
        if self._lane_resolver is not None and self._inner_resolver is None:
            await self._lane_resolver.close()  # its own inner resolver (one handed in is shared)
        self._lane_resolver = None


def _root_cause(exc: Exception) -> BaseException:
    """aiohttp wraps resolver refusals; name the refusal itself."""
    cause: BaseException | None = exc
    for _ in range(5):
        if cause is None:
            break
        if isinstance(cause, ForbiddenAddress):
            return cause
        cause = cause.__cause__ or getattr(cause, "os_error", None)
    return exc


__all__ = [
    "GuardedResolver",
    "HttpSender",
    "SendResult",
    "Sender",
    "decode_excerpt",
    "describe_error",
    "literal_host_problem",
    "parse_target",
    "tls_context",
]
