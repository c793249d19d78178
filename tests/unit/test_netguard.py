from __future__ import annotations

import socket

import pytest

from tidings.netguard import (
    AddressCache,
    ForbiddenAddress,
    check_endpoint_url,
    is_forbidden_address,
    resolve_allowed,
)

FORBIDDEN = [
    "127.0.0.1",
    "127.8.9.10",
    "10.0.0.1",
    "172.16.0.1",
    "172.31.255.255",
    "192.168.1.1",
    "169.254.169.254",  # cloud metadata
    "169.254.0.1",
    "0.0.0.0",
    "0.1.2.3",
    "100.64.0.1",  # CGNAT
    "100.127.255.254",
    "224.0.0.1",
    "239.255.255.250",
    "240.0.0.1",
    "255.255.255.255",
    "192.0.2.10",  # documentation
    "198.18.0.1",  # benchmarking
    "::1",
    "::",
    "fe80::1",
    "fe80::1%eth0",
    "fc00::1",
    "fd12:3456::1",
    "fd00:ec2::254",  # AWS IMDS over IPv6
    "ff02::1",
    "fec0::1",  # deprecated site-local
    "::ffff:127.0.0.1",
    "::ffff:169.254.169.254",
    "::ffff:10.1.2.3",
    "::ffff:100.64.0.1",
    "2002:7f00:1::1",  # 6to4 of 127.0.0.1
    "2002:a9fe:a9fe::1",  # 6to4 of 169.254.169.254
    "64:ff9b::7f00:1",  # NAT64 of 127.0.0.1
    "2001:db8::1",  # documentation
    "not-an-ip",
    "",
    "999.1.1.1",
]
ALLOWED = [
    "8.8.8.8",
    "1.1.1.1",
    "93.184.216.34",
    "100.63.255.255",  # just below CGNAT
    "100.128.0.1",  # just above CGNAT
    "172.32.0.1",
    "2606:4700:4700::1111",
    "2001:4860:4860::8888",
    "::ffff:8.8.8.8",
    "64:ff9b::808:808",
]


@pytest.mark.parametrize("ip", FORBIDDEN)
def test_forbidden_addresses(ip: str) -> None:
    assert is_forbidden_address(ip)


@pytest.mark.parametrize("ip", ALLOWED)
def test_allowed_addresses(ip: str) -> None:
    assert not is_forbidden_address(ip)


# ---- check_endpoint_url ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "https://example.com/hook",
        "https://EXAMPLE.com:8443/hook?x=1",
        "https://hooks.example.co.uk/a/b/c",
        "https://8.8.8.8/hook",
        "https://[2606:4700:4700::1111]/hook",
        "https://example.com./hook",
        "https://bücher.example/hook",
        "HTTPS://example.com/",
    ],
)
def test_urls_accepted(url: str) -> None:
    assert check_endpoint_url(url, allow_http=False, allow_private=False) is None


@pytest.mark.parametrize(
    "url",
    [
        "",
        "ftp://example.com/",
        "example.com/hook",
        "//example.com/hook",
        "https:///hook",
        "https://user:pass@example.com/",
        "https://user@example.com/",
        "https://example.com:0/",
        "https://example.com:99999/",
        "https://example.com:abc/",
        "https://example.com/a b",
        "https://example.com/\nx",
        "https://example.com/#frag",
        "https://localhost/hook",
        "https://LOCALHOST./hook",
        "https://api.localhost/hook",
        "https://metadata.google.internal/computeMetadata/v1/",
        "https://db.internal/",
        "https://printer.local/",
        "https://intranet/hook",
        "https://127.0.0.1/hook",
        "https://10.0.0.5/hook",
        "https://169.254.169.254/latest/meta-data/",
        "https://[::1]/hook",
        "https://[fd00:ec2::254]/",
        "https://[::ffff:127.0.0.1]/",
        "https://[fe80::1%25eth0]/",
        "https://[::1/",
        "https://2130706433/",  # 127.0.0.1 as one number
        "https://127.1/",
        "https://0x7f.0.0.1/",
        "https://exa_mple..com/",
        "https://-bad-.com/",
        "https://example.com/" + "a" * 2100,
    ],
)
def test_urls_refused(url: str) -> None:
    reason = check_endpoint_url(url, allow_http=False, allow_private=False)
    assert isinstance(reason, str) and reason


def test_http_needs_allow_http() -> None:
    url = "http://example.com/hook"
    assert check_endpoint_url(url, allow_http=False, allow_private=False) is not None
    assert check_endpoint_url(url, allow_http=True, allow_private=False) is None


@pytest.mark.parametrize(
    "url",
    ["http://127.0.0.1:9000/hooks", "http://localhost:9000/", "http://[::1]/", "http://intranet/"],
)
def test_a_private_http_url_is_refused_naming_the_one_setting_that_allows_it(url: str) -> None:
    # TIDINGS_ALLOW_PRIVATE_URLS allows http:// too: naming TIDINGS_ALLOW_HTTP first sent people
    # to a setting after which the URL was still refused (issue 23, item 1)
    reason = check_endpoint_url(url, allow_http=False, allow_private=False)
    assert reason is not None and "TIDINGS_ALLOW_PRIVATE_URLS=true" in reason
    assert "TIDINGS_ALLOW_HTTP" not in reason
    assert check_endpoint_url(url, allow_http=True, allow_private=True) is None


def test_a_public_http_url_is_refused_naming_allow_http() -> None:
    reason = check_endpoint_url("http://hooks.example.com/", allow_http=False, allow_private=False)
    assert reason is not None and "TIDINGS_ALLOW_HTTP=true" in reason
    assert "PRIVATE" not in reason


def test_private_urls_with_allow_private() -> None:
    for url in (
        "https://localhost:9000/hook",
        "https://127.0.0.1:9000/hook",
        "https://[::1]:9000/hook",
        "https://metadata.google.internal/",
        "https://receiver/hook",
    ):
        assert check_endpoint_url(url, allow_http=False, allow_private=True) is None, url
    # private does not lift the other rules
    assert check_endpoint_url("http://127.0.0.1/", allow_http=False, allow_private=True)
    assert check_endpoint_url("https://u:p@127.0.0.1/", allow_http=True, allow_private=True)
    assert check_endpoint_url("https://127.1/", allow_http=True, allow_private=True)


def test_url_length_boundary() -> None:
    base = "https://example.com/"
    ok = base + "a" * (2048 - len(base))
    assert len(ok) == 2048
    assert check_endpoint_url(ok, allow_http=False, allow_private=False) is None
    assert check_endpoint_url(ok + "a", allow_http=False, allow_private=False) is not None


# ---- resolve_allowed and AddressCache --------------------------------------------------------


class FakeResolver:
    def __init__(self, answers: dict[str, list[str]]) -> None:
        self.answers = answers
        self.calls: list[tuple[str, int]] = []

    async def __call__(self, host: str, port: int) -> list[str]:
        self.calls.append((host, port))
        if host not in self.answers:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return list(self.answers[host])


RESOLVER = FakeResolver(
    {
        "public.example": ["93.184.216.34", "2606:2800:220:1::1", "93.184.216.34"],
        "rebind.example": ["93.184.216.34", "127.0.0.1"],
        "meta.example": ["169.254.169.254"],
        "empty.example": [],
    }
)


async def test_resolve_public() -> None:
    ips = await resolve_allowed("public.example", 443, allow_private=False, resolver=RESOLVER)
    assert ips == ["93.184.216.34", "2606:2800:220:1::1"]


@pytest.mark.parametrize("host", ["rebind.example", "meta.example"])
async def test_resolve_refuses_if_any_answer_forbidden(host: str) -> None:
    with pytest.raises(ForbiddenAddress) as info:
        await resolve_allowed(host, 443, allow_private=False, resolver=RESOLVER)
    assert host in info.value.reason
    ips = await resolve_allowed(host, 443, allow_private=True, resolver=RESOLVER)
    assert ips


async def test_resolve_errors() -> None:
    with pytest.raises(OSError):
        await resolve_allowed("empty.example", 443, allow_private=False, resolver=RESOLVER)
    with pytest.raises(socket.gaierror):
        await resolve_allowed("nope.example", 443, allow_private=False, resolver=RESOLVER)


async def test_resolve_default_resolver_with_literal_ip() -> None:
    # a literal IP needs no DNS: getaddrinfo answers it without the network
    assert await resolve_allowed("8.8.8.8", 443, allow_private=False) == ["8.8.8.8"]
    with pytest.raises(ForbiddenAddress):
        await resolve_allowed("127.0.0.1", 443, allow_private=False)


def test_cache_ttl_and_keys() -> None:
    cache = AddressCache(ttl=60.0)
    assert cache.get("a.example", 443, 0.0) is None
    cache.put("A.example", 443, ["93.184.216.34"], 100.0)
    assert cache.get("a.example", 443, 100.0) == ["93.184.216.34"]
    assert cache.get("a.example", 443, 159.9) == ["93.184.216.34"]
    assert cache.get("a.example", 80, 120.0) is None
    assert cache.get("a.example", 443, 160.0) is None
    assert len(cache) == 0


def test_cache_bounded() -> None:
    cache = AddressCache(ttl=60.0, max_entries=2)
    for i in range(3):
        cache.put(f"h{i}.example", 443, ["8.8.8.8"], 0.0)
    assert len(cache) == 2
    assert cache.get("h0.example", 443, 1.0) is None
    assert cache.get("h2.example", 443, 1.0) == ["8.8.8.8"]


async def test_cache_resolve_uses_resolver_once_per_ttl() -> None:
    resolver = FakeResolver({"public.example": ["93.184.216.34"], "meta.example": ["10.0.0.1"]})
    cache = AddressCache(ttl=60.0)
    for now in (0.0, 30.0, 59.0):
        got = await cache.resolve(
            "public.example", 443, now, allow_private=False, resolver=resolver
        )
        assert got == ["93.184.216.34"]
    assert resolver.calls == [("public.example", 443)]
    await cache.resolve("public.example", 443, 61.0, allow_private=False, resolver=resolver)
    assert len(resolver.calls) == 2
    for _ in range(2):  # refusals are not cached
        with pytest.raises(ForbiddenAddress):
            await cache.resolve("meta.example", 443, 0.0, allow_private=False, resolver=resolver)
    assert resolver.calls.count(("meta.example", 443)) == 2
