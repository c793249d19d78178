"""OpenTelemetry tracing (opentelemetry-sdk, the OTLP exporter): off unless the standard OTEL_*
variables ask for it, and then a span for each publish, each claim batch and each attempt.

On when `OTEL_TRACES_EXPORTER` names an exporter (`otlp`, `console`) or an OTLP endpoint is set
(`OTEL_EXPORTER_OTLP_ENDPOINT`, `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`); `OTEL_SDK_DISABLED=true`
or `OTEL_TRACES_EXPORTER=none` keeps it off. Everything else (service name, sampler, headers,
batch sizes) is the SDK's own reading of its variables.

The spans:
- `tidings.publish` (one event or a batch): the event id(s), organization and type; a child of
  the caller's trace when the request carries a W3C `traceparent`;
- `tidings.claim` (one claim batch of a worker): how many were asked for and claimed;
- `tidings.attempt` (one HTTP attempt, kind CLIENT), a child of the claim that brought its
  delivery: event, endpoint and delivery ids, the attempt number, the status code or error.
  An endpoint with `traceContext: true` receives the attempt's `traceparent` (and
  `tracestate`) headers, so its own spans join the trace.
When tracing is off, `enabled` is False and the hot paths test that flag before anything else:
no span objects, no context switches.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Mapping
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import propagate, trace
from opentelemetry.trace import Span, SpanKind, Status, StatusCode, Tracer

TRACER_NAME = "tidings"
ATTR_EVENT_ID = "tidings.event_id"
ATTR_EVENT_TYPE = "tidings.event_type"
ATTR_ORGANIZATION_ID = "tidings.organization_id"
ATTR_ENDPOINT_ID = "tidings.endpoint_id"
ATTR_DELIVERY_ID = "tidings.delivery_id"
ATTR_ATTEMPT = "tidings.attempt"

enabled = False
_tracer: Tracer = trace.get_tracer(TRACER_NAME)
_provider: Any = None


def wanted(env: Mapping[str, str] | None = None) -> bool:
    """Whether the OTEL_* variables ask for traces."""
    e = os.environ if env is None else env
    if e.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return False
    exporter = e.get("OTEL_TRACES_EXPORTER", "").strip().lower()
    if exporter:
        return exporter != "none"
    return bool(e.get("OTEL_EXPORTER_OTLP_ENDPOINT") or e.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"))


def configure_from_env(env: Mapping[str, str] | None = None) -> bool:
    """Set up the SDK's tracer provider with the exporter the variables name; answers whether
    tracing is now on. Called once per process, at start."""
    if not wanted(env):
        return False
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import (
        BatchSpanProcessor,
        ConsoleSpanExporter,
        SpanExporter,
    )

    e = os.environ if env is None else env
    resource = Resource.create(
        {"service.name": e.get("OTEL_SERVICE_NAME") or "tidings"}
    )  # OTEL_RESOURCE_ATTRIBUTES are merged in by Resource.create
    provider = TracerProvider(resource=resource)
    names = [n.strip() for n in e.get("OTEL_TRACES_EXPORTER", "otlp").lower().split(",")]
    for name in names:
        exporter: SpanExporter
        if name == "console":
            exporter = ConsoleSpanExporter()
        else:
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

            exporter = OTLPSpanExporter()
        provider.add_span_processor(BatchSpanProcessor(exporter))
    use(provider)
    return True


def use(provider: Any) -> None:
    """Trace through `provider` from now on (tests hand one with an in-memory exporter)."""
    global enabled, _tracer, _provider
    _provider = provider
    _tracer = provider.get_tracer(TRACER_NAME)
    enabled = True


def disable() -> None:
    global enabled, _tracer, _provider
    enabled = False
    _provider = None
    _tracer = trace.get_tracer(TRACER_NAME)


def shutdown() -> None:
    """Export what is still buffered (at the process's end)."""
    if _provider is not None:
        _provider.shutdown()
    disable()


def tracer() -> Tracer:
    return _tracer


@contextlib.contextmanager
def caller_context(headers: Mapping[str, str]) -> Iterator[None]:
    """Within the block, the caller's trace (W3C `traceparent`/`tracestate` request headers) is
    the current one, so a publish span becomes its child. Nothing when tracing is off or the
    request carries no trace."""
    if not enabled or "traceparent" not in headers:
        yield
        return
    token = otel_context.attach(
        propagate.extract({k: headers[k] for k in ("traceparent", "tracestate") if k in headers})
    )
    try:
        yield
    finally:
        otel_context.detach(token)


@contextlib.contextmanager
def publish_span(batch: bool, parent: otel_context.Context | None = None) -> Iterator[Span]:
    """The span of one publish call (the current context's child, or `parent`'s); what was
    published is added by `published`."""
    with _tracer.start_as_current_span(
        "tidings.publish_batch" if batch else "tidings.publish",
        context=parent,
        kind=SpanKind.INTERNAL,
    ) as span:
        yield span


def published(span: Span, events: list[Any]) -> None:
    """Name what a publish stored on its span: the event's id, type and organization (one
    event), or how many (a batch)."""
    span.set_attribute("tidings.events", len(events))
    if len(events) == 1:
        event = events[0]
        span.set_attribute(ATTR_EVENT_ID, event.id)
        span.set_attribute(ATTR_EVENT_TYPE, event.type)
        span.set_attribute(ATTR_ORGANIZATION_ID, event.organization_id)
    elif events:
        span.set_attribute("tidings.event_ids", [e.id for e in events[:100]])


def claim_span(began_ns: int, limit: int, worker_id: str, claimed: int | None) -> Span:
    """The (ended) span of one claim that began at `began_ns` and brought `claimed` deliveries
    (None: it failed). Made once the claim has answered, so that an idle worker's empty claims,
    one every poll, leave no span at all."""
    span = _tracer.start_span(
        "tidings.claim",
        kind=SpanKind.INTERNAL,
        start_time=began_ns,
        attributes={"tidings.claim.limit": limit, "tidings.worker_id": worker_id},
    )
    if claimed is None:
        span.set_status(Status(StatusCode.ERROR, "claim failed"))
    else:
        span.set_attribute("tidings.claim.claimed", claimed)
    span.end()
    return span


def start_attempt_span(
    parent: Span | None, event_id: str, endpoint_id: str, delivery_id: str, attempt: int
) -> Span:
    context = trace.set_span_in_context(parent) if parent is not None else None
    return _tracer.start_span(
        "tidings.attempt",
        context=context,
        kind=SpanKind.CLIENT,
        attributes={
            ATTR_EVENT_ID: event_id,
            ATTR_ENDPOINT_ID: endpoint_id,
            ATTR_DELIVERY_ID: delivery_id,
            ATTR_ATTEMPT: attempt,
        },
    )


def end_attempt_span(span: Span, status_code: int | None, error: str | None) -> None:
    if status_code is not None:
        span.set_attribute("http.response.status_code", status_code)
    if error is not None:
        span.set_attribute("error.type", error[:200])
    if error is not None or status_code is None or not 200 <= status_code < 300:
        span.set_status(Status(StatusCode.ERROR))
    span.end()


def trace_headers(span: Span) -> dict[str, str]:
    """`traceparent` (and `tracestate`) naming `span`, for an outgoing request."""
    carrier: dict[str, str] = {}
    propagate.inject(carrier, context=trace.set_span_in_context(span))
    return carrier


__all__ = [
    "caller_context",
    "claim_span",
    "configure_from_env",
    "disable",
    "enabled",
    "end_attempt_span",
    "publish_span",
    "published",
    "shutdown",
    "start_attempt_span",
    "trace_headers",
    "tracer",
    "use",
    "wanted",
]
