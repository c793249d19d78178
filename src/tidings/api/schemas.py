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
    status: Literal["pending", "succeeded", "failed", "held", "skipped"]
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
