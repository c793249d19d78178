"""OpenTelemetry tracing (issue 23, observability), with the SDK's in-memory exporter: one span
per publish (a child of the caller's trace), per claim batch and per attempt (a child of the
claim that brought it), with the event, endpoint and delivery ids; an endpoint that asks for it
receives the attempt's traceparent; off, nothing is traced and no header goes out."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from tests.integration.delivery.helpers import (
    new_endpoint,
    new_org,
    real_catalog,
    running_receiver,
    running_worker,
    status_changed,
)
from tidings import tracing
from tidings.publishing import Publisher
from tidings.store.base import Store


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracing.use(provider)
    try:
        yield exporter
    finally:
        tracing.disable()


def _named(spans: tuple[ReadableSpan, ...], name: str) -> list[ReadableSpan]:
    return [s for s in spans if s.name == name]


async def test_a_delivery_is_traced_from_publish_to_attempt(
    store: Store, spans: InMemorySpanExporter
) -> None:
    catalog = real_catalog()
    publisher = Publisher(store, catalog)
    org = await new_org(store)
    async with running_receiver() as rx:
        traced = await new_endpoint(store, org, rx.url("/traced"), trace_context=True)
        plain = await new_endpoint(store, org, rx.url("/plain"))
        caller = tracing.tracer().start_span("caller")  # a request that carries a trace
        from opentelemetry import trace

        with trace.use_span(caller, end_on_exit=True):
            result = await publisher.publish(status_changed(org))
        async with running_worker(store, catalog, publisher):
            await rx.wait_for(lambda: len(rx.received) >= 2, what="both deliveries")
    finished = spans.get_finished_spans()
    event_id = result.event.id

    (publish,) = _named(finished, "tidings.publish")
    assert (
        publish.parent is not None and publish.parent.span_id == caller.get_span_context().span_id
    )
    assert publish.context.trace_id == caller.get_span_context().trace_id
    assert publish.attributes is not None
    assert publish.attributes["tidings.event_id"] == event_id
    assert publish.attributes["tidings.organization_id"] == org
    assert publish.attributes["tidings.event_type"] == "compliance.status_changed"

    attempts = _named(finished, "tidings.attempt")
    assert len(attempts) == 2
    claims = {s.context.span_id: s for s in _named(finished, "tidings.claim")}
    by_endpoint = {}
    for attempt in attempts:
        assert attempt.kind == SpanKind.CLIENT
        assert attempt.attributes is not None
        assert attempt.attributes["tidings.event_id"] == event_id
        assert str(attempt.attributes["tidings.delivery_id"]).startswith("dlv_")
        assert attempt.attributes["tidings.attempt"] == 1
        assert attempt.attributes["http.response.status_code"] == 200
        # the parent is the claim batch that brought the delivery, in the same trace
        assert attempt.parent is not None and attempt.parent.span_id in claims
        claim = claims[attempt.parent.span_id]
        assert claim.context.trace_id == attempt.context.trace_id
        assert claim.attributes is not None and claim.attributes["tidings.claim.claimed"] in range(
            1, 201
        )
        by_endpoint[attempt.attributes["tidings.endpoint_id"]] = attempt
    assert set(by_endpoint) == {traced.id, plain.id}

    # the endpoint that asked gets the attempt's own trace context; the other gets none
    (got,) = rx.at("/traced")
    span = by_endpoint[traced.id].context
    version, trace_id, span_id, flags = got.headers["traceparent"].split("-")
    assert (version, trace_id, span_id) == ("00", f"{span.trace_id:032x}", f"{span.span_id:016x}")
    assert int(flags, 16) & 1  # sampled
    (other,) = rx.at("/plain")
    assert "traceparent" not in {k.lower() for k in other.headers}


async def test_a_failed_attempt_is_an_error_span(store: Store, spans: InMemorySpanExporter) -> None:
    from aiohttp import web

    catalog = real_catalog()
    publisher = Publisher(store, catalog)
    org = await new_org(store)
    async with running_receiver() as rx:

        async def down(request: web.Request, n: int) -> web.StreamResponse:
            return web.Response(status=503)

        await new_endpoint(store, org, rx.on("/down", down))
        async with running_worker(store, catalog, publisher, retry_schedule=(60.0,)):
            await publisher.publish(status_changed(org))
            await rx.wait_for(lambda: len(rx.received) >= 1, what="an attempt")
    (attempt,) = _named(spans.get_finished_spans(), "tidings.attempt")
    assert attempt.attributes is not None
    assert attempt.attributes["http.response.status_code"] == 503
    assert not attempt.status.is_ok


async def test_off_nothing_is_traced_and_no_header_goes_out(store: Store) -> None:
    assert not tracing.enabled
    catalog = real_catalog()
    publisher = Publisher(store, catalog)
    org = await new_org(store)
    async with running_receiver() as rx:
        await new_endpoint(store, org, rx.url("/traced"), trace_context=True)
        async with running_worker(store, catalog, publisher):
            await publisher.publish(status_changed(org))
            await rx.wait_for(lambda: len(rx.received) >= 1, what="the delivery")
    assert "traceparent" not in {k.lower() for k in rx.received[0].headers}


@pytest.mark.parametrize(
    ("env", "on"),
    [
        ({}, False),
        ({"OTEL_TRACES_EXPORTER": "otlp"}, True),
        ({"OTEL_TRACES_EXPORTER": "none", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://x"}, False),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318"}, True),
        ({"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://127.0.0.1:4318/v1/traces"}, True),
        ({"OTEL_SDK_DISABLED": "true", "OTEL_TRACES_EXPORTER": "otlp"}, False),
    ],
)
def test_tracing_is_off_unless_the_otel_variables_ask(env: dict[str, str], on: bool) -> None:
    assert tracing.wanted(env) is on
