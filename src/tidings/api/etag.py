"""Strong ETags and conditional GETs for the feed and the state reads."""

from __future__ import annotations

import hashlib

from fastapi import Request, Response


def strong_etag(*parts: object) -> str:
    digest = hashlib.sha256("\x1f".join(str(p) for p in parts).encode()).hexdigest()[:32]
    return f'"{digest}"'


def matches(request: Request, etag: str) -> bool:
    """True when If-None-Match names `etag` (or `*`): answer 304."""
    header = request.headers.get("if-none-match")
    if not header:
        return False
    candidates = {c.strip() for c in header.split(",")}
    return "*" in candidates or etag in candidates or f"W/{etag}" in candidates


def not_modified(etag: str) -> Response:
    return Response(status_code=304, headers={"ETag": etag})
