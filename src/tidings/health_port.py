"""A worker-only process's own small HTTP port (`TIDINGS_WORKER_HEALTH_PORT`): `/healthz`,
`/readyz` and `/metrics`, so an orchestrator can probe a `tidings worker` as it probes an API
process, and Prometheus can read the worker's own counters (attempts, outcomes, durations),
which live in the worker's memory and which no API process can answer for.

Served by aiohttp, which the worker already loads for delivery (a worker never loads FastAPI).
The rules are the service layer's (`services.health`), the same as the API's routes.
"""

from __future__ import annotations

import socket
from collections.abc import Awaitable, Callable

from aiohttp import web

from tidings.services.health import ReadinessStore, metrics_allowed, readiness

MetricsRenderer = Callable[[], Awaitable[tuple[bytes, str]]]


def health_app(
    store: ReadinessStore,
    render_metrics: MetricsRenderer,
    metrics_token: str | None,
    alive: Callable[[], bool],
) -> web.Application:
    """`alive()` says whether the worker's loop is still running (liveness)."""

    async def healthz(request: web.Request) -> web.Response:
        if not alive():
            return web.json_response({"status": "stopping"}, status=503)
        return web.json_response({"status": "ok", "role": "worker"})

    async def readyz(request: web.Request) -> web.Response:
        ready = await readiness(store)
        return web.json_response(ready.body(), status=200 if ready.ready else 503)

    async def metrics(request: web.Request) -> web.Response:
        if not metrics_allowed(metrics_token, request.headers.get("Authorization")):
            return web.json_response(
                {
                    "error": {
                        "code": "unauthorized",
                        "message": "this /metrics needs Authorization: Bearer "
                        "<TIDINGS_METRICS_TOKEN>",
                        "details": None,
                    }
                },
                status=401,
                headers={"WWW-Authenticate": "Bearer"},
            )
        body, content_type = await render_metrics()
        response = web.Response(body=body)
        response.headers["Content-Type"] = content_type
        return response

    app = web.Application()
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/metrics", metrics)
    return app


class HealthPort:
    """The app served on a socket bound beforehand (so a busy port stops the process at start)."""

    def __init__(self, app: web.Application, sock: socket.socket) -> None:
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False)
        self._sock = sock

    async def start(self) -> None:
        await self._runner.setup()
        await web.SockSite(self._runner, self._sock).start()

    async def stop(self) -> None:
        await self._runner.cleanup()
        self._sock.close()


__all__ = ["HealthPort", "health_app"]
