"""What the API answers, as pydantic models for the OpenAPI description only (`api.openapi`).

The routes render plain dicts (`api.views`, the services' views) and are not validated against
these on the way out (no cost per request); the schemathesis run of the test suite checks that
every answer matches them, so the description cannot drift from what is sent."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class _Out(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ErrorDetail(BaseModel):
    path: str | None = None
    message: str | None = None


class ErrorInner(BaseModel):
    code: str = Field(examples=["validation_failed"])
    message: str = Field(examples=["$.data.orderId: is required"])
    details: Any = Field(
        default=None,
        description="For validation errors, a list of {path, message}; else any JSON or null.",
    )


class Error(_Out):
    """Every error answer of the API (4xx and 5xx)."""

    error: ErrorInner


class Warning_(BaseModel):
    code: str = Field(examples=["unknown_error_code"])
    path: str
    message: str


class EventOut(_Out):
    """A stored event: its envelope, `createdAt`, and what the catalog flags in it."""

    id: str
    type: str
    schemaVersion: int
    source: Literal["WEB_APP", "API", "SYSTEM"]
    organizationUuid: str
    partnerUuid: str | None
    subject: str | None
    correlationId: str | None = Field(
        description="the platform's id of the request that caused the event (self-echo "
        "filtering), also in the X-Tidings-Correlation-Id header of each delivery"
    )
    attributes: dict[str, Any]
    data: Any = Field(description="null once erased")
    createdAt: str
    erasedAt: str | None = Field(
        description="when its data was erased (POST /v1/events/{id}/erase); null: never"
    )
    warnings: list[Warning_]


class EventPage(_Out):
    items: list[EventOut]
    nextCursor: str | None


class BatchItem(BaseModel):
    """One envelope's answer: `{id, status}` (`created` or `existing`) or `{error}`."""

    id: str | None = None
    status: Literal["created", "existing"] | None = None
    error: ErrorInner | None = None


class BatchOut(_Out):
    results: list[BatchItem]


class BatchIn(BaseModel):
    events: list[dict[str, Any]] = Field(
        min_length=1, max_length=500, description="1 to 500 event envelopes (POST /v1/events)."
    )


class ErrorCodeOut(_Out):
    code: str
    meaning: str
    category: str
    workflows: list[str]
    eventTypes: list[str]
    locksUntil: str | None = None


class ErrorCodeList(_Out):
    items: list[ErrorCodeOut]
    nextCursor: None


class EventTypeVersionOut(BaseModel):
    schemaVersion: int
    schema_: dict[str, Any] = Field(alias="schema")
    examples: list[Any]


class EventTypeOut(_Out):
    type: str
    catalog: str
    format: str
    description: str
    versions: list[EventTypeVersionOut]
    attributes: dict[str, Any] | None = None
    errorCodes: list[ErrorCodeOut] | None = None


class EventTypeList(_Out):
    items: list[EventTypeOut]
    nextCursor: None


class EndpointOut(_Out):
    id: str
    url: str
    status: Literal["active", "paused", "disabled"]
    pauseReason: str | None
    eventTypes: list[str]
    format: str
    partnerIds: list[str] | None
    acceptedSchemaVersions: list[int] | None
    sources: list[str]
    description: str | None
    headers: dict[str, str]
    rateLimitPerSecond: float | None
    traceContext: bool
    filter: dict[str, Any] | None = Field(description="conditions on what an event says")
    recordFiltered: bool
    ordering: Literal["none", "subject"]
    failureStreak: int
    failingSince: str | None
    lastSuccessAt: str | None
    createdAt: str | None
    updatedAt: str | None


class EndpointCreated(EndpointOut):
    secret: str = Field(description="The signing secret, shown once here.")


class EndpointPatched(EndpointOut):
    secret: str | None = Field(
        default=None, description="A new secret, when the change of format needed one."
    )


class EndpointResumed(EndpointOut):
    released: int = Field(description="Held deliveries now on their way.")


class EndpointPage(_Out):
    items: list[EndpointOut]
    nextCursor: str | None


class SecretOut(BaseModel):
    secret: str
    createdAt: str | None
    expiresAt: str | None


class SecretsOut(_Out):
    secret: str | None
    secrets: list[SecretOut]


class ReplayCounts(_Out):
    replayed: int
    missing: int
    skipped: int


class DeliveryOut(_Out):
    id: str
    eventId: str
    endpointId: str
    status: Literal["pending", "succeeded", "failed", "held", "skipped", "queued"] = Field(
        description="queued: an ordered delivery waiting for the earlier ones of its subject"
    )
    schemaVersion: int | None
    attemptCount: int
    nextAttemptAt: str | None
    lastAttemptAt: str | None
    createdAt: str | None
    updatedAt: str | None
    skipReason: str | None
    lastStatusCode: int | None
    lastError: str | None
    series: int
    sequence: int = Field(
        description="the endpoint's number for this delivery (X-Tidings-Sequence): 1, 2, 3 ... "
        "in the order the endpoint's deliveries were stored"
    )
    subject: str | None = Field(description="the event's subject")
    previousEventId: str | None = Field(
        description="the previous event of this subject owed to the endpoint "
        "(X-Tidings-Previous-Event-Id)"
    )
    ordered: bool = Field(
        description="goes out only after the earlier deliveries of its subject settled"
    )


class LedgerEntryOut(BaseModel):
    sequence: int = Field(description="the endpoint's number for the delivery")
    eventId: str
    type: str
    subject: str | None
    deliveryId: str
    status: Literal["pending", "succeeded", "failed", "held", "skipped", "queued"] = Field(
        description="the delivery's status: skipped ones were never owed (not in the digest)"
    )


class LedgerPage(_Out):
    items: list[LedgerEntryOut]
    nextAfter: int | None = Field(
        description="`after` of the next page; null when this page reached the end"
    )
    lastSequence: int = Field(description="the endpoint's highest number when this was read")


class DigestOut(_Out):
    from_: int = Field(alias="from")
    to: int
    count: int = Field(description="deliveries numbered from..to that are not skipped")
    digest: str = Field(
        description="order-independent hash of their event ids: the sum, modulo 2**128, of "
        "the first 16 bytes (big-endian) of each id's SHA-256, as 32 hex digits "
        "(tidings.receiver.digest.event_ids_digest)"
    )
    lastSequence: int = Field(description="the endpoint's highest number when this was read")


class AttemptOut(BaseModel):
    number: int
    series: int
    startedAt: str | None
    durationMs: float
    statusCode: int | None
    error: str | None
    responseExcerpt: str | None


class DeliveryWithAttempts(DeliveryOut):
    attempts: list[AttemptOut]


class DeliveryPage(_Out):
    items: list[DeliveryOut]
    nextCursor: str | None


class EventWithDeliveries(EventOut):
    deliveries: list[DeliveryOut]


class State(BaseModel):
    """A state read (compliance rollup, account locks, entitlement): its fields, `updatedAt` and
    `lastEventId`."""

    model_config = ConfigDict(extra="allow")
    updatedAt: str | None = None
    lastEventId: str | None = None


class StatePage(_Out):
    items: list[State]
    nextCursor: str | None


class OwnerLocks(BaseModel):
    funding_locked: bool | None
    trading_locked: bool | None
    updatedAt: str | None


class OwnerOut(_Out):
    ownerId: str
    owner_type: str | None
    external_id: str | None
    locks: OwnerLocks
    entitlements: list[State]
    entitlementsCursor: str | None


class Ready(_Out):
    status: Literal["ready"]
    schemaVersion: int


class Healthy(_Out):
    status: Literal["ok"]


MODELS: tuple[type[BaseModel], ...] = (
    Error,
    EventOut,
    EventPage,
    BatchOut,
    BatchIn,
    ErrorCodeList,
    EventTypeOut,
    EventTypeList,
    EndpointOut,
    EndpointCreated,
    EndpointPatched,
    EndpointResumed,
    EndpointPage,
    SecretsOut,
    ReplayCounts,
    DeliveryOut,
    DeliveryWithAttempts,
    DeliveryPage,
    EventWithDeliveries,
    State,
    StatePage,
    OwnerOut,
    Ready,
    Healthy,
)
