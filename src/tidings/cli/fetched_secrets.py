"""The signing secrets `tidings listen --key` verifies with: those of the organization's
endpoints whose URL points at the listener, read through the API with an organization key.

A listener started before its endpoint exists, or kept running across a secret rotation, would
otherwise answer 401 to every delivery; so when a request does not verify, the listener fetches
the secrets again and checks it again. A fetch begun after the request arrived serves it (one
fetch at a time, so a burst of such requests costs one fetch); fetches are at least
REFETCH_SECONDS apart, and a request that comes sooner waits for the next one rather than being
answered with secrets read before it arrived (a rotation just before it would make it a 401).
"""

from __future__ import annotations

import asyncio
import ipaddress
import time
from collections.abc import Awaitable, Callable
from urllib.parse import urlsplit

from tidings.cli.apiclient import ApiClient, ClientError

REFETCH_SECONDS = 1.0
ANY_ADDRESS = ("0.0.0.0", "::", "")
LOCAL_NAMES = ("localhost",)


def points_here(endpoint_url: str, host: str, port: int) -> bool:
    """Whether a request to `endpoint_url` reaches a listener on `host`:`port` of this machine:
    the same port, and a loopback address or the listener's own (any address when it listens
    on all of them)."""
    try:
        parts = urlsplit(endpoint_url)
        url_port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        return False
    if url_port != port:
        return False
    url_host = (parts.hostname or "").lower()
    if host in ANY_ADDRESS or url_host == host.lower() or url_host in LOCAL_NAMES:
        return True
    try:
        return ipaddress.ip_address(url_host).is_loopback
    except ValueError:
        return False


class FetchedSecrets:
    """`secrets` is the list the listener's route verifies with: the `given` ones (--secret)
    and those fetched; `refresh()` replaces the fetched part with what the API says now."""

    def __init__(
        self,
        url: str,
        key: str,
        host: str,
        port: int,
        secrets: list[str],
        given: list[str],
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.url = url
        self.key = key
        self.host = host
        self.port = port
        self.secrets = secrets
        self.given = list(given)
        self.endpoints = 0
        self.problem: str | None = None  # why the last fetch failed
        self._clock = clock
        self._sleep = sleep
        self._fetched_at = float("-inf")  # when the last fetch began
        self._fetch_ok = False
        self._lock = asyncio.Lock()

    async def fetch(self) -> None:
        """Read the secrets now; raises ClientError (the caller decides whether it is fatal)."""
        self._fetched_at = self._clock()
        found = list(self.given)
        endpoints = 0
        async with ApiClient(self.url, self.key) as api:
            async for endpoint in api.paginate("/v1/endpoints"):
                if not points_here(str(endpoint.get("url", "")), self.host, self.port):
                    continue
                endpoints += 1
                answer = await api.get(f"/v1/endpoints/{endpoint['id']}/secret")
                listed = [str(s.get("secret")) for s in answer.get("secrets", [])]
                for secret in listed or [str(answer.get("secret"))]:
                    if secret not in found:
                        found.append(secret)
        self.secrets[:] = found
        self.endpoints = endpoints

    async def refresh(self) -> bool:
        """Secrets read after this call began (fetching them, or sharing a fetch another request
        began meanwhile); True when they could be read (check the request again)."""
        asked = self._clock()
        async with self._lock:
            if self._fetched_at >= asked:
                return self._fetch_ok
            wait = self._fetched_at + REFETCH_SECONDS - self._clock()
            if wait > 0:
                await self._sleep(wait)
            try:
                await self.fetch()
            except ClientError as exc:
                self.problem = exc.line
                self._fetch_ok = False
                return False
            self.problem = None
            self._fetch_ok = True
            return True
