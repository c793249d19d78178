"""The store's vocabulary: its errors and the small value types its methods take and answer.
No rule and no SQL here (those are `base.Store`'s and the query files')."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from tidings.models import DeliveryStatus, Endpoint, Event, NewDelivery, PortalLink, Projection


class StoreError(Exception):
    """Any failure of the store, with the driver's exception as __cause__."""


class Conflict(StoreError):
    """A uniqueness rule was broken (e.g. a partner that already exists)."""


class NotFound(StoreError):
    """The row the caller named does not exist (in that organization)."""


class PremiseFailed(StoreError):
    """A fast path found that what it was told no longer holds (an event of the publish exists
    already; a projection changed under its lock) and stored nothing: take the plain path."""


class SubscribersChanged(StoreError):
    """`publish` found that the endpoints of these organizations changed since the
    `Subscribers.version` its items were planned with; nothing was stored. Plan again (from
    `subscribed_endpoints`, which now reads them afresh) and publish again."""

    def __init__(self, organization_ids: Sequence[str]) -> None:
        super().__init__(f"the endpoints of {', '.join(organization_ids)} changed")
        self.organization_ids = list(organization_ids)


@dataclass(frozen=True, slots=True)
class Subscribers:
    """An organization's subscribed endpoints as `subscribed_endpoints` knows them. `version`
    is what `publish` checks for items planned from them (`PublishItem.endpoints_version`);
    None when there is no such organization and nothing to check."""

    endpoints: Sequence[Endpoint]
    version: int | None = None


@dataclass(frozen=True, slots=True)
class ProjectionUpdate:
    """Applied by `publish` inside the event's transaction.

    `apply(current)` gets the current projection (or None) and returns the new state dict, or
    None to leave it unchanged (e.g. an out-of-order event). The store then writes state,
    bumps version, and sets updated_at/source_created_at/last_event_id from the event.
    `apply` must be pure: the store may call it on a state it then finds stale, or for an event
    it then finds stored already, and throw the answer away.
    """

    kind: str
    key: str
    apply: Callable[[Projection | None], dict[str, object] | None]


@dataclass(frozen=True, slots=True)
class PublishItem:
    event: Event
    deliveries: Sequence[NewDelivery]
    projections: Sequence[ProjectionUpdate] = ()
    # The Subscribers.version `deliveries` were planned from; None: not checked.
    endpoints_version: int | None = None


@dataclass(frozen=True, slots=True)
class ErasureCounts:
    """What one `Store.erase_events` changed: events whose data went, deliveries that will not
    be sent (they were pending or held), attempts whose response excerpt went, projections
    whose copy of the data went."""

    events: int = 0
    deliveries_stopped: int = 0
    responses_cleared: int = 0
    projections: int = 0

    def as_json(self) -> dict[str, int]:
        """The counts as an audit entry and the API name them."""
        return {
            "events": self.events,
            "deliveriesStopped": self.deliveries_stopped,
            "responsesCleared": self.responses_cleared,
            "projections": self.projections,
        }

    def __add__(self, other: ErasureCounts) -> ErasureCounts:
        return ErasureCounts(
            self.events + other.events,
            self.deliveries_stopped + other.deliveries_stopped,
            self.responses_cleared + other.responses_cleared,
            self.projections + other.projections,
        )


@dataclass(frozen=True, slots=True)
class PublishResult:
    """`event` is what is stored: the new event, or the one stored before under the same id or
    Idempotency-Key (then `created` is False and no delivery or projection was written)."""

    event: Event
    created: bool


@dataclass(frozen=True, slots=True)
class DeliveryFilter:
    endpoint_id: str | None = None
    event_id: str | None = None
    status: DeliveryStatus | None = None
    created_after: float | None = None  # inclusive
    created_before: float | None = None  # exclusive
    event_types: TypeFilter | None = None  # the event's type matches (None or empty: any)


@dataclass(frozen=True, slots=True)
class TypeFilter:
    """Event type patterns compiled for SQL: exact names, and prefixes from `seg.*` patterns
    (prefix includes the trailing dot). Empty both = no filter."""

    exact: tuple[str, ...] = ()
    prefixes: tuple[str, ...] = ()

    @property
    def empty(self) -> bool:
        return not self.exact and not self.prefixes


@dataclass(frozen=True, slots=True)
class MigrationStatus:
    current: int  # the highest version applied (0: none)
    latest: int
    pending: tuple[int, ...] = ()  # versions not applied yet, in order

    @property
    def up_to_date(self) -> bool:
        return not self.pending


@dataclass(frozen=True, slots=True)
class BacklogStats:
    due: int  # pending deliveries whose next_attempt_at <= now
    oldest_due_at: float | None  # smallest next_attempt_at among them


@dataclass(frozen=True, slots=True)
class PortalLinkUse:
    """What `use_portal_link` found: `opened` when this call used the link; otherwise the link
    as it stands (already used, or expired), or None when no link has that token."""

    link: PortalLink | None
    opened: bool


WakeupCallback = Callable[[], None]


@dataclass(frozen=True)
class EndpointBacklog:
    """What one endpoint has waiting, for the per-endpoint gauges of /metrics."""

    organization_id: str
    endpoint_id: str
    pending: int
    held: int
    last_success_at: float | None
    created_at: float


@dataclass(frozen=True, slots=True)
class ProjectionLookup:
    """What `Store.list_projections` narrows a kind's states by (None: any). `owner_id`,
    `trigger_id` and `status` are an entitlement's; `external_id` an owner's; `status`,
    `decision` and `changed_since` (a time, epoch seconds) a compliance rollup's."""

    owner_id: str | None = None
    trigger_id: str | None = None
    external_id: str | None = None
    status: str | None = None
    decision: str | None = None
    changed_since: float | None = None


# Attempt-duration buckets of `endpoint_stats` (upper bounds, ms; the last bucket is "over").
DURATION_BOUNDS_MS: tuple[int, ...] = (10, 50, 100, 250, 500, 1000, 5000)
DURATION_COLUMNS: tuple[str, ...] = (
    *(f"ms_le_{b}" for b in DURATION_BOUNDS_MS),
    f"ms_over_{DURATION_BOUNDS_MS[-1]}",
)


@dataclass(frozen=True, slots=True)
class EndpointHour:
    """One endpoint's attempts in one hour (`hour`: epoch seconds of its start): counts,
    successes (2xx), durations per DURATION_BOUNDS_MS bucket (then over the last bound), and
    the hour's last attempt."""

    endpoint_id: str
    organization_id: str
    hour: float
    attempts: int
    successes: int
    durations: tuple[int, ...]
    last_attempt_at: float
    last_status_code: int | None = None
    last_error: str | None = None
