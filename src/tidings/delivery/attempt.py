"""One attempt of one delivery: render its body in the version it is owed (once per event,
format and version, shared by a fan-out), sign the headers, send it through the `Sender`, and
decide what the answer leads to (`decide_outcome`, pure, handed the attempt's start time).

A delivery that cannot be rendered or signed is a failed attempt like any other (it is retried
and may fail for good); it never stops the worker.
"""

from __future__ import annotations

import logging
import random
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass

from tidings import formats, policies
from tidings.catalog import Catalog
from tidings.delivery.sender import Sender, SendResult, describe_error
from tidings.delivery.settings import WorkerSettings
from tidings.models import Attempt, AttemptOutcome, ClaimedDelivery, DeliveryStatus

log = logging.getLogger("tidings.delivery.attempt")

BODY_CACHE_SIZE = 1024


@dataclass(frozen=True, slots=True)
class Finished:
    """One attempt done, waiting to be written."""

    claim: ClaimedDelivery
    outcome: AttemptOutcome
    gone: bool  # the endpoint answered 410


def decide_outcome(
    claim: ClaimedDelivery,
    result: SendResult,
    started_at: float,
    *,
    retry_schedule: Sequence[float],
    jitter_fraction: float,
    rng: random.Random,
) -> Finished:
    """What one attempt leads to (pure, handed the attempt's start time)."""
    delivery = claim.delivery
    number = delivery.attempt_count + 1
    kind = policies.classify_response(result.status_code)
    status = DeliveryStatus.SUCCEEDED
    next_attempt_at: float | None = None
    if kind != "success":
        retry_after = None
        if policies.honours_retry_after(result.status_code):
            retry_after = policies.parse_retry_after(result.retry_after, started_at)
        delay = policies.retry_delay(number, retry_schedule, jitter_fraction, rng, retry_after)
        if delay is None:
            status = DeliveryStatus.FAILED
        else:
            status = DeliveryStatus.PENDING
            next_attempt_at = started_at + delay
    attempt = Attempt(
        delivery_id=delivery.id,
        number=number,
        started_at=started_at,
        duration_ms=result.duration_ms,
        status_code=result.status_code,
        error=result.error,
        response_excerpt=result.response_excerpt,
        series=delivery.series,
    )
    outcome = AttemptOutcome(
        delivery_id=delivery.id,
        endpoint_id=delivery.endpoint_id,
        attempt=attempt,
        status=status,
        next_attempt_at=next_attempt_at,
        success=kind == "success",
        last_status_code=result.status_code,
        last_error=result.error,
    )
    return Finished(claim=claim, outcome=outcome, gone=kind == "gone")


class Attempter:
    """Makes attempts for one worker: renders, signs, sends, decides (see the module
    docstring)."""

    def __init__(
        self,
        catalog: Catalog,
        sender: Sender,
        settings: WorkerSettings,
        rng: random.Random,
    ) -> None:
        self._catalog = catalog
        self._sender = sender
        self._retry_schedule = settings.retry_schedule
        self._jitter_fraction = settings.jitter_fraction
        self._rng = rng
        self._bodies: OrderedDict[tuple[str, str, str, int], bytes] = OrderedDict()

    async def send(
        self, claim: ClaimedDelivery, now: float, trace_headers: dict[str, str] | None = None
    ) -> SendResult:
        """Render, sign and send one attempt that starts at `now`; never raises but for
        cancellation. `trace_headers` (traceparent, tracestate) go out unsigned, beside the
        endpoint's own headers."""
        delivery, event, endpoint = claim.delivery, claim.event, claim.endpoint
        try:
            version = delivery.schema_version or event.schema_version
            body = self.body(claim, version)
            headers = formats.sign_headers(
                endpoint.format,
                event=event,
                body=body,
                delivery_id=delivery.id,
                attempt=delivery.attempt_count + 1,
                secrets=endpoint.valid_secrets(now),
                now=now,
                extra_headers=endpoint.headers,
                schema_version=version,
                sequence=delivery.sequence,
                previous_event_id=delivery.previous_event_id,
            )
        except Exception as exc:  # a delivery that cannot be rendered is a failed attempt
            log.warning(
                "delivery not rendered",
                extra={
                    "action": "delivery.render_failed",
                    "delivery_id": delivery.id,
                    "error": describe_error(exc),
                },
            )
            return SendResult(None, describe_error(exc), None, 0.0)
        if trace_headers:
            headers = {**headers, **trace_headers}
        return await self._sender.send(endpoint.url, body, headers)

    def decide(self, claim: ClaimedDelivery, result: SendResult, started_at: float) -> Finished:
        """`decide_outcome` with this worker's retry schedule, jitter and random source."""
        return decide_outcome(
            claim,
            result,
            started_at,
            retry_schedule=self._retry_schedule,
            jitter_fraction=self._jitter_fraction,
            rng=self._rng,
        )

    def body(self, claim: ClaimedDelivery, version: int) -> bytes:
        """The body bytes, rendered once per (event, format, version) and shared by a fan-out."""
        event, fmt = claim.event, claim.endpoint.format
        key = (event.organization_id, event.id, fmt, version)
        body = self._bodies.get(key)
        if body is not None:
            self._bodies.move_to_end(key)
            return body
        data = event.data
        if version != event.schema_version:
            data = self._catalog.convert(event.type, event.data, event.schema_version, version)
        body = formats.render_body(fmt, event=event, data=data, schema_version=version)
        self._bodies[key] = body
        while len(self._bodies) > BODY_CACHE_SIZE:
            self._bodies.popitem(last=False)
        return body

    async def close(self) -> None:
        """Close the sender (its connections)."""
        await self._sender.close()


__all__ = ["BODY_CACHE_SIZE", "Attempter", "Finished", "decide_outcome"]
