"""Liveness, readiness and Prometheus metrics: no key needed (they reveal no tenant data)."""

from __future__ import annotations

from fastapi import APIRouter, Response

from tidings.api.context import Ctx
from tidings.api.errors import error_response
from tidings.store.base import StoreError

router = APIRouter(tags=["health"])


@router.get("/healthz", summary="the process is up")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get(
    "/readyz", summary="the database is reachable and its schema current", response_model=None
)
async def readyz(ctx: Ctx) -> dict[str, object] | Response:
    try:
        await ctx.deps.store.ping()
        status = await ctx.deps.store.migration_status()
    except StoreError as exc:
        return error_response(503, "not_ready", f"database unreachable: {type(exc).__name__}")
    if not status.up_to_date:
        return error_response(
            503,
            "not_ready",
            "database schema is not current: run `tidings migrate`",
            {"current": status.current, "latest": status.latest},
        )
    return {"status": "ready", "schemaVersion": status.current}


@router.get("/metrics", summary="Prometheus metrics", response_model=None)
async def metrics(ctx: Ctx) -> Response:
    if ctx.metrics is None:
        return error_response(404, "not_found", "metrics are not enabled in this process")
    body, content_type = await ctx.metrics()
    return Response(content=body, media_type=content_type)
