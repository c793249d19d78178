"""Liveness, readiness and Prometheus metrics: no API key needed (they reveal no tenant data);
`/metrics` asks for `Authorization: Bearer $TIDINGS_METRICS_TOKEN` when that is set."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse

from tidings.api.context import Ctx
from tidings.api.errors import error_response
from tidings.services.health import metrics_allowed, readiness

router = APIRouter(tags=["health"])


@router.get("/healthz", summary="the process is up")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get(
    "/readyz", summary="the database is reachable and its schema current", response_model=None
)
async def readyz(ctx: Ctx) -> dict[str, object] | Response:
    ready = await readiness(ctx.deps.store)
    if not ready.ready:
        return JSONResponse(ready.body(), status_code=503)
    return ready.body()


@router.get("/metrics", summary="Prometheus metrics", response_model=None)
async def metrics(ctx: Ctx, request: Request) -> Response:
    if not metrics_allowed(ctx.settings.metrics_token, request.headers.get("authorization")):
        return error_response(
            401,
            "unauthorized",
            "this /metrics needs Authorization: Bearer <TIDINGS_METRICS_TOKEN>",
            headers={"WWW-Authenticate": "Bearer"},
        )
    if ctx.metrics is None:
        return error_response(404, "not_found", "metrics are not enabled in this process")
    body, content_type = await ctx.metrics()
    return Response(content=body, media_type=content_type)
