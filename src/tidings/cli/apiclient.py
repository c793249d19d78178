"""A small async client for the tidings HTTP API (contract section 7), used by the CLI commands
and by `tidings demo`.

It is async (aiohttp, already a runtime dependency) because `tidings demo` runs the API, the
worker and the receiver in the same event loop as the client: a blocking client would stall the
server it talks to. The CLI commands run it with `asyncio.run`.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Mapping
from types import TracebackType
from typing import Any
from urllib.parse import urlsplit

import aiohttp

from tidings import __version__

DEFAULT_URL = "http://127.0.0.1:8080"
REQUEST_TIMEOUT_SECONDS = 60.0


class ClientError(Exception):
    """Anything that keeps a CLI command from succeeding; `line` is what the user sees."""

    exit_code = 1

    @property
    def line(self) -> str:
        return f"error: {self}"


class ApiError(ClientError):
    """The API answered with an error body {"error": {"code", "message", "details"}}."""

    def __init__(self, status: int, code: str, message: str, details: Any = None) -> None:
        self.status = status
        self.code = code
        self.message = message
        self.details = details
        super().__init__(f"{status} {code}: {message}")

    @property
    def line(self) -> str:
        """One line, then one indented line per validation detail when there are several (the
        message names only the first failing path)."""
        lines = [f"error {self.status} {self.code}: {self.message}"]
        issues = detail_lines(self.details)
        if len(issues) > 1:
            lines += [f"  {issue}" for issue in issues]
        return "\n".join(lines)


def detail_lines(details: Any) -> list[str]:
    """`path: message` for each `{"path", "message"}` of an error's details."""
    if not isinstance(details, list):
        return []
    return [
        f"{item.get('path')}: {item.get('message')}"
        for item in details
        if isinstance(item, dict) and "path" in item
    ]


class NotTidings(ClientError):
    """Something answered that is not the tidings API (another server at --url, a proxy's
    error page)."""


class ConnectionFailed(ClientError):
    """The server could not be reached (refused, DNS, timeout)."""

    exit_code = 3


class UsageError(ClientError):
    """A command was given something it cannot use (missing key, unreadable file, ...)."""

    exit_code = 2


def check_api_url(url: str) -> str:
    """The API's base URL without a trailing slash; UsageError unless it is http(s)://host."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise UsageError(
            f"--url (TIDINGS_URL) must start with http:// or https://, not {url!r} "
            f"(for example {DEFAULT_URL})"
        )
    return url.rstrip("/")


def _not_tidings(url: str, status: int, content_type: str) -> NotTidings:
    what = content_type.split(";")[0].strip() or "no content type"
    return NotTidings(
        f"{url} answered {status} ({what}), which is not an answer of the tidings API; "
        "is --url (TIDINGS_URL) the tidings API?"
    )


def _api_error(status: int, text: str) -> ApiError | None:
    """The tidings error the body holds; None when the body is not one."""
    try:
        body = json.loads(text)
    except ValueError:
        return None
    if not (isinstance(body, dict) and isinstance(body.get("error"), dict)):
        return None
    err = body["error"]
    return ApiError(
        status,
        str(err.get("code") or "error"),
        str(err.get("message") or "").strip() or "no message",
        err.get("details"),
    )


class ApiClient:
    """`async with ApiClient(url, key) as api: await api.get("/v1/endpoints")`.

    Answers are the decoded JSON bodies; a non-2xx answer raises `ApiError`, a server that
    cannot be reached raises `ConnectionFailed`. `last_status` and `last_headers` keep the
    status line and headers of the last answer (201 vs 200 on publish, ETag on feeds)."""

    def __init__(
        self,
        url: str = DEFAULT_URL,
        key: str | None = None,
        *,
        timeout_seconds: float = REQUEST_TIMEOUT_SECONDS,
    ) -> None:
        self.url = check_api_url(url)
        self.key = key
        self.timeout = aiohttp.ClientTimeout(total=timeout_seconds)
        self.last_status = 0
        self.last_headers: Mapping[str, str] = {}
        self._session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> ApiClient:
        headers = {"User-Agent": f"tidings-cli/{__version__}", "Accept": "application/json"}
        if self.key:
            headers["Authorization"] = f"Bearer {self.key}"
        self._session = aiohttp.ClientSession(headers=headers, timeout=self.timeout)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def request(
        self,
        method: str,
        path: str,
        *,
        body: Any = None,
        params: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> Any:
        if self._session is None:
            raise RuntimeError("use ApiClient as `async with`")
        query = {k: _param(v) for k, v in (params or {}).items() if v is not None}
        send_headers = dict(headers or {})
        data: bytes | None = None
        if body is not None:
            data = json.dumps(body).encode()
            send_headers["Content-Type"] = "application/json"
        try:
            async with self._session.request(
                method,
                self.url + path,
                data=data,
                params=query,
                headers=send_headers,
                allow_redirects=False,
            ) as resp:
                text = await resp.text(errors="replace")
                self.last_status = resp.status
                self.last_headers = dict(resp.headers)
                content_type = resp.headers.get("Content-Type", "")
        except aiohttp.ClientConnectorError as exc:
            raise ConnectionFailed(
                f"cannot connect to {self.url} ({_reason(exc)}); is `tidings serve` running?"
            ) from exc
        except TimeoutError as exc:
            raise ConnectionFailed(f"{self.url} did not answer within the timeout") from exc
        except aiohttp.ClientError as exc:
            raise ConnectionFailed(f"request to {self.url} failed: {exc}") from exc
        if resp.status == 304:
            return None
        if 300 <= resp.status < 400:  # tidings never redirects; redirects are not followed
            raise _not_tidings(self.url, resp.status, content_type)
        if resp.status >= 400:
            raise _api_error(resp.status, text) or _not_tidings(self.url, resp.status, content_type)
        if not text:
            return None
        if not content_type.startswith("application/json"):
            raise _not_tidings(self.url, resp.status, content_type)
        try:
            return json.loads(text)
        except ValueError as exc:
            raise _not_tidings(self.url, resp.status, content_type) from exc

    async def get(self, path: str, **params: Any) -> Any:
        return await self.request("GET", path, params=params)

    async def post(self, path: str, body: Any = None, **params: Any) -> Any:
        return await self.request(
            "POST", path, body=body if body is not None else {}, params=params
        )

    async def patch(self, path: str, body: Any) -> Any:
        return await self.request("PATCH", path, body=body)

    async def delete(self, path: str) -> Any:
        return await self.request("DELETE", path)

    async def paginate(
        self,
        path: str,
        *,
        limit: int | None = None,
        page_size: int = 200,
        params: Mapping[str, Any] | None = None,
    ) -> AsyncIterator[dict[str, Any]]:
        """Every item of a list answer `{"items", "nextCursor"}`, following cursors, up to
        `limit` items (None: all)."""
        cursor: str | None = None
        seen = 0
        while True:
            size = page_size if limit is None else max(1, min(page_size, limit - seen))
            page = await self.get(path, limit=size, cursor=cursor, **(params or {}))
            for item in page.get("items", []):
                yield item
                seen += 1
                if limit is not None and seen >= limit:
                    return
            cursor = page.get("nextCursor")
            if not cursor:
                return


def _param(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _reason(exc: aiohttp.ClientConnectorError) -> str:
    os_error = exc.os_error
    if isinstance(os_error, ConnectionRefusedError):
        return "connection refused"
    return str(os_error.strerror or os_error) if os_error is not None else str(exc)


__all__ = [
    "DEFAULT_URL",
    "ApiClient",
    "ApiError",
    "ClientError",
    "ConnectionFailed",
    "NotTidings",
    "UsageError",
    "check_api_url",
]
