"""Endpoint URL rules and the address guard (contract §6), used at registration (API) and at
connect time (delivery sender).

- `check_endpoint_url` is pure: scheme, host, userinfo, port, length, literal IPs and
  well-known internal host names. Pass ``allow_http=settings.http_allowed`` (http is allowed
  by TIDINGS_ALLOW_HTTP or TIDINGS_ALLOW_PRIVATE_URLS) and
  ``allow_private=settings.allow_private_urls``.
- `resolve_allowed` resolves a host and refuses it if *any* answer is a forbidden address
  (loopback, private, link-local/metadata, CGNAT, ULA, multicast, reserved, ...). The sender
  must then connect to one of the addresses it returned (not resolve again), or a DNS answer
  that changes between check and connect (rebinding) would slip through.
- `AddressCache` keeps allowed answers for a short TTL so the sender does not resolve per
  request.
"""

from __future__ import annotations

import asyncio
import ipaddress
import re
import socket
from collections.abc import Awaitable, Callable
from urllib.parse import urlsplit

from tidings.ttlcache import TtlCache

MAX_URL_LENGTH = 2048
# The one setting that allows a private address, named in every refusal of one; it allows
# http:// too, so a refusal never sends people from one setting to another.
ALLOW_PRIVATE_HINT = "TIDINGS_ALLOW_PRIVATE_URLS=true (`tidings serve --dev` turns it on)"
DEFAULT_CACHE_TTL_SECONDS = 60.0

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Resolver = Callable[[str, int], Awaitable[list[str]]]

_CGNAT = ipaddress.ip_network("100.64.0.0/10")
_ULA = ipaddress.ip_network("fc00::/7")
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_EXPLICIT_V6 = (ipaddress.ip_address("fd00:ec2::254"),)  # AWS IMDS over IPv6 (ULA anyway)
_FORBIDDEN_NAMES = frozenset({"localhost", "metadata.google.internal", "metadata"})
_FORBIDDEN_SUFFIXES = (".localhost", ".internal", ".local")
_HOST_LABEL = re.compile(r"[A-Za-z0-9_]([A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?")
_NUMERIC_LABEL = re.compile(r"(0x[0-9a-fA-F]*|[0-9]+)")


class ForbiddenAddress(Exception):
    """A host resolved to an address tidings must not connect to."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def _parse_ip(ip: str) -> IPAddress | None:
    text = ip.strip()
    if text.startswith("[") and text.endswith("]"):
        text = text[1:-1]
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


def is_ip_literal(host: str) -> bool:
    """Is `host` an IP address as written (brackets allowed), not a name to resolve?"""
    return _parse_ip(host) is not None


def _forbidden(addr: IPAddress) -> bool:
    if isinstance(addr, ipaddress.IPv6Address):
        if addr.ipv4_mapped is not None:  # ::ffff:a.b.c.d is a.b.c.d on a dual-stack socket
            return _forbidden(addr.ipv4_mapped)
        if addr.sixtofour is not None and _forbidden(addr.sixtofour):
            return True
        if addr.teredo is not None and any(_forbidden(a) for a in addr.teredo):
            return True
        if addr in _NAT64:
            return _forbidden(ipaddress.IPv4Address(int(addr) & 0xFFFFFFFF))
        if addr in _ULA or addr in _EXPLICIT_V6 or addr.is_site_local:
            return True
    elif addr in _CGNAT:
        return True
    if (
        addr.is_loopback
        or addr.is_private
        or addr.is_link_local
        or addr.is_unspecified
        or addr.is_multicast
        or addr.is_reserved
    ):
        return True
    return not addr.is_global


def is_forbidden_address(ip: str) -> bool:
    """True for loopback, private, link-local (incl. 169.254.169.254), unspecified, multicast,
    reserved, CGNAT 100.64.0.0/10, IPv6 ULA fc00::/7 (incl. fd00:ec2::254), and IPv6 forms
    embedding any of those (IPv4-mapped, 6to4, Teredo, NAT64). Unparseable input is forbidden
    (fail closed). A zone id (``fe80::1%eth0``) is ignored."""
    text = ip.strip()
    if "%" in text:
        text = text.split("%", 1)[0]
    addr = _parse_ip(text)
    if addr is None:
        return True
    return _forbidden(addr)


def _host_name_problem(host: str, allow_private: bool) -> str | None:
    name = host.rstrip(".").lower()
    if not name:
        return "URL has no host"
    if not name.isascii():
        try:
            name = name.encode("idna").decode("ascii")
        except UnicodeError:
            return "URL host is not a valid host name"
    labels = name.split(".")
    if any(not _HOST_LABEL.fullmatch(label) for label in labels):
        return "URL host is not a valid host name"
    # "127.1", "2130706433", "0x7f.0.0.1": browsers and resolvers read these as IPv4
    if _NUMERIC_LABEL.fullmatch(labels[-1]):
        return "URL host looks like a numeric IPv4 address in a non-standard form"
    if not allow_private and (
        name in _FORBIDDEN_NAMES or name.endswith(_FORBIDDEN_SUFFIXES) or "." not in name
    ):
        return f"URL host {name} is internal; refused unless {ALLOW_PRIVATE_HINT}"
    return None


def _literal_problem(host: str, literal: IPAddress, allow_private: bool) -> str | None:
    if "%" in host:
        return "URL host must not carry an IPv6 zone id"
    if not allow_private and _forbidden(literal):
        return (
            f"URL host {host} is a loopback, private, link-local or reserved address; "
            f"refused unless {ALLOW_PRIVATE_HINT}"
        )
    return None


def check_endpoint_url(url: str, *, allow_http: bool, allow_private: bool) -> str | None:
    """None when `url` may be registered as an endpoint, else the reason. The http:// rule is
    checked last, so that the reason names the one setting that would allow the URL."""
    if not isinstance(url, str) or not url:
        return "URL must be a non-empty string"
    if len(url) > MAX_URL_LENGTH:
        return f"URL must be at most {MAX_URL_LENGTH} characters"
    if any(c.isspace() or ord(c) < 0x20 or ord(c) == 0x7F for c in url):
        return "URL must not contain whitespace or control characters"
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return "URL is not valid (check the host and port)"
    scheme = parts.scheme.lower()
    if scheme not in ("https", "http"):
        return "URL scheme must be https"
    if "@" in parts.netloc:
        return "URL must not contain a user name or password"
    if port is not None and not 1 <= port <= 65535:
        return "URL port is not valid"
    host = parts.hostname
    if not host:
        return "URL has no host"
    if parts.fragment:
        return "URL must not contain a fragment"
    literal = _parse_ip(host)
    if literal is not None:
        problem = _literal_problem(host, literal, allow_private)
    elif ":" in host:
        problem = "URL host is not a valid IPv6 address"
    else:
        problem = _host_name_problem(host, allow_private)
    if problem is None and scheme == "http" and not allow_http:
        # last: for a private host the private rule speaks, as its setting allows http too
        problem = "http:// URLs are refused; use https:// (or set TIDINGS_ALLOW_HTTP=true)"
    return problem


async def _default_resolver(host: str, port: int) -> list[str]:
    loop = asyncio.get_running_loop()
    infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [str(info[4][0]) for info in infos]


async def resolve_allowed(
    host: str,
    port: int,
    *,
    allow_private: bool,
    resolver: Resolver | None = None,
) -> list[str]:
    """Resolve `host` (loop.getaddrinfo unless a resolver is given) and answer its addresses,
    deduplicated in resolver order. Raises ForbiddenAddress if any answer is forbidden (unless
    `allow_private`), and OSError when the name resolves to nothing; resolver errors
    (socket.gaierror) propagate."""
    answers = await (resolver or _default_resolver)(host, port)
    ips: list[str] = []
    for ip in answers:
        if ip not in ips:
            ips.append(ip)
    if not ips:
        raise OSError(f"{host} resolved to no address")
    if not allow_private:
        for ip in ips:
            if is_forbidden_address(ip):
                raise ForbiddenAddress(
                    f"{host} resolves to a forbidden address ({ip}); refused unless "
                    + ALLOW_PRIVATE_HINT
                )
    return ips


class AddressCache:
    """Allowed answers of `resolve_allowed` per (host, port), for `ttl` seconds, bounded in
    size (least recently stored goes first). Handed `now`; never reads the clock."""

    def __init__(self, ttl: float = DEFAULT_CACHE_TTL_SECONDS, max_entries: int = 4096) -> None:
        self._cache: TtlCache[tuple[str, int], list[str]] = TtlCache(ttl, max_entries)

    @property
    def ttl(self) -> float:
        return self._cache.ttl

    def get(self, host: str, port: int, now: float) -> list[str] | None:
        ips = self._cache.get((host.lower(), port), now)
        return None if ips is None else list(ips)

    def put(self, host: str, port: int, ips: list[str], now: float) -> None:
        self._cache.put((host.lower(), port), list(ips), now)

    def clear(self) -> None:
        self._cache.clear()

    def __len__(self) -> int:
        return len(self._cache)

    async def resolve(
        self,
        host: str,
        port: int,
        now: float,
        *,
        allow_private: bool,
        resolver: Resolver | None = None,
    ) -> list[str]:
        """Cached `resolve_allowed`: only allowed answers are cached; refusals raise again."""
        cached = self.get(host, port, now)
        if cached is not None:
            return cached
        ips = await resolve_allowed(host, port, allow_private=allow_private, resolver=resolver)
        self.put(host, port, ips, now)
        return ips


__all__ = [
    "DEFAULT_CACHE_TTL_SECONDS",
    "MAX_URL_LENGTH",
    "AddressCache",
    "ForbiddenAddress",
    "Resolver",
    "check_endpoint_url",
    "is_forbidden_address",
    "is_ip_literal",
    "resolve_allowed",
]
