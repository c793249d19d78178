"""The one ASGI app a `tidings serve` or `tidings api` process serves: the HTTP API with the
browser console mounted at /console (and `/` leading to it). The console gets the API's own
settings and service `Deps` (store, catalog, publisher, clock, key cache): two faces of one
service layer."""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.responses import RedirectResponse

from tidings.api.context import AppContext
from tidings.console import CONSOLE_PATH, ConsoleContext, create_console


def with_console(app: FastAPI) -> FastAPI:
    """`app` (made by `tidings.api.create_app`) with the console mounted."""
    api: AppContext = app.state.tidings
    console = create_console(ConsoleContext(settings=api.settings, deps=api.deps))

    @app.get("/", include_in_schema=False)
    async def root() -> RedirectResponse:
        return RedirectResponse(CONSOLE_PATH + "/", status_code=307)

    app.mount(CONSOLE_PATH, console)
    return app
