"""The HTTP API of contract section 7 (FastAPI; OpenAPI at /openapi.json, docs at /docs).

`create_app` builds the service layer's `Deps`, keeps it in `app.state.tidings` and includes one
router per concern, each in `tidings.api.routes.<module>`; a route parses, calls an operation of
`tidings.services` and renders (`tidings.api.views`):

- admin: organizations, partners, API keys (platform keys)
- portal: portal links into an organization's browser console (platform keys)
- events: publishing (single and batch), the events feed with ETag, event types
- endpoints: endpoint management, secrets, pause/resume, bulk replay
- deliveries: delivery history with attempts, one event with its deliveries, single replay
- state: the projections (compliance rollup, account locks, entitlements) with ETag
- health: /healthz, /readyz, /metrics
"""

from __future__ import annotations

from fastapi import FastAPI

from tidings import __version__
from tidings.api.context import AppContext, MetricsRenderer
from tidings.api.docs import install_docs
from tidings.api.errors import install_error_handlers
from tidings.api.limits import BodyLimitMiddleware
from tidings.api.openapi import install_openapi
from tidings.catalog import Catalog
from tidings.clock import Clock, system_clock
from tidings.config import Settings
from tidings.netguard import Resolver
from tidings.publishing import EventPublisher
from tidings.rate_limit import TokenBuckets
from tidings.services.deps import Deps, UrlRules
from tidings.store.base import Store


def create_app(
    settings: Settings,
    store: Store,
    catalog: Catalog,
    publisher: EventPublisher,
    *,
    metrics: MetricsRenderer | None = None,
    clock: Clock = system_clock,
    resolver: Resolver | None = None,
) -> FastAPI:
    """`resolver` answers the DNS questions of the endpoint URL rules (None: the system's)."""
    from tidings.api.routes import (
        admin,
        audit,
        deliveries,
        endpoints,
        erasure,
        events,
        health,
        keys,
        portal,
        state,
    )

    app = FastAPI(
        title="tidings",
        version=__version__,
        description=(
            "Self-hosted webhooks for compliance, KYC and onboarding platforms: publish events, "
            "manage endpoints, read delivery history, replay, and poll state."
        ),
        # operation ids are the routes' names (publish_event, list_deliveries, ...): what a
        # generated client calls its functions
        generate_unique_id_function=lambda route: route.name,
        docs_url=None,  # served by install_docs from files in the package, no CDN
        redoc_url=None,
    )
    deps = Deps(
        store=store,
        catalog=catalog,
        publisher=publisher,
        clock=clock,
        urls=UrlRules.from_settings(settings, resolver),
    )
    rate = settings.api_rate_per_second
    limiter = (
        TokenBuckets(rate, max(1.0, settings.api_rate_burst or 2 * rate)) if rate > 0 else None
    )
    app.state.tidings = AppContext(settings=settings, deps=deps, metrics=metrics, limiter=limiter)
    install_error_handlers(app)
    install_docs(app)
    install_openapi(app, catalog)
    for module in (
        health,
        admin,
        keys,
        portal,
        events,
        endpoints,
        deliveries,
        state,
        audit,
        erasure,
    ):
        app.include_router(module.router)
    app.add_middleware(BodyLimitMiddleware, max_bytes=settings.max_body_bytes)
    return app


__all__ = ["AppContext", "create_app"]
