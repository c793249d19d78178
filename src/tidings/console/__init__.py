"""The browser console at /console/: an integrator portal and an operator console, served by the
same process as the API (issue 21). Server-rendered Jinja2 pages, static files shipped in the
package, htmx (vendored) for the few live parts; no build step, no CDN.

`create_console(context)` builds the ASGI app that `tidings.web` mounts at `/console`. It owns
the security headers (strict CSP, `frame-ancestors` from TIDINGS_CONSOLE_FRAME_ANCESTORS), the
static files and the HTML error pages; each page is a module in `tidings.console.pages` with its
router and a template in `templates/pages/`. Pages call `tidings.services` operations with the
viewer's actor, exactly as the API's routes do, and never the store. Adding a page is a
template, a router and a test.

Pages now:
- sign_in: sign in with an organization or platform key; sign out; portal links (/portal/{token})
- home: the operator's overview (deliveries and endpoints at a glance, SVG chart) and portal
  links for any organization; an integrator's start (its endpoints)
- catalog: every event type with its description, schemas per version and examples
- endpoints: the organization's endpoints, keyset-paginated, with pause and resume
- endpoint_form: register an endpoint (the API's validation beside each field; the secret once)
- deliveries: the history (filters: endpoint, event type, status, time), one delivery with the
  request as sent and every attempt, replay one
- replay: replay an endpoint's window (since, until, status, missing) after a preview count
- events: the organization's feed; one event with its delivery to each endpoint
- state: an order's compliance rollup, an owner's locks, an entitlement
- organizations: the operator's organizations (search, create), one with its partners, API keys
  and "open as this organization" (a portal link, read-only by default)
"""

from __future__ import annotations

from fastapi import FastAPI

from tidings.console.context import ConsoleContext
from tidings.console.errors import install_error_pages
from tidings.console.security import SecurityHeaders, static_files

CONSOLE_PATH = "/console"


def create_console(context: ConsoleContext) -> FastAPI:
    from tidings.console.pages import (
        audit,
        catalog,
        deliveries,
        endpoint,
        endpoint_form,
        endpoints,
        events,
        home,
        organizations,
        replay,
        sign_in,
        state,
        test_event,
    )

    app = FastAPI(openapi_url=None, docs_url=None, redoc_url=None)
    app.state.console = context
    install_error_pages(app)
    # endpoint_form's /endpoints/new before endpoint's /endpoints/{endpoint_id}
    pages = [sign_in, home, catalog, endpoints, endpoint_form, endpoint, test_event]
    pages += [deliveries, replay, events, state, organizations, audit]
    for module in pages:
        app.include_router(module.router)
    app.mount("/static", static_files(), name="static")
    app.add_middleware(SecurityHeaders, frame_ancestors=context.settings.console_frame_ancestors)
    return app


__all__ = ["CONSOLE_PATH", "ConsoleContext", "create_console"]
