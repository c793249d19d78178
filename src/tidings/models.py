"""The domain records every room shares: organizations, keys, partners, endpoints, events,
deliveries, attempts, projections, console sessions and portal links. Plain dataclasses; the
store maps rows to them.

Times are float seconds since the Unix epoch (UTC) everywhere inside tidings; the API renders
them as RFC 3339 strings. JSON-ish fields hold plain Python values (dict/list/str/...).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Any, Generic, TypeVar

T = TypeVar("T")

JSON = Any


class KeyKind(StrEnum):
    PLATFORM = "platform"
    ORGANIZATION = "organization"


class EndpointStatus(StrEnum):
    ACTIVE = "active"
    PAUSED = "paused"
    DISABLED = "disabled"


class DeliveryStatus(StrEnum):
    PENDING = "pending"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    HELD = "held"  # endpoint paused: kept, not attempted, sent on resume
    SKIPPED = "skipped"  # never sendable (e.g. schema_version_not_accepted); has skip_reason
    # an ordered delivery waiting for the earlier ones of its endpoint and subject (issue 25)
    QUEUED = "queued"


class Ordering(StrEnum):
    """An endpoint's delivery order (issue 25): `subject` sends the deliveries of one subject
    one at a time, in sequence order."""

    NONE = "none"
    SUBJECT = "subject"


ORDERINGS = frozenset(o.value for o in Ordering)


class Source(StrEnum):
    API = "API"
    WEB_APP = "WEB_APP"
    SYSTEM = "SYSTEM"


SOURCES = frozenset(s.value for s in Source)
# An endpoint's sources unless it says otherwise: API events are not echoed (contract section 5).
DEFAULT_SOURCES: tuple[str, ...] = (Source.WEB_APP.value, Source.SYSTEM.value)


@dataclass(frozen=True, slots=True)
class Organization:
    id: str  # the organizationUuid
    name: str
    created_at: float


class KeyScope(StrEnum):
    """What a key may do (issue 22): platform keys `admin` (everything) or `publish` (publish
    only); organization keys `write` (everything of its organization) or `read` (reads only)."""

    ADMIN = "admin"
    PUBLISH = "publish"
    WRITE = "write"
    READ = "read"


SCOPES_OF_KIND = {
    "platform": (KeyScope.ADMIN, KeyScope.PUBLISH),
    "organization": (KeyScope.WRITE, KeyScope.READ),
}


@dataclass(frozen=True, slots=True)
class ApiKey:
    """A key's record; the key itself is never stored (only its hash, beside this)."""

    id: str
    kind: KeyKind
    organization_id: str | None  # None for platform keys
    created_at: float
    name: str | None = None
    prefix: str | None = None  # its first characters, shown to tell keys apart
    scope: KeyScope | None = None  # None: the kind's full powers (admin / write)
    last_used_at: float | None = None  # written at most once a minute
    expires_at: float | None = None
    revoked_at: float | None = None

    @property
    def effective_scope(self) -> KeyScope:
        if self.scope is not None:
            return self.scope
        return KeyScope.ADMIN if self.kind == KeyKind.PLATFORM else KeyScope.WRITE

    def usable_at(self, now: float) -> bool:
        return self.revoked_at is None and (self.expires_at is None or now < self.expires_at)


@dataclass(frozen=True, slots=True)
class Partner:
    organization_id: str
    partner_uuid: str
    name: str
    created_at: float


@dataclass(frozen=True, slots=True)
class EndpointSecret:
    """One signing secret. `expires_at` is None for the current secret; a rotated-out secret
    keeps signing until `expires_at`."""

    secret: str
    created_at: float
    expires_at: float | None = None

    def signs_at(self, now: float) -> bool:
        return self.expires_at is None or self.expires_at > now

    def rotated_out(self, now: float, grace_seconds: float) -> EndpointSecret | None:
        """This secret once a new one replaces it at `now`: it keeps signing for
        `grace_seconds` (never longer than it already would), or not at all."""
        limit = now + grace_seconds
        expires = limit if self.expires_at is None else min(self.expires_at, limit)
        if grace_seconds <= 0 or expires <= now:
            return None
        return replace(self, expires_at=expires)


@dataclass(frozen=True, slots=True)
class Endpoint:
    id: str
    organization_id: str
    url: str
    event_types: tuple[str, ...]
    format: str  # "novatrade" | "dlt" | "standard"
    secrets: tuple[EndpointSecret, ...]
    status: EndpointStatus = EndpointStatus.ACTIVE
    partner_ids: tuple[str, ...] | None = None
    accepted_schema_versions: tuple[int, ...] | None = None  # None: newest of each type
    sources: tuple[str, ...] = DEFAULT_SOURCES
    description: str | None = None
    headers: dict[str, str] = field(default_factory=dict)
    rate_limit_per_second: float | None = None
    # send the attempt's W3C trace context (traceparent) when tracing is on
    trace_context: bool = False
    # conditions on what an event says (issue 26 item 8); the events it refuses get no delivery,
    # or a skipped one (reason "filtered") with record_filtered
    filter: EventFilter | None = None
    record_filtered: bool = False
    ordering: str = Ordering.NONE.value
    pause_reason: str | None = None
    failure_streak: int = 0  # consecutive failed attempts
    failing_since: float | None = None  # first failure after the last success
    last_success_at: float | None = None
    created_at: float = 0.0
    updated_at: float = 0.0
    deleted_at: float | None = None

    def valid_secrets(self, now: float) -> tuple[str, ...]:
        """Every secret that signs at `now`: the current one first, then those in grace."""
        return tuple(s.secret for s in self.secrets if s.signs_at(now))


@dataclass(frozen=True, slots=True)
class EventFilter:
    """An endpoint's filter (issue 26 item 8; `tidings.filters` checks and compiles it): `spec`
    as given (stored and shown), the `paths` it reads, and `test`, compiled."""

    spec: dict[str, Any]
    paths: tuple[str, ...]
    test: Callable[[Event], bool] = field(compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class Event:
    """One published fact, stored once with its envelope. `id` is unique per organization."""

    id: str
    organization_id: str
    type: str
    schema_version: int
    source: str
    created_at: float
    data: JSON
    partner_uuid: str | None = None
    subject: str | None = None
    attributes: dict[str, JSON] = field(default_factory=dict)
    idempotency_key: str | None = None
    seq: int = 0  # store-assigned, monotonically increasing; the feed cursor
    erased_at: float | None = None  # its data erased (issue 22 section 4): `data` is None
    # set by the platform from the request that caused the event (issue 26 item 7)
    correlation_id: str | None = None


@dataclass(frozen=True, slots=True)
class NewDelivery:
    """A delivery to create while publishing an event (same transaction)."""

    id: str
    endpoint_id: str
    status: DeliveryStatus  # PENDING, HELD (paused endpoint) or SKIPPED
    schema_version: int | None  # the version to render; None when skipped
    skip_reason: str | None = None
    is_meta: bool = False  # delivering a webhook.* meta event (never raises another)


@dataclass(frozen=True, slots=True)
class Delivery:
    id: str
    organization_id: str
    event_id: str
    endpoint_id: str
    status: DeliveryStatus
    schema_version: int | None
    attempt_count: int
    next_attempt_at: float | None
    created_at: float
    updated_at: float
    skip_reason: str | None = None
    is_meta: bool = False
    lease_owner: str | None = None
    lease_expires_at: float | None = None
    last_attempt_at: float | None = None
    last_status_code: int | None = None
    last_error: str | None = None
    # series: 1 for the original; each replay starts a new series and resets attempt_count
    series: int = 1
    seq: int = 0
    # issue 25: the endpoint's number for it (X-Tidings-Sequence), the event's subject, the
    # previous event of that subject owed to the endpoint, and whether it waits for that one
    sequence: int = 0
    subject: str | None = None
    previous_event_id: str | None = None
    ordered: bool = False


@dataclass(frozen=True, slots=True)
class BlockedSubject:
    """An ordered subject held back (issue 25): `waiting` queued deliveries, the oldest stored
    at `waiting_since`, behind the pending delivery `delivery_id` that keeps failing."""

    delivery_id: str
    organization_id: str
    endpoint_id: str
    subject: str
    event_id: str
    series: int
    attempts: int
    last_status_code: int | None
    last_error: str | None
    waiting: int
    waiting_since: float


@dataclass(frozen=True, slots=True)
class Attempt:
    delivery_id: str
    number: int  # 1-based within the delivery's life (keeps counting across replays)
    started_at: float
    duration_ms: float
    status_code: int | None
    error: str | None  # error class and message, e.g. "TimeoutError: no answer in 15 s"
    response_excerpt: str | None
    series: int = 1


@dataclass(frozen=True, slots=True)
class ClaimedDelivery:
    """What the worker needs to send one delivery, loaded in the claim's batch."""

    delivery: Delivery
    event: Event
    endpoint: Endpoint


@dataclass(frozen=True, slots=True)
class AttemptOutcome:
    """What the worker decided after one attempt; the store writes a batch of them at once.

    status: SUCCEEDED (done), PENDING (retry at next_attempt_at) or FAILED (out of attempts).
    success says whether the endpoint answered 2xx: it resets or grows the endpoint's failure
    streak (the store does that atomically, so several workers can count together).
    """

    delivery_id: str
    endpoint_id: str
    attempt: Attempt
    status: DeliveryStatus
    next_attempt_at: float | None
    success: bool
    last_status_code: int | None = None
    last_error: str | None = None


@dataclass(frozen=True, slots=True)
class EndpointHealth:
    """An endpoint's failure bookkeeping right after a batch of outcomes was written."""

    endpoint_id: str
    organization_id: str
    status: EndpointStatus
    failure_streak: int
    failing_since: float | None
    last_success_at: float | None


@dataclass(frozen=True, slots=True)
class Projection:
    """A piece of state derived from events: kind is "compliance", "locks" or "entitlement"."""

    organization_id: str
    kind: str
    key: str
    state: dict[str, JSON]
    version: int  # bumped on every change; part of the ETag
    updated_at: float
    source_created_at: float  # createdAt of the newest event applied (out-of-order guard)
    last_event_id: str


@dataclass(frozen=True, slots=True)
class ConsoleSession:
    """A browser session of the console. It acts with the powers of `kind` within
    `organization_id` (None for a platform session); `key_id` is the key behind it: the key
    signed in with, or the platform key that minted the portal link it was opened from."""

    id: str
    key_id: str
    kind: KeyKind
    organization_id: str | None
    read_only: bool
    created_at: float
    expires_at: float


@dataclass(frozen=True, slots=True)
class PortalLink:
    """A single-use link into one organization's console, minted with a platform key."""

    id: str
    organization_id: str
    key_id: str
    read_only: bool
    created_at: float
    expires_at: float
    used_at: float | None = None


@dataclass(frozen=True, slots=True)
class AuditEntry:
    """One line of the audit trail (issue 22 section 3): who (`actor_key_id`, and the console
    session acting with it), where from (`client_address`), in which organization (None: a
    platform-wide action), did what (`action`, e.g. "endpoint.update") to what (`target_id`),
    with which changed fields (`changes`: names to non-secret values; never a secret)."""

    id: str
    at: float
    organization_id: str | None
    actor_key_id: str
    action: str
    target_id: str | None
    changes: dict[str, JSON] = field(default_factory=dict)
    actor_session_id: str | None = None
    client_address: str | None = None


@dataclass(frozen=True, slots=True)
class Page(Generic[T]):
    items: list[T]
    next_cursor: str | None
