"""The console's response headers and static files.

Every response gets a strict Content-Security-Policy (scripts, styles and images from the
console itself only: no inline script, no inline style, no eval), `frame-ancestors` from
TIDINGS_CONSOLE_FRAME_ANCESTORS (default 'none': no framing), no referrer (a portal link's
token must not leak through it) and nosniff. Pages are never cached; static files are cached
for a year when asked for with their content hash (`?v=`, see `static_url`), else revalidated.
"""

from __future__ import annotations

import hashlib
from functools import cache
from importlib import resources

from starlette.datastructures import MutableHeaders
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

STATIC_PACKAGE = ("tidings.console", "static")
STATIC_PREFIX = "/console/static/"
IMMUTABLE = "public, max-age=31536000, immutable"
REVALIDATE = "no-cache"
NO_STORE = "no-store"


def content_security_policy(frame_ancestors: str) -> str:
    return "; ".join(
        (
            "default-src 'none'",
            "script-src 'self'",
            "style-src 'self'",
            "img-src 'self' data:",
            "connect-src 'self'",
            "form-action 'self'",
            "base-uri 'none'",
            f"frame-ancestors {frame_ancestors}",
        )
    )


class SecurityHeaders:
    """Pure ASGI middleware (no BaseHTTPMiddleware: it would buffer streamed bodies)."""

    def __init__(self, app: ASGIApp, *, frame_ancestors: str) -> None:
        self.app = app
        self.csp = content_security_policy(frame_ancestors)
        self.deny_frames = frame_ancestors.strip() == "'none'"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        is_static = scope["path"].startswith(STATIC_PREFIX) or scope["path"].startswith("/static/")
        versioned = is_static and b"v=" in scope.get("query_string", b"")

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                headers["Content-Security-Policy"] = self.csp
                headers["Referrer-Policy"] = "no-referrer"
                headers["X-Content-Type-Options"] = "nosniff"
                if self.deny_frames:
                    headers["X-Frame-Options"] = "DENY"
                if is_static:
                    ok = message["status"] == 200
                    headers["Cache-Control"] = IMMUTABLE if versioned and ok else REVALIDATE
                else:
                    headers["Cache-Control"] = NO_STORE
            await send(message)

        await self.app(scope, receive, send_with_headers)


def static_files() -> StaticFiles:
    return StaticFiles(packages=[STATIC_PACKAGE])


@cache
def static_version(name: str) -> str:
    """The first 12 hex digits of the file's SHA-256: a new release changes the URL."""
    data = resources.files(STATIC_PACKAGE[0]).joinpath(STATIC_PACKAGE[1], name).read_bytes()
    return hashlib.sha256(data).hexdigest()[:12]


def static_url(name: str) -> str:
    return f"{STATIC_PREFIX}{name}?v={static_version(name)}"
