"""The signing secrets `tidings listen --key` verifies with: those of the organization's
endpoints whose URL points at the listener, read through the API with an organization key.

A listener started before its endpoint exists, or kept running across a secret rotation, would
otherwise answer 401 to every delivery; so when a request does not verify, the listener fetches
the secrets again (at most once per REFETCH_SECONDS, one fetch at a time) and checks it again.
"""

from __future__ import annotations

import asyncio
import ipaddress
import time
from collections.abc import Callable
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
        self._fetched_at = float("-inf")
        self._lock = asyncio.Lock()

    async def fetch(self) -> None:
        """Read the secrets now; raises ClientError (the caller decides whether it is fatal)."""
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
        self._fetched_at = self._clock()

    async def refresh(self) -> bool:
        """Fetch again unless that was done a moment ago; True when the secrets are fresh (check
        the request again), False when they could not be read."""
        async with self._lock:
            if self._clock() - self._fetched_at < REFETCH_SECONDS:
                return True
            try:
                await self.fetch()
            except ClientError as exc:
                self.problem = exc.line
                self._fetched_at = self._clock()  # do not ask a failing API on every request
                return False
            self.problem = None
            return True
