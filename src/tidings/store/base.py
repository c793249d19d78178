"""The one store interface. Everything that persists goes through it; nothing above the store
imports a database driver or writes SQL. Two implementations: SQLite (embedded default, one
process) and PostgreSQL (any number of API and worker processes).

Conventions
- Every method that reads or changes tenant data takes `organization_id` and is scoped by it,
  except worker-side methods (claim/record/release/purge/metrics) that act across tenants.
- Times are float epoch seconds, passed in by the caller (`now`): the store never reads the clock,
  so tests can inject one.
- Cursors are opaque strings made and read by the store.
- Driver errors are wrapped into `StoreError` subclasses in one place (the implementation).
"""

from __future__ import annotations

import abc
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from tidings.models import (
    ApiKey,
    Attempt,
    AttemptOutcome,
    ClaimedDelivery,
    ConsoleSession,
    Delivery,
    DeliveryStatus,
    Endpoint,
    EndpointHealth,
    EndpointSecret,
    EndpointStatus,
    Event,
    NewDelivery,
    Organization,
    Page,
    Partner,
    PortalLink,
    Projection,
)


class StoreError(Exception):
    """Any failure of the store, with the driver's exception as __cause__."""


class Conflict(StoreError):
    """A uniqueness rule was broken (e.g. a partner that already exists)."""


class NotFound(StoreError):
    """The row the caller named does not exist (in that organization)."""


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
    None when the store reads them afresh each time and there is nothing to check."""

    endpoints: Sequence[Endpoint]
    version: int | None = None


@dataclass(frozen=True, slots=True)
class ProjectionUpdate:
    """Applied by `publish` inside the event's transaction.

    `apply(current)` gets the current projection (or None) and returns the new state dict, or
    None to leave it unchanged (e.g. an out-of-order event). The store then writes state,
    bumps version, and sets updated_at/source_created_at/last_event_id from the event.
    `apply` must be pure: a store may call it on a state it then finds stale, or for an event it
    then finds stored already, and throw the answer away.
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
    current: int
    latest: int

    @property
    def up_to_date(self) -> bool:
        return self.current == self.latest


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


class Store(abc.ABC):
    # ---- lifecycle -------------------------------------------------------------------------
    @abc.abstractmethod
    async def connect(self) -> None: ...

    @abc.abstractmethod
    async def close(self) -> None: ...

    @abc.abstractmethod
    async def migrate(self) -> list[int]:
        """Apply every pending migration in order; answer the versions applied."""

    @abc.abstractmethod
    async def migration_status(self) -> MigrationStatus: ...

    @abc.abstractmethod
    async def ping(self) -> None:
        """Raise StoreError if the database cannot be reached."""

    @abc.abstractmethod
    def add_wakeup_listener(self, callback: WakeupCallback) -> None:
        """Call `callback` (from the event loop) whenever deliveries became due because of a
        commit: publish, resume, replay, release. In-process always; on PostgreSQL also across
        processes via LISTEN/NOTIFY (the store listens once `listen()` was awaited)."""

    @abc.abstractmethod
    async def listen(self) -> None:
        """Start receiving cross-process wake-ups (PostgreSQL LISTEN); no-op on SQLite."""

    # ---- organizations, keys, partners ------------------------------------------------------
    @abc.abstractmethod
    async def create_organization(
        self, org: Organization, first_key: ApiKey, key_hash: str
    ) -> None:
        """Organization and its first key, in one transaction."""

    @abc.abstractmethod
    async def get_organization(self, organization_id: str) -> Organization | None: ...

    @abc.abstractmethod
    async def create_api_key(self, key: ApiKey, key_hash: str) -> None: ...

    @abc.abstractmethod
    async def ensure_platform_key(self, key: ApiKey, key_hash: str) -> None:
        """Insert the platform key with this hash unless one with the same hash exists."""

    @abc.abstractmethod
    async def find_api_key(self, key_hash: str) -> ApiKey | None: ...

    @abc.abstractmethod
    async def create_partner(self, partner: Partner) -> None:
        """Raise Conflict if the organization already has this partner_uuid."""

    @abc.abstractmethod
    async def list_partners(self, organization_id: str) -> list[Partner]: ...

    # ---- endpoints -------------------------------------------------------------------------
    @abc.abstractmethod
    async def create_endpoint(self, endpoint: Endpoint) -> None: ...

    @abc.abstractmethod
    async def get_endpoint(
        self, organization_id: str, endpoint_id: str, *, include_deleted: bool = False
    ) -> Endpoint | None: ...

    @abc.abstractmethod
    async def list_endpoints(
        self, organization_id: str, *, limit: int, cursor: str | None
    ) -> Page[Endpoint]:
        """Not deleted, oldest first."""

    @abc.abstractmethod
    async def list_subscribed_endpoints(self, organization_id: str) -> list[Endpoint]:
        """Every endpoint that can receive deliveries (status active or paused, not deleted)."""

    async def subscribed_endpoints(self, organization_id: str) -> Subscribers:
        """`list_subscribed_endpoints` for planning a publish. A store may answer from memory
        with the version it read them at; `publish` then raises SubscribersChanged for items
        planned from a version that is no longer current."""
        return Subscribers(await self.list_subscribed_endpoints(organization_id))

    @abc.abstractmethod
    async def update_endpoint(self, endpoint: Endpoint) -> None:
        """Write the endpoint's configuration fields (url, event_types, format, partner_ids,
        accepted_schema_versions, sources, description, headers, rate_limit_per_second,
        secrets, updated_at). Status and failure bookkeeping have their own methods."""

    @abc.abstractmethod
    async def delete_endpoint(self, organization_id: str, endpoint_id: str, now: float) -> bool:
        """Soft delete (kept for history); its pending/held deliveries become `failed` with
        last_error "endpoint deleted". False if there was no such endpoint."""

    @abc.abstractmethod
    async def pause_endpoint(
        self, organization_id: str, endpoint_id: str, reason: str, now: float
    ) -> bool:
        """Set status `paused` (only from `active`) and move its pending deliveries to `held`.
        True if this call made the transition (so exactly one caller raises the meta event)."""

    @abc.abstractmethod
    async def resume_endpoint(self, organization_id: str, endpoint_id: str, now: float) -> int:
        """Set status `active`, reset the failure streak, make its held deliveries pending and
        due at `now`. Answers how many deliveries were released."""

    # ---- events (publishing, feed) -----------------------------------------------------------
    @abc.abstractmethod
    async def publish(
        self, items: Sequence[PublishItem], now: float | None = None
    ) -> list[PublishResult]:
        """Store each event with its deliveries and projection updates, in one transaction.
        An event whose (organization, id) or (organization, idempotency_key) exists already
        writes nothing and answers the stored one with created=False.

        `now` is the time of the call: new deliveries get created_at/updated_at = now and, when
        pending, next_attempt_at = now; projections get updated_at = now. It defaults to each
        event's created_at (which a publisher may have set in the past, so pass it).

        Raises SubscribersChanged, having stored nothing, when an item's `endpoints_version`
        is no longer its organization's."""

    @abc.abstractmethod
    async def get_event(self, organization_id: str, event_id: str) -> Event | None: ...

    @abc.abstractmethod
    async def get_events(self, organization_id: str, event_ids: Sequence[str]) -> dict[str, Event]:
        """The organization's events among `event_ids`, by id (unknown ids are left out)."""

    @abc.abstractmethod
    async def list_events(
        self, organization_id: str, *, after: str | None, types: TypeFilter, limit: int
    ) -> Page[Event]:
        """Oldest first (by seq) after the cursor. next_cursor is always the cursor after the
        last item (or the given cursor when the page is empty), so a feed can resume."""

    @abc.abstractmethod
    async def events_page_fingerprint(
        self, organization_id: str, *, after: str | None, types: TypeFilter, limit: int
    ) -> tuple[int, int]:
        """(count, last seq) of the page list_events would answer, without loading it: the
        basis of the feed's ETag."""

    # ---- deliveries: worker side --------------------------------------------------------------
    @abc.abstractmethod
    async def claim_due(
        self,
        worker_id: str,
        now: float,
        lease_seconds: float,
        limit: int,
        due_from: float = -math.inf,
    ) -> list[ClaimedDelivery]:
        """Lease up to `limit` pending deliveries due at `now` whose lease is free or expired,
        earliest due first, with their event and endpoint (PostgreSQL: FOR UPDATE SKIP LOCKED).
        Only deliveries due at or after `due_from` are looked at: a claimer that knows nothing
        earlier can be claimable passes its floor, so the scan skips what was already sent."""

    @abc.abstractmethod
    async def record_outcomes(
        self, worker_id: str, outcomes: Sequence[AttemptOutcome], now: float
    ) -> list[EndpointHealth]:
        """In one transaction: insert each attempt, update each delivery (status, attempt_count,
        next_attempt_at, last_*; lease cleared) if `worker_id` still holds its lease, and update
        each endpoint's failure bookkeeping atomically (success: streak 0, failing_since NULL,
        last_success_at=now; failure: streak+1, failing_since=COALESCE(failing_since, now)).
        If the endpoint was paused meanwhile, a PENDING outcome becomes HELD.
        Answers the health of every endpoint touched, after the update."""

    @abc.abstractmethod
    async def release(
        self,
        worker_id: str,
        delivery_ids: Sequence[str],
        next_attempt_at: float | Sequence[float],
    ) -> int:
        """Give leased deliveries back without an attempt (shutdown, per-endpoint deferral),
        due at `next_attempt_at`: one time for all of them, or one per delivery."""

    @abc.abstractmethod
    async def backlog_stats(self, now: float) -> BacklogStats: ...

    @abc.abstractmethod
    async def count_deliveries_by_status(self) -> dict[str, int]: ...

    @abc.abstractmethod
    async def count_endpoints_by_status(self) -> dict[str, int]: ...

    @abc.abstractmethod
    async def worst_endpoints(self, limit: int) -> list[tuple[str, str, int]]:
        """(organization_id, endpoint_id, failure_streak) with the longest streaks, > 0."""

    @abc.abstractmethod
    async def purge_history(self, cutoff: float, batch_size: int) -> int:
        """Delete up to `batch_size` finished deliveries (succeeded, failed, skipped) created
        before `cutoff` with their attempts, and events created before `cutoff` that have no
        delivery left pending/held. Answers rows deleted; callers loop until 0."""

    # ---- deliveries: history and replay -------------------------------------------------------
    @abc.abstractmethod
    async def get_delivery(self, organization_id: str, delivery_id: str) -> Delivery | None: ...

    @abc.abstractmethod
    async def list_deliveries(
        self, organization_id: str, flt: DeliveryFilter, *, limit: int, cursor: str | None
    ) -> Page[Delivery]:
        """Newest first."""

    @abc.abstractmethod
    async def list_attempts(self, organization_id: str, delivery_id: str) -> list[Attempt]:
        """Oldest first."""

    @abc.abstractmethod
    async def replay_delivery(
        self, organization_id: str, delivery_id: str, now: float
    ) -> Delivery | None:
        """Start a new attempt series: series+1, attempt_count 0, status pending, due now,
        lease cleared. None if no such delivery."""

    @abc.abstractmethod
    async def replay_endpoint_deliveries(
        self,
        organization_id: str,
        endpoint_id: str,
        *,
        since: float,
        until: float | None,
        statuses: Sequence[DeliveryStatus],
        now: float,
    ) -> int:
        """replay_delivery for every delivery of the endpoint created in [since, until) whose
        status is in `statuses`. Answers how many."""

    @abc.abstractmethod
    async def revive_skipped_deliveries(
        self,
        organization_id: str,
        endpoint_id: str,
        revivals: Sequence[tuple[str, int]],
        now: float,
    ) -> int:
        """For each (delivery_id, schema_version): a `skipped` delivery of the endpoint becomes
        sendable in that version (replay with missing=true after the endpoint's accepted
        versions changed): skip_reason cleared, new series, attempt_count 0, pending due now
        (held if the endpoint is paused). Deleted endpoints are left alone. Answers how many."""

    @abc.abstractmethod
    async def events_without_delivery(
        self,
        organization_id: str,
        endpoint_id: str,
        *,
        since: float,
        until: float | None,
        types: TypeFilter,
        limit: int,
    ) -> list[Event]:
        """Events of the window (by created_at) that match `types` and have no delivery to
        the endpoint (for replay with missing=true)."""

    @abc.abstractmethod
    async def add_deliveries(
        self, organization_id: str, pairs: Sequence[tuple[str, NewDelivery]], now: float
    ) -> int:
        """Create deliveries (event_id, delivery) for existing events; skips pairs whose
        (event, endpoint) already has a delivery. Answers how many were created."""

    # ---- projections ---------------------------------------------------------------------------
    @abc.abstractmethod
    async def get_projection(
        self, organization_id: str, kind: str, key: str
    ) -> Projection | None: ...

    # ---- endpoint secrets ---------------------------------------------------------------------
    @abc.abstractmethod
    async def set_endpoint_secrets(
        self, organization_id: str, endpoint_id: str, secrets: Sequence[EndpointSecret], now: float
    ) -> None: ...

    # ---- console sessions and portal links ------------------------------------------------------
    # Looked up by the SHA-256 of their token; deleting the key behind one deletes it.
    @abc.abstractmethod
    async def create_console_session(self, session: ConsoleSession, token_hash: str) -> None: ...

    @abc.abstractmethod
    async def find_console_session(self, token_hash: str, now: float) -> ConsoleSession | None:
        """The session with this token hash, unless it has expired at `now`."""

    @abc.abstractmethod
    async def delete_console_session(self, token_hash: str) -> bool:
        """Sign-out: the session is gone for every process. False if there was none."""

    @abc.abstractmethod
    async def create_portal_link(self, link: PortalLink, token_hash: str) -> None: ...

    @abc.abstractmethod
    async def use_portal_link(self, token_hash: str, now: float) -> PortalLinkUse:
        """Mark the link used at `now` if it is unused and unexpired (one statement, so of two
        concurrent opens exactly one succeeds)."""

    @abc.abstractmethod
    async def purge_console_sessions(self, cutoff: float) -> int:
        """Delete sessions and portal links that expired before `cutoff`. Answers how many."""


__all__ = [
    "BacklogStats",
    "Conflict",
    "DeliveryFilter",
    "EndpointStatus",
    "MigrationStatus",
    "NotFound",
    "PortalLinkUse",
    "ProjectionUpdate",
    "PublishItem",
    "PublishResult",
    "Store",
    "StoreError",
    "TypeFilter",
]
