"""The one store: every rule about what persists, once, over a narrow connector per dialect
(`connector.Connector`: SQLite or PostgreSQL). Nothing above it imports a driver or writes
SQL; the SQL is in `queries/<dialect>.sql`, one named block per statement, the same names in
both dialects.

Conventions
- Every method that reads or changes tenant data takes `organization_id` and is scoped by it,
  except worker-side methods (claim/record/release/purge/metrics) that act across tenants.
- Times are float epoch seconds, passed in by the caller (`now`): the store never reads the
  clock, so tests can inject one.
- Cursors are opaque strings made and read by the store.
- Driver errors arrive as `StoreError` subclasses (the connectors map them).
- Wake-ups: whenever a commit makes deliveries due (publish, resume, replay, release), the
  store calls this process's wake-up listeners and has the connector tell other processes.

Fast paths: where PostgreSQL answers in one round trip what the plain path does in several
(`sql.FAST_PATHS`: publishing, recording outcomes), the store takes that path when the
connector's dialect has it. Each is the same operation as its plain path, which stays the
authority (and the way on SQLite); `tests/integration/store/test_fast_paths.py` runs the same
cases through both.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Container, Sequence
from dataclasses import replace
from typing import Any, TypeVar

from tidings.models import (
    ApiKey,
    Attempt,
    AttemptOutcome,
    AuditEntry,
    BlockedSubject,
    ClaimedDelivery,
    ConsoleSession,
    Delivery,
    DeliveryStatus,
    Endpoint,
    EndpointHealth,
    EndpointSecret,
    EndpointStatus,
    Event,
    KeyKind,
    KeyScope,
    NewDelivery,
    Ordering,
    Organization,
    Page,
    Partner,
    PortalLink,
    Projection,
)
from tidings.receiver.ledger import LedgerEntry
from tidings.secret_box import SecretBox
from tidings.store import rows as r
from tidings.store.connector import Connection, Connector
from tidings.store.sql import FAST_PATHS, load_migrations
from tidings.store.types import (
    DURATION_COLUMNS,
    BacklogStats,
    Conflict,
    DeliveryFilter,
    EndpointBacklog,
    EndpointHour,
    ErasureCounts,
    MigrationStatus,
    NotFound,
    PortalLinkUse,
    PremiseFailed,
    ProjectionLookup,
    ProjectionUpdate,
    PublishItem,
    PublishResult,
    StoreError,
    Subscribers,
    SubscribersChanged,
    TypeFilter,
    WakeupCallback,
)
from tidings.ttlcache import TtlCache

log = logging.getLogger(__name__)

# Publishing keeps, per process, the organizations' subscribed endpoints (checked by
# organizations.endpoints_version, which a trigger bumps on every change that planning reads)
# and, for the fast path, the projections it last wrote or read (checked by their version). A
# stale or missing entry costs a round trip, never a wrong write. (Projection rows are never
# deleted and a key's version only grows, so an entry whose version matches the row's holds the
# row's state.)
SUBSCRIBERS_CACHE_ORGANIZATIONS = 1_000
PROJECTION_CACHE_KEYS = 10_000
PUBLISH_TRIES = 3  # fast-path tries on changed projections; then the plain path

ProjectionKey = tuple[str, str, str]  # organization_id, kind, key
T = TypeVar("T")


class Store:
    def __init__(self, connector: Connector, *, fast_paths: bool = True) -> None:
        self._db = connector
        self._fast = fast_paths and connector.queries.keys() >= FAST_PATHS
        self._wakeups: list[WakeupCallback] = []
        self._subscribers: TtlCache[str, Subscribers] = TtlCache(
            math.inf, SUBSCRIBERS_CACHE_ORGANIZATIONS, lru=True
        )
        self._projections: TtlCache[ProjectionKey, Projection] = TtlCache(
            math.inf, PROJECTION_CACHE_KEYS, lru=True
        )
        self.use_secret_box(None)

    @property
    def dialect(self) -> str:
        return self._db.dialect

    # ---- lifecycle -------------------------------------------------------------------------
    async def connect(self) -> None:
        await self._db.open()

    async def close(self) -> None:
        await self._db.close()

    async def migrate(self) -> list[int]:
        """Apply every pending migration in order, each in its own transaction; answer the
        versions applied."""
        applied: list[int] = []
        async with self._db.connection() as conn:
            await conn.execute("migration_lock")  # concurrent `migrate` calls queue here
            try:
                await conn.execute("create_migrations_table")
                for m in load_migrations(self.dialect):
                    async with conn.transaction():
                        done = {row["version"] for row in await conn.fetch("applied_migrations")}
                        if m.version in done:
                            continue
                        await conn.run_script(m.sql)
                        await conn.execute("record_migration", version=m.version, name=m.name)
                    applied.append(m.version)
            finally:
                await conn.execute("migration_unlock")
        return applied

    async def migration_status(self) -> MigrationStatus:
        versions = [m.version for m in load_migrations(self.dialect)]
        async with self._db.connection() as conn:
            table = await conn.fetch_one("migrations_table_exists")
            rows = await conn.fetch("applied_migrations") if table and table["present"] else []
        done = {row["version"] for row in rows}
        return MigrationStatus(
            current=max(done, default=0),
            latest=max(versions, default=0),
            pending=tuple(v for v in versions if v not in done),
        )

    async def schema(self) -> list[str]:
        """Today's schema as SQL statements: each table with its indexes and triggers, in the
        order the migrations made them, then the functions (`schema.py` writes them out)."""
        return [row["sql"] for row in await self._db.fetch("schema_objects")]

    async def ping(self) -> None:
        """Raise StoreError if the database cannot be reached."""
        await self._db.fetch_one("ping")

    def add_wakeup_listener(self, callback: WakeupCallback) -> None:
        """Call `callback` (from the event loop) whenever deliveries became due because of a
        commit: publish, resume, replay, release. In-process always; across processes (on
        PostgreSQL, LISTEN/NOTIFY) once `listen()` was awaited."""
        self._wakeups.append(callback)

    async def listen(self) -> None:
        """Start receiving other processes' wake-ups (no-op on SQLite: one process)."""
        await self._db.listen(self._wake)

    def _wake(self) -> None:
        for callback in list(self._wakeups):
            try:
                callback()
            except Exception:  # a broken listener must not fail the writer
                log.exception("wakeup callback failed", extra={"action": "store.wakeup"})

    def _announce(self) -> None:
        """Deliveries became due in a commit: wake this process, and tell the others."""
        self._wake()
        self._db.notify()

    # ---- endpoint secrets at rest (issue 22) ---------------------------------------------------
    def use_secret_box(self, box: SecretBox | None) -> None:
        """Encrypt endpoint secrets as they are written and decrypt them as they are read
        (`tidings.secret_box`; None: as they are, which only tests do)."""
        self.secret_box: SecretBox | None = box
        self._seal: r.SecretMap | None = None if box is None else box.encrypt
        self._open: r.SecretMap | None = None if box is None else box.decrypt
        self._claimed = r.EndpointMemo()  # the claims' endpoints, opened by this box

    async def rewrap_secrets(self, batch: int = 500) -> int:
        """Write every endpoint's secrets encrypted with the current key: plain ones (a
        database from before encryption) and those under an older key (a rotation). Each row
        is changed only if it still holds what was read (a concurrent rotation or update
        wins). Answers how many endpoints were rewritten; 0 once done (it is idempotent)."""
        box = self.secret_box
        if box is None:
            return 0
        done, after = 0, None
        while True:
            rows = await self._db.fetch("endpoint_secrets_page", after_seq=after, limit=batch)
            if not rows:
                return done
            after = rows[-1]["seq"]
            for row in rows:
                stored = r.loads(row["secrets"])
                if not any(box.needs_rewrap(s["secret"]) for s in stored):
                    continue
                for s in stored:
                    s["secret"] = box.encrypt(box.decrypt(s["secret"], row["id"]), row["id"])
                done += await self._db.execute(
                    "rewrap_endpoint_secrets",
                    id=row["id"],
                    old=row["secrets"]
                    if isinstance(row["secrets"], str)
                    else r.dumps(row["secrets"]),
                    secrets=r.dumps(stored),
                )

    # ---- organizations, keys, partners --------------------------------------------------------
    async def create_organization(
        self, org: Organization, first_key: ApiKey, key_hash: str, audit: AuditEntry | None = None
    ) -> None:
        """Organization and its first key, in one transaction."""
        async with self._db.transaction() as tx:
            await tx.execute("insert_organization", **r.as_row(org))
            await tx.execute("insert_api_key", key_hash=key_hash, **r.api_key_row(first_key))
            await _audit(tx, audit)

    async def get_organization(self, organization_id: str) -> Organization | None:
        row = await self._db.fetch_one("get_organization", id=organization_id)
        return None if row is None else r.organization_from_row(row)

    async def list_organizations(self, *, limit: int, cursor: str | None) -> Page[Organization]:
        """Every organization, oldest first (platform operators); ValueError for a cursor the
        store did not make. The cursor names the last organization of the page (they have no
        `seq`)."""
        rows = await self._db.fetch(
            "list_organizations", after_id=r.decode_key_cursor(cursor), limit=limit + 1
        )
        return _page(rows, limit, r.organization_from_row, _by_id)

    async def create_api_key(
        self, key: ApiKey, key_hash: str, audit: AuditEntry | None = None
    ) -> None:
        async with self._db.transaction() as tx:
            await tx.execute("insert_api_key", key_hash=key_hash, **r.api_key_row(key))
            await _audit(tx, audit)

    async def ensure_platform_key(self, key: ApiKey, key_hash: str) -> None:
        """Insert the platform key with this hash unless one with the same hash exists."""
        await self._db.execute("ensure_platform_key", key_hash=key_hash, **r.api_key_row(key))

    async def find_api_key(self, key_hash: str) -> ApiKey | None:
        row = await self._db.fetch_one("find_api_key", key_hash=key_hash)
        return None if row is None else r.api_key_from_row(row)

    async def get_api_key(self, key_id: str) -> ApiKey | None:
        row = await self._db.fetch_one("get_api_key", id=key_id)
        return None if row is None else r.api_key_from_row(row)

    async def api_keys_page(
        self, organization_id: str | None, *, limit: int, cursor: str | None
    ) -> Page[ApiKey]:
        """An organization's keys, or the platform keys (`organization_id` None), oldest first,
        revoked ones included; ValueError for a cursor the store did not make."""
        rows = await self._db.fetch(
            "api_keys_page",
            organization_id=organization_id,
            after_id=r.decode_key_cursor(cursor),
            limit=limit + 1,
        )
        return _page(rows, limit, r.api_key_from_row, _by_id)

    async def revoke_api_key(
        self, key: ApiKey, now: float, audit: AuditEntry | None = None
    ) -> bool:
        """Revoke `key` (False: it was revoked already). The last platform admin key that
        still works is never revoked (Conflict): an operator must not lock themselves out
        (publish keys may all go: they make no keys). `audit` is written with a revocation."""
        async with self._db.transaction() as tx:
            if key.kind == KeyKind.PLATFORM and key.effective_scope == KeyScope.ADMIN:
                await tx.execute("lock_api_keys")
                row = await tx.fetch_one("count_usable_platform_keys", except_id=key.id, now=now)
                if row is None or int(row["n"]) == 0:
                    raise Conflict("the last platform key cannot be revoked")
            revoked = await tx.execute("revoke_api_key", id=key.id, now=now) > 0
            if revoked:
                await _audit(tx, audit)
            return revoked

    async def touch_api_key(self, key_id: str, now: float) -> None:
        """Record that the key was used (the row is written at most once a minute)."""
        await self._db.execute("touch_api_key", id=key_id, now=now)

    async def create_partner(self, partner: Partner, audit: AuditEntry | None = None) -> None:
        """Raise Conflict if the organization already has this partner_uuid."""
        async with self._db.transaction() as tx:
            await tx.execute("insert_partner", **r.as_row(partner))
            await _audit(tx, audit)

    async def list_partners(self, organization_id: str) -> list[Partner]:
        rows = await self._db.fetch("list_partners", organization_id=organization_id)
        return [r.partner_from_row(row) for row in rows]

    # ---- endpoints -------------------------------------------------------------------------
    async def create_endpoint(self, endpoint: Endpoint, audit: AuditEntry | None = None) -> None:
        async with self._db.transaction() as tx:
            await tx.execute("insert_endpoint", **r.endpoint_params(endpoint, self._seal))
            await _audit(tx, audit)

    async def get_endpoint(
        self, organization_id: str, endpoint_id: str, *, include_deleted: bool = False
    ) -> Endpoint | None:
        row = await self._db.fetch_one(
            "get_endpoint",
            organization_id=organization_id,
            id=endpoint_id,
            include_deleted=include_deleted,
        )
        return None if row is None else r.endpoint_from_row(row, self._open)

    async def list_endpoints(
        self, organization_id: str, *, limit: int, cursor: str | None
    ) -> Page[Endpoint]:
        """Not deleted, oldest first."""
        rows = await self._db.fetch(
            "list_endpoints",
            organization_id=organization_id,
            after_seq=r.decode_cursor(cursor),
            limit=limit + 1,
        )
        return _page(rows, limit, lambda row: r.endpoint_from_row(row, self._open), _by_seq)

    async def list_subscribed_endpoints(self, organization_id: str) -> list[Endpoint]:
        """Every endpoint that can receive deliveries (status active or paused, not deleted),
        read afresh."""
        return list((await self._read_subscribers(organization_id)).endpoints)

    async def subscribed_endpoints(self, organization_id: str) -> Subscribers:
        """`list_subscribed_endpoints` for planning a publish: from memory when this process
        has read them and `publish` has not found them changed since; else read with their
        version in one statement. `publish` raises SubscribersChanged for items planned from
        a version that is no longer current."""
        known = self._subscribers.get(organization_id, 0.0)
        if known is not None:
            return known
        answer = await self._read_subscribers(organization_id)
        if answer.version is not None:
            self._subscribers.put(organization_id, answer, 0.0)
        return answer

    async def _read_subscribers(self, organization_id: str) -> Subscribers:
        rows = await self._db.fetch("list_subscribed_endpoints", organization_id=organization_id)
        if not rows:  # no such organization: nothing to keep or check
            return Subscribers([])
        return Subscribers(
            [r.endpoint_from_row(row, self._open) for row in rows if row["id"] is not None],
            version=rows[0]["subscribers_version"],
        )

    def _subscribers_changed(self, organization_ids: Sequence[str]) -> SubscribersChanged:
        """Forget what this process kept of their endpoints; the error for `publish` to raise."""
        for org in organization_ids:
            self._subscribers.discard(org)
        return SubscribersChanged(organization_ids)

    async def update_endpoint(self, endpoint: Endpoint, audit: AuditEntry | None = None) -> None:
        """Write the endpoint's configuration fields (url, event_types, format, partner_ids,
        accepted_schema_versions, sources, description, headers, rate_limit_per_second,
        trace_context, secrets, updated_at). Status and failure bookkeeping have their own
        methods. `audit` is written in the same transaction (as in every method taking one)."""
        async with self._db.transaction() as tx:
            params = r.endpoint_params(endpoint, self._seal)
            before = await tx.fetch_one(
                "endpoint_ordering", organization_id=endpoint.organization_id, id=endpoint.id
            )
            if before is None or await tx.execute("update_endpoint", **params) == 0:
                raise NotFound(f"endpoint {endpoint.id} not found")
            reordered = before["ordering"] != endpoint.ordering
            if reordered:
                await _reorder_open_deliveries(tx, endpoint, endpoint.updated_at)
            await _audit(tx, audit)
        if reordered and endpoint.ordering == Ordering.NONE:
            self._announce()  # what was queued is due now

    async def set_endpoint_secrets(
        self,
        organization_id: str,
        endpoint_id: str,
        secrets: Sequence[EndpointSecret],
        now: float,
        audit: AuditEntry | None = None,
    ) -> None:
        async with self._db.transaction() as tx:
            written = await tx.execute(
                "set_endpoint_secrets",
                organization_id=organization_id,
                id=endpoint_id,
                secrets=r.secrets_json(secrets, endpoint_id, self._seal),
                now=now,
            )
            if written == 0:
                raise NotFound(f"endpoint {endpoint_id} not found")
            await _audit(tx, audit)

    async def delete_endpoint(
        self, organization_id: str, endpoint_id: str, now: float, audit: AuditEntry | None = None
    ) -> bool:
        """Soft delete (kept for history); its pending/held deliveries become `failed` with
        last_error "endpoint deleted". False if there was no such endpoint."""
        async with self._db.transaction() as tx:
            key = {"organization_id": organization_id, "id": endpoint_id, "now": now}
            if await tx.execute("delete_endpoint", **key) == 0:
                return False
            await tx.execute("fail_endpoint_deliveries", endpoint_id=endpoint_id, now=now)
            await _audit(tx, audit)
        return True

    async def pause_endpoint(
        self,
        organization_id: str,
        endpoint_id: str,
        reason: str,
        now: float,
        audit: AuditEntry | None = None,
    ) -> bool:
        """Set status `paused` (only from `active`) and move its pending deliveries to `held`.
        True if this call made the transition (so exactly one caller raises the meta event).
        `audit` is written whenever the endpoint exists (a pause of a paused one included)."""
        async with self._db.transaction() as tx:
            key = {"organization_id": organization_id, "id": endpoint_id, "now": now}
            changed = await tx.execute("pause_endpoint", reason=reason, **key) > 0
            if changed:
                await tx.execute("hold_endpoint_deliveries", endpoint_id=endpoint_id, now=now)
            await _audit(tx, audit)
        return changed

    async def resume_endpoint(
        self, organization_id: str, endpoint_id: str, now: float, audit: AuditEntry | None = None
    ) -> int:
        """Set status `active`, reset the failure streak, make its held deliveries pending and
        due at `now`. Answers how many deliveries were released."""
        async with self._db.transaction() as tx:
            key = {"organization_id": organization_id, "id": endpoint_id, "now": now}
            released = 0
            if await tx.execute("resume_endpoint", **key) > 0:
                released = await tx.execute(
                    "release_held_deliveries", endpoint_id=endpoint_id, now=now
                )
            await _audit(tx, audit)
        if released:
            self._announce()
        return released

    # ---- events (publishing, feed) -----------------------------------------------------------
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
        if not items:
            return []
        if self._fast:
            results = await self._publish_in_one_round_trip(items, now)
            if results is not None:
                return results
        return await self._publish_plain(items, now)

    async def _publish_plain(
        self, items: Sequence[PublishItem], now: float | None
    ) -> list[PublishResult]:
        """Any publish, in one transaction that checks the endpoint versions, inserts what is
        new and locks the projection keys before reading them; events that exist already are
        answered as stored."""
        planned = _endpoint_versions(items)
        async with self._db.transaction() as tx:
            if planned:
                rows = await tx.fetch("endpoints_versions", ids=list(planned))
                current = {row["id"]: row["endpoints_version"] for row in rows}
                stale = sorted(o for o, v in planned.items() if current.get(o) != v)
                if stale:
                    raise self._subscribers_changed(stale)
            rows = await tx.fetch("insert_events", rows=r.event_rows([i.event for i in items]))
            stored, created = _split_published(
                items, {(row["organization_id"], row["id"]): int(row["seq"]) for row in rows}
            )
            results = [
                PublishResult(event=ev, created=True)
                if ev is not None
                else PublishResult(event=await _existing_event(tx, it.event), created=False)
                for it, ev in zip(items, stored, strict=True)
            ]
            deliveries = _new_delivery_rows(created, now)
            await _insert_deliveries(tx, deliveries)
            changed = await _apply_projections(tx, created, now)
        self._remember_projections(changed)
        if _any_pending(deliveries):
            self._announce()
        return results

    async def _publish_in_one_round_trip(
        self, items: Sequence[PublishItem], now: float | None
    ) -> list[PublishResult] | None:
        """The fast path of `publish` (PostgreSQL: tidings_publish, migration 0003), for the
        common case of new events: one statement that checks the endpoint versions the items
        were planned with and the projection versions this process believes (the ones it last
        wrote or read; a key it has not seen, absent), then stores events, deliveries and the
        projection changes. A projection not as believed is answered with its current row, and
        the changes are computed again from it. None when an event exists already or the
        projections kept changing (nothing stored): the caller takes the plain path."""
        keys = _projection_keys(items)
        planned = _endpoint_versions(items)
        deliveries = _new_delivery_rows(items, now)
        params = {
            "events": r.event_rows([i.event for i in items]),
            "deliveries": r.delivery_rows(deliveries),
            "endpoints": r.dumps(
                [{"organization_id": org, "version": v} for org, v in sorted(planned.items())]
            ),
        }
        answer: dict[str, Any] = {}
        changed: dict[ProjectionKey, Projection] = {}
        async with self._db.connection() as conn:
            for _ in range(PUBLISH_TRIES):
                believed = self._believed_projections(keys)
                changed = _projection_changes(items, believed, now)
                try:
                    row = await conn.fetch_one(
                        "publish_in_one_round_trip",
                        projections=_compare_and_set_rows(changed, believed, keys),
                        **params,
                    )
                except PremiseFailed:
                    return None
                assert row is not None
                answer = r.loads(row["answer"])
                if "projections" not in answer:
                    break
                for key in keys:
                    self._projections.discard(key)
                self._remember_projections(
                    {_key(p): p for p in map(r.projection_from_row, answer["projections"])}
                )
            else:
                return None
        if "endpoints" in answer:
            raise self._subscribers_changed(answer["endpoints"])
        events, created = _split_published(
            items, {(org, event_id): int(seq) for org, event_id, seq in answer["stored"]}
        )
        if len(created) != len(items):  # the function refuses this; never half-answer
            raise StoreError("publish stored a different number of events than it was given")
        self._remember_projections(changed)
        if _any_pending(deliveries):
            self._announce()
        return [PublishResult(event=ev, created=True) for ev in events if ev is not None]

    def _believed_projections(
        self, keys: Sequence[ProjectionKey]
    ) -> dict[ProjectionKey, Projection]:
        known = {key: self._projections.get(key, 0.0) for key in keys}
        return {key: proj for key, proj in known.items() if proj is not None}

    def _remember_projections(self, committed: dict[ProjectionKey, Projection]) -> None:
        """Only what is committed: rows read, or writes whose statement returned."""
        if self._fast:
            for key, proj in committed.items():
                self._projections.put(key, proj, 0.0)

    async def get_event(self, organization_id: str, event_id: str) -> Event | None:
        row = await self._db.fetch_one("get_event", organization_id=organization_id, id=event_id)
        return None if row is None else r.event_from_row(row)

    async def get_events(self, organization_id: str, event_ids: Sequence[str]) -> dict[str, Event]:
        """The organization's events among `event_ids`, by id (unknown ids are left out)."""
        ids = sorted(set(event_ids))
        if not ids:
            return {}
        rows = await self._db.fetch(
            "events_by_keys", organization_ids=[organization_id] * len(ids), event_ids=ids
        )
        return {row["id"]: r.event_from_row(row) for row in rows}

    async def list_events(
        self,
        organization_id: str,
        *,
        after: str | None,
        types: TypeFilter,
        limit: int,
        correlation_id: str | None = None,
    ) -> Page[Event]:
        """Oldest first (by seq) after the cursor; only those carrying `correlation_id` when
        given. next_cursor is always the cursor after the last item (or the given cursor when
        the page is empty), so a feed can resume."""
        name, params = _feed_query(
            "list_events", organization_id, after, types, limit, correlation_id
        )
        rows = await self._db.fetch(name, **params)
        items = [r.event_from_row(row) for row in rows]
        return Page(items=items, next_cursor=r.encode_cursor(items[-1].seq) if items else after)

    async def events_page_fingerprint(
        self,
        organization_id: str,
        *,
        after: str | None,
        types: TypeFilter,
        limit: int,
        correlation_id: str | None = None,
    ) -> tuple[int, int, int]:
        """(count, last seq, the organization's erasures) of the page list_events would answer,
        without loading it: the basis of the feed's ETag (an erasure changes pages without
        adding events)."""
        name, params = _feed_query(
            "events_page_fingerprint", organization_id, after, types, limit, correlation_id
        )
        row = await self._db.fetch_one(name, **params)
        assert row is not None
        return int(row["n"]), int(row["last_seq"]), int(row["erasures"] or 0)

    # ---- deliveries: worker side --------------------------------------------------------------
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
        earlier can be claimable passes its floor, so the scan skips what was already sent.

        Three statements on one connection, each its own transaction (no BEGIN/COMMIT round
        trips): the lease is what counts, and it is taken by the first."""
        async with self._db.connection() as conn:
            rows = await conn.fetch(
                "claim_due",
                worker_id=worker_id,
                now=now,
                lease_until=now + lease_seconds,
                limit=limit,
                due_from=due_from,
            )
            if not rows:
                return []
            deliveries = sorted(
                map(r.delivery_from_row, rows), key=lambda d: (d.next_attempt_at, d.seq)
            )
            keys = sorted({(d.organization_id, d.event_id) for d in deliveries})
            event_rows = await conn.fetch(
                "events_by_keys",
                organization_ids=[k[0] for k in keys],
                event_ids=[k[1] for k in keys],
            )
            endpoint_rows = await conn.fetch(
                "endpoints_by_ids", ids=sorted({d.endpoint_id for d in deliveries})
            )
            events = {(e.organization_id, e.id): e for e in map(r.event_from_row, event_rows)}
            endpoints = {
                row["id"]: self._claimed.endpoint(row, self._open) for row in endpoint_rows
            }
            stale = _unsendable(deliveries, endpoints)
            if stale:
                await conn.execute(
                    "settle_unsendable_claims", ids=stale, worker_id=worker_id, now=now
                )
        return _assemble_claims(deliveries, events, endpoints)

    async def record_outcomes(
        self, worker_id: str, outcomes: Sequence[AttemptOutcome], now: float
    ) -> list[EndpointHealth]:
        """In one transaction: insert each attempt, update each delivery (status, attempt_count,
        next_attempt_at, last_*; lease cleared) if `worker_id` still holds its lease, and update
        each endpoint's failure bookkeeping atomically (success: streak 0, failing_since NULL,
        last_success_at=now; failure: streak+1, failing_since=COALESCE(failing_since, now)).
        If the endpoint was paused meanwhile, a PENDING outcome becomes HELD. A delivery given
        twice counts once, the first; an outcome whose lease is lost is dropped with its
        attempt (another worker owns the delivery now and records its own).
        Answers the health of every endpoint touched, after the update."""
        firsts: dict[str, AttemptOutcome] = {}
        for o in outcomes:
            firsts.setdefault(o.delivery_id, o)
        if not firsts:
            return []
        ordered = list(firsts.values())
        if self._fast:
            row = await self._db.fetch_one(
                "record_outcomes_in_one_round_trip",
                worker_id=worker_id,
                outcomes=r.outcome_attempt_rows(ordered),
                now=now,
                ids=list(firsts),
                endpoint_ids=_locked_endpoints(ordered),
            )
            assert row is not None
            answer = r.loads(row["answer"])
            kept, health = set(answer["kept"]), answer["health"]
            promoted = int(answer.get("promoted") or 0)
        else:
            kept, health, promoted = await self._record_outcomes_plain(worker_id, ordered, now)
        if promoted:
            self._announce()
        _log_dropped(outcomes, kept)
        return sorted(map(r.health_from_row, health), key=lambda h: h.endpoint_id)

    async def _record_outcomes_plain(
        self, worker_id: str, outcomes: Sequence[AttemptOutcome], now: float
    ) -> tuple[set[str], Sequence[r.Row], int]:
        async with self._db.transaction() as tx:
            await tx.execute("lock_endpoints", endpoint_ids=_locked_endpoints(outcomes))
            rows = await tx.fetch(
                "record_delivery_outcomes",
                outcomes=r.outcome_rows(outcomes),
                worker_id=worker_id,
                now=now,
                ids=[o.delivery_id for o in outcomes],
            )
            if not rows:
                return set(), [], 0
            written = {row["id"]: row for row in rows}
            # each outcome written, in attempt order, with its delivery as stored
            kept = [(o, written[o.delivery_id]) for o in outcomes if o.delivery_id in written]
            await tx.execute("insert_attempts", rows=r.attempt_rows(kept))
            health = await tx.fetch("record_endpoint_health", rows=r.result_rows(kept), now=now)
            settled = [row for row in rows if row["status"] in _SETTLED]
            promoted = await _promote(tx, settled, now)
        return set(written), health, promoted

    async def release(
        self,
        worker_id: str,
        delivery_ids: Sequence[str],
        next_attempt_at: float | Sequence[float],
        *,
        now: float,
    ) -> int:
        """Give leased deliveries back without an attempt (shutdown, per-endpoint deferral),
        due at `next_attempt_at`: one time for all of them, or one per delivery. Wakes workers
        only when something was given back due at `now` already (a deferral into the future is
        found by the releasing worker itself, or by the idle poll)."""
        if not delivery_ids:
            return 0
        if isinstance(next_attempt_at, int | float):
            due = dict.fromkeys(delivery_ids, float(next_attempt_at))
        elif len(next_attempt_at) != len(delivery_ids):
            raise ValueError("one due time per delivery, or one for all")
        else:
            due = dict(zip(delivery_ids, next_attempt_at, strict=True))
        count = await self._db.execute(
            "release", ids=list(due), worker_id=worker_id, due=r.dumps(due)
        )
        if count and min(due.values()) <= now:
            self._announce()
        return count

    async def backlog_stats(self, now: float) -> BacklogStats:
        row = await self._db.fetch_one("backlog_stats", now=now)
        assert row is not None
        return BacklogStats(due=int(row["due"]), oldest_due_at=row["oldest_due_at"])

    async def count_deliveries_by_status(self) -> dict[str, int]:
        rows = await self._db.fetch("count_deliveries_by_status")
        return {row["status"]: int(row["n"]) for row in rows}

    async def count_endpoints_by_status(self) -> dict[str, int]:
        rows = await self._db.fetch("count_endpoints_by_status")
        return {row["status"]: int(row["n"]) for row in rows}

    async def endpoint_backlogs(self, limit: int) -> list[EndpointBacklog]:
        """The `limit` endpoints with the most deliveries pending or held, most first."""
        rows = await self._db.fetch("endpoint_backlogs", limit=limit)
        return [
            EndpointBacklog(
                organization_id=row["organization_id"],
                endpoint_id=row["id"],
                pending=int(row["pending"]),
                held=int(row["held"]),
                last_success_at=row["last_success_at"],
                created_at=row["created_at"],
            )
            for row in rows
        ]

    async def worst_endpoints(self, limit: int) -> list[tuple[str, str, int]]:
        """(organization_id, endpoint_id, failure_streak) with the longest streaks, > 0."""
        rows = await self._db.fetch("worst_endpoints", limit=limit)
        return [(row["organization_id"], row["id"], int(row["failure_streak"])) for row in rows]

    async def purge_history(self, cutoff: float, batch_size: int) -> int:
        """Delete up to `batch_size` finished deliveries (succeeded, failed, skipped) created
        before `cutoff` with their attempts, and events created before `cutoff` that have no
        delivery left pending/held. Answers rows deleted; callers loop until 0. PostgreSQL
        moves the cutoff back to the start of its day (`history_rows_cutoff`): the rows of a
        day partly past it go with their day's partitions (`drop_history_partitions`)."""
        deleted = 0
        async with self._db.transaction() as tx:
            row = await tx.fetch_one("history_rows_cutoff", cutoff=cutoff)
            cutoff = cutoff if row is None else float(row["cutoff"])
            rows = await tx.fetch("purge_select_deliveries", cutoff=cutoff, limit=batch_size)
            if rows:
                await tx.execute("purge_attempts", ids=[row["id"] for row in rows])
                deleted += await tx.execute("purge_deliveries", seqs=[row["seq"] for row in rows])
            deleted += await tx.execute("purge_events", cutoff=cutoff, limit=batch_size)
        return deleted

    async def make_history_partitions(self, now: float, days: int) -> int:
        """Make the history's day partitions for the `days` days from `now`'s on (PostgreSQL;
        nothing on SQLite). Answers how many were new."""
        row = await self._db.fetch_one("make_history_partitions", now=now, days=days)
        return 0 if row is None else int(row["made"])

    async def drop_history_partitions(self, cutoff: float) -> list[str]:
        """Drop the history's day partitions wholly older than `cutoff`, oldest first, one
        transaction each (PostgreSQL; nothing on SQLite). Answers their names."""
        dropped: list[str] = []
        while True:
            row = await self._db.fetch_one("drop_history_partition", cutoff=cutoff)
            if row is None or row["dropped"] is None:
                return dropped
            dropped.append(str(row["dropped"]))

    async def refresh_statistics(self, rows: int, fraction: float) -> list[str]:
        """ANALYZE each table changed by at least `rows` + `fraction` of its rows since its
        last analyze (PostgreSQL, migration 0023; nothing on SQLite). Answers their names; none
        while another process is at it."""
        row = await self._db.fetch_one("refresh_statistics", rows=rows, fraction=fraction)
        return [] if row is None or row["analyzed"] is None else list(row["analyzed"])

    # ---- deliveries: history and replay -------------------------------------------------------
    async def get_delivery(self, organization_id: str, delivery_id: str) -> Delivery | None:
        row = await self._db.fetch_one(
            "get_delivery", organization_id=organization_id, id=delivery_id
        )
        return None if row is None else r.delivery_from_row(row)

    async def list_deliveries(
        self, organization_id: str, flt: DeliveryFilter, *, limit: int, cursor: str | None
    ) -> Page[Delivery]:
        """Newest first."""
        types = flt.event_types
        by_type = {} if types is None or types.empty else r.type_params(types)
        rows = await self._db.fetch(
            _delivery_history_query(flt),
            **by_type,
            organization_id=organization_id,
            before_seq=r.decode_cursor(cursor),
            endpoint_id=flt.endpoint_id,
            event_id=flt.event_id,
            status=None if flt.status is None else str(flt.status),
            created_after=flt.created_after,
            created_before=flt.created_before,
            limit=limit + 1,
        )
        return _page(rows, limit, r.delivery_from_row, _by_seq)

    async def ledger(
        self, organization_id: str, endpoint_id: str, *, after: int, limit: int
    ) -> list[LedgerEntry]:
        """The endpoint's deliveries numbered after `after`, in sequence order (issue 25)."""
        rows = await self._db.fetch(
            "endpoint_ledger",
            organization_id=organization_id,
            endpoint_id=endpoint_id,
            after=after,
            limit=limit,
        )
        return [r.ledger_entry_from_row(row) for row in rows]

    async def ledger_event_ids(
        self, organization_id: str, endpoint_id: str, first: int, last: int
    ) -> list[str]:
        """The event ids of the endpoint's deliveries numbered `first` to `last` (both
        included) that are not skipped."""
        rows = await self._db.fetch(
            "endpoint_ledger_ids",
            organization_id=organization_id,
            endpoint_id=endpoint_id,
            first=first,
            last=last,
        )
        return [row["event_id"] for row in rows]

    async def blocked_subjects(self, cutoff: float, limit: int) -> list[BlockedSubject]:
        """Ordered subjects whose oldest queued delivery was stored before `cutoff`, held back
        by a pending one that failed at least once and was not reported yet; longest first."""
        rows = await self._db.fetch("blocked_subjects", cutoff=cutoff, limit=limit)
        return [r.blocked_subject_from_row(row) for row in rows]

    async def mark_blocked_reported(self, delivery_ids: Sequence[str], now: float) -> int:
        """The blocking deliveries' webhook.subject_blocked went out (not again for them)."""
        if not delivery_ids:
            return 0
        return await self._db.execute("mark_blocked_reported", ids=list(delivery_ids), now=now)

    async def last_sequence(self, endpoint_id: str) -> int:
        """The endpoint's highest sequence number so far (0 before its first delivery)."""
        row = await self._db.fetch_one("endpoint_last_sequence", endpoint_id=endpoint_id)
        return 0 if row is None else int(row["last"])

    async def list_attempts(self, organization_id: str, delivery_id: str) -> list[Attempt]:
        """Oldest first."""
        rows = await self._db.fetch(
            "list_attempts", organization_id=organization_id, delivery_id=delivery_id
        )
        return [r.attempt_from_row(row) for row in rows]

    async def replay_delivery(
        self, organization_id: str, delivery_id: str, now: float, audit: AuditEntry | None = None
    ) -> Delivery | None:
        """Start a new attempt series: series+1, attempt_count 0, status pending, due now,
        lease cleared. None if no such delivery. `audit` is written with the replay."""
        key = {"organization_id": organization_id, "id": delivery_id}
        async with self._db.transaction() as tx:
            row = await tx.fetch_one("replay_delivery", now=now, **key)
            if row is None:
                row = await tx.fetch_one("get_delivery", **key)
                return None if row is None else r.delivery_from_row(row)
            if await _promote(tx, [row], now):
                row = await tx.fetch_one("get_delivery", **key)
                assert row is not None
            await _audit(tx, audit)
        replayed = r.delivery_from_row(row)
        if replayed.status == DeliveryStatus.PENDING:
            self._announce()
        return replayed

    async def replay_endpoint_deliveries(
        self,
        organization_id: str,
        endpoint_id: str,
        *,
        since: float,
        until: float | None,
        statuses: Sequence[DeliveryStatus],
        now: float,
        audit: AuditEntry | None = None,
    ) -> int:
        """replay_delivery for every delivery of the endpoint created in [since, until) whose
        status is in `statuses`. Answers how many. `audit` is written in the same transaction
        with the count added to its changes (`replayed`)."""
        async with self._db.transaction() as tx:
            rows = await tx.fetch(
                "replay_endpoint_deliveries",
                organization_id=organization_id,
                endpoint_id=endpoint_id,
                since=since,
                until=until,
                statuses=[str(s) for s in statuses],
                now=now,
            )
            count = len(rows)
            await _promote(tx, rows, now)
            if audit is not None:
                await _audit(tx, replace(audit, changes={**audit.changes, "replayed": count}))
        if count:
            self._announce()
        return count

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
        if not revivals:
            return 0
        async with self._db.transaction() as tx:
            rows = await tx.fetch(
                "revive_skipped_deliveries",
                organization_id=organization_id,
                endpoint_id=endpoint_id,
                rows=r.dumps([{"id": d, "schema_version": v} for d, v in revivals]),
                now=now,
            )
            count = len(rows)
            await _promote(tx, rows, now)
        if count:
            self._announce()
        return count

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
        rows = await self._db.fetch(
            "events_without_delivery",
            organization_id=organization_id,
            endpoint_id=endpoint_id,
            since=since,
            until=until,
            limit=limit,
            **r.type_params(types),
        )
        return [r.event_from_row(row) for row in rows]

    async def add_deliveries(
        self, organization_id: str, pairs: Sequence[tuple[str, NewDelivery]], now: float
    ) -> int:
        """Create deliveries (event_id, delivery) for existing events; skips pairs whose
        (event, endpoint) already has a delivery. Answers how many were created."""
        if not pairs:
            return 0
        rows = [(organization_id, event_id, d, now) for event_id, d in pairs]
        async with self._db.transaction() as tx:
            created = await _insert_deliveries(tx, rows)
        if created and _any_pending(rows):
            self._announce()
        return created

    # ---- projections ---------------------------------------------------------------------------
    async def get_projection(self, organization_id: str, kind: str, key: str) -> Projection | None:
        row = await self._db.fetch_one(
            "get_projection", organization_id=organization_id, kind=kind, key=key
        )
        return None if row is None else r.projection_from_row(row)

    async def list_projections(
        self,
        organization_id: str,
        kind: str,
        *,
        limit: int,
        cursor: str | None,
        lookup: ProjectionLookup | None = None,
    ) -> Page[Projection]:
        """One kind's states in change order (`updated_at`, then key), filtered by `lookup`.
        An owner or trigger id (entitlements) and an external id (owners) read through their
        own indexes; the other filters narrow what those (or the change-order index) give.
        ValueError for a cursor the store did not make."""
        look = lookup or ProjectionLookup()
        after_at, after_key = r.decode_change_cursor(cursor)
        if look.external_id is not None:
            query = "owners_by_external_id"
        elif look.owner_id is not None:
            query = "entitlements_of_owner"
        elif look.trigger_id is not None:
            query = "entitlements_of_trigger"
        else:
            query = "projections_changed"
        rows = await self._db.fetch(
            query,
            organization_id=organization_id,
            kind=kind,
            owner_id=look.owner_id,
            trigger_id=look.trigger_id,
            external_id=look.external_id,
            status=look.status,
            decision=look.decision,
            changed_since=look.changed_since,
            after_at=after_at,
            after_key=after_key,
            limit=limit + 1,
        )
        return _page(
            rows,
            limit,
            r.projection_from_row,
            lambda last: r.encode_change_cursor(last["updated_at"], last["key"]),
        )

    # ---- console sessions and portal links ------------------------------------------------------
    # Looked up by the SHA-256 of their token; deleting the key behind one deletes it.
    async def create_console_session(self, session: ConsoleSession, token_hash: str) -> None:
        await self._db.execute("insert_console_session", token_hash=token_hash, **r.as_row(session))

    async def find_console_session(self, token_hash: str, now: float) -> ConsoleSession | None:
        """The session with this token hash, unless it has expired at `now`."""
        row = await self._db.fetch_one("find_console_session", token_hash=token_hash, now=now)
        return None if row is None else r.console_session_from_row(row)

    async def delete_console_session(self, token_hash: str) -> bool:
        """Sign-out: the session is gone for every process. False if there was none."""
        return await self._db.execute("delete_console_session", token_hash=token_hash) > 0

    async def create_portal_link(
        self, link: PortalLink, token_hash: str, audit: AuditEntry | None = None
    ) -> None:
        async with self._db.transaction() as tx:
            await tx.execute("insert_portal_link", token_hash=token_hash, **r.as_row(link))
            await _audit(tx, audit)

    async def use_portal_link(self, token_hash: str, now: float) -> PortalLinkUse:
        """Mark the link used at `now` if it is unused and unexpired (one statement, so of two
        concurrent opens exactly one succeeds)."""
        async with self._db.connection() as conn:
            row = await conn.fetch_one("use_portal_link", token_hash=token_hash, now=now)
            if row is not None:
                return PortalLinkUse(r.portal_link_from_row(row), opened=True)
            row = await conn.fetch_one("find_portal_link", token_hash=token_hash)
        return PortalLinkUse(None if row is None else r.portal_link_from_row(row), opened=False)

    # ---- the console's reads (issue 21) --------------------------------------------------------
    async def count_replay_window(
        self,
        organization_id: str,
        endpoint_id: str,
        *,
        since: float,
        until: float | None,
        statuses: Sequence[DeliveryStatus],
    ) -> int:
        """How many deliveries `replay_endpoint_deliveries` with the same arguments would
        replay now (a preview; it changes nothing)."""
        row = await self._db.fetch_one(
            "count_replay_window",
            organization_id=organization_id,
            endpoint_id=endpoint_id,
            since=since,
            until=until,
            statuses=[str(s) for s in statuses],
        )
        return 0 if row is None else int(row["n"])

    async def search_organizations(
        self, needle: str, *, limit: int, cursor: str | None
    ) -> Page[Organization]:
        """`list_organizations` of those whose name contains `needle` (case-insensitive) or
        whose id is `needle`."""
        rows = await self._db.fetch(
            "search_organizations",
            needle=needle.lower(),
            after_id=r.decode_key_cursor(cursor),
            limit=limit + 1,
        )
        return _page(rows, limit, r.organization_from_row, _by_id)

    async def list_api_keys(self, organization_id: str) -> list[ApiKey]:
        """An organization's keys, oldest first (what they are, never their hashes)."""
        rows = await self._db.fetch("list_api_keys", organization_id=organization_id)
        return [r.api_key_from_row(row) for row in rows]

    async def deliveries_per_minute(self, since: float) -> dict[int, int]:
        """Deliveries created since `since`, by epoch minute (minutes without any left out)."""
        rows = await self._db.fetch("deliveries_per_minute", since=since)
        return {int(row["minute"]): int(row["n"]) for row in rows}

    # ---- workers seen (the overview's "workers seen recently") ------------------------------
    async def worker_seen(
        self, worker_id: str, started_at: float, now: float, *, forget_before: float
    ) -> None:
        """The worker is alive at `now`; rows of workers last seen before `forget_before`
        go (a worker that died without stopping)."""
        async with self._db.transaction() as tx:
            await tx.execute("worker_seen", worker_id=worker_id, started_at=started_at, now=now)
            await tx.execute("purge_workers_seen", cutoff=forget_before)

    # ---- endpoint stats (the console's health at a glance) --------------------------------------
    async def add_endpoint_stats(
        self, hours: Sequence[EndpointHour], *, forget_before: float
    ) -> None:
        """Add each endpoint's hour to what is recorded (workers add theirs every few seconds);
        hours before `forget_before` go."""
        if not hours:
            return
        rows = [
            {
                "endpoint_id": h.endpoint_id,
                "organization_id": h.organization_id,
                "hour": h.hour,
                "attempts": h.attempts,
                "successes": h.successes,
                **dict(zip(DURATION_COLUMNS, h.durations, strict=True)),
                "last_attempt_at": h.last_attempt_at,
                "last_status_code": h.last_status_code,
                "last_error": h.last_error,
            }
            for h in sorted(hours, key=lambda h: (h.endpoint_id, h.hour))  # one lock order
        ]
        async with self._db.transaction() as tx:
            for row in rows:
                await tx.execute("add_endpoint_stats", **row)
            await tx.execute("purge_endpoint_stats", cutoff=forget_before)

    async def endpoint_stats(
        self, organization_id: str, endpoint_ids: Sequence[str], since: float
    ) -> list[EndpointHour]:
        """The recorded hours since `since` of the endpoints asked, by endpoint then hour."""
        if not endpoint_ids:
            return []
        rows = await self._db.fetch(
            "endpoint_stats",
            organization_id=organization_id,
            endpoint_ids=list(endpoint_ids),
            since=since,
        )
        return [
            EndpointHour(
                endpoint_id=row["endpoint_id"],
                organization_id=row["organization_id"],
                hour=float(row["hour"]),
                attempts=int(row["attempts"]),
                successes=int(row["successes"]),
                durations=tuple(int(row[c]) for c in DURATION_COLUMNS),
                last_attempt_at=float(row["last_attempt_at"]),
                last_status_code=row["last_status_code"],
                last_error=row["last_error"],
            )
            for row in rows
        ]

    async def held_counts(
        self, organization_id: str, endpoint_ids: Sequence[str]
    ) -> dict[str, int]:
        """Held deliveries of each endpoint asked that has any."""
        if not endpoint_ids:
            return {}
        rows = await self._db.fetch(
            "held_counts", organization_id=organization_id, endpoint_ids=list(endpoint_ids)
        )
        return {row["endpoint_id"]: int(row["held"]) for row in rows}

    async def worker_gone(self, worker_id: str) -> None:
        """The worker stopped (gracefully)."""
        await self._db.execute("worker_gone", worker_id=worker_id)

    async def workers_seen(self, since: float) -> list[tuple[str, float, float]]:
        """(worker_id, started_at, last_seen_at) of the workers seen since `since`, oldest
        started first."""
        rows = await self._db.fetch("workers_seen_since", since=since)
        return [
            (row["worker_id"], float(row["started_at"]), float(row["last_seen_at"])) for row in rows
        ]

    # ---- erasure of personal data (issue 22 section 4) -------------------------------------
    async def event_to_erase(self, organization_id: str, event_id: str) -> Event | None:
        """The event, unless there is none or it is erased already."""
        row = await self._db.fetch_one("event_to_erase", organization_id=organization_id,
                                       id=event_id)  # fmt: skip
        return None if row is None else r.event_from_row(row)

    async def events_to_erase_by_subject(
        self, subject: str, organization_id: str | None, *, limit: int
    ) -> list[Event]:
        """Events about `subject` not erased yet (in one organization, or every one with
        None), oldest first."""
        rows = await self._db.fetch(
            "events_to_erase_by_subject",
            subject=subject,
            organization_id=organization_id,
            limit=limit,
        )
        return [r.event_from_row(row) for row in rows]

    async def erase_events(
        self,
        organization_id: str,
        events: Sequence[Event],
        projections: Sequence[ProjectionUpdate],
        now: float,
        audit: AuditEntry | None = None,
    ) -> ErasureCounts:
        """In one transaction, for events of one organization: their data goes (JSON null,
        `erased_at` now; the skeleton stays), their deliveries still pending or held are
        skipped with reason "erased", their attempts lose the response excerpt, and each of
        `projections` is rewritten by its `apply` (None: unchanged) with version+1 and
        updated_at now (its last event stays); the organization's erasure count goes up (the
        feed's ETag), and `audit` is written with the counts in its changes. Then the database
        is asked to drop its copies of what was overwritten (`forget_overwritten`)."""
        ids = [e.id for e in events]
        key = {"organization_id": organization_id, "event_ids": ids}
        async with self._db.transaction() as tx:
            erased = await tx.execute("erase_events", now=now, **key)
            ordered_at = await tx.fetch("erased_ordered_endpoints", **key)
            if ordered_at:
                await tx.execute(
                    "lock_sequences", endpoint_ids=[row["endpoint_id"] for row in ordered_at]
                )
            stopped_rows = await tx.fetch("stop_erased_deliveries", now=now, **key)
            stopped = len(stopped_rows)
            promoted = await _promote(tx, stopped_rows, now)
            cleared = await tx.execute("clear_erased_attempts", **key)
            changed = await _rewrite_projections(tx, organization_id, projections, now)
            await tx.execute("count_erasure", organization_id=organization_id)
            counts = ErasureCounts(erased, stopped, cleared, len(changed))
            if audit is not None:
                await _audit(tx, replace(audit, changes={**audit.changes, **counts.as_json()}))
        for changed_key in changed:
            self._projections.discard(changed_key)
        if promoted:
            self._announce()
        await self._db.forget_overwritten()
        return counts

    # ---- audit trail (issue 22 section 3) ------------------------------------------------
    async def record_audit(self, entry: AuditEntry) -> None:
        """An entry on its own (a sensitive read; a change records with its own method)."""
        async with self._db.transaction() as tx:
            await _audit(tx, entry)

    async def list_audit(
        self,
        organization_id: str | None,
        *,
        action: str | None = None,
        target_id: str | None = None,
        since: float | None = None,
        limit: int,
        cursor: str | None,
    ) -> Page[AuditEntry]:
        """Oldest first; organization_id None: every organization's entries and the platform's."""
        rows = await self._db.fetch(
            "list_audit_entries",
            all_organizations=organization_id is None,
            organization_id=organization_id,
            action=action,
            target_id=target_id,
            since=since,
            after_seq=r.decode_cursor(cursor),
            limit=limit + 1,
        )
        return _page(rows, limit, r.audit_from_row, _by_seq)

    async def purge_audit(self, cutoff: float, batch_size: int) -> int:
        """Delete up to `batch_size` audit entries older than `cutoff`; callers loop until 0."""
        return await self._db.execute("purge_audit_entries", cutoff=cutoff, limit=batch_size)

    async def purge_console_sessions(self, cutoff: float) -> int:
        """Delete sessions and portal links that expired before `cutoff`. Answers how many."""
        async with self._db.transaction() as tx:
            sessions = await tx.execute("purge_console_sessions", cutoff=cutoff)
            links = await tx.execute("purge_portal_links", cutoff=cutoff)
        return sessions + links


# ---- the rules' pieces: pure functions of what the store read and was given ----------------------


async def _audit(tx: Connection, entry: AuditEntry | None) -> None:
    """The audit entry of a change, inside the change's transaction."""
    if entry is not None:
        await tx.execute("insert_audit_entry", **r.audit_params(entry))


def _endpoint_versions(items: Sequence[PublishItem]) -> dict[str, int]:
    """The `Subscribers.version` each organization's items were planned from (items without
    one are not checked)."""
    return {
        it.event.organization_id: it.endpoints_version
        for it in items
        if it.endpoints_version is not None
    }


def _split_published(
    items: Sequence[PublishItem], inserted: dict[tuple[str, str], int]
) -> tuple[list[Event | None], list[PublishItem]]:
    """Per item, the stored event when this call inserted it (else None: look the existing one
    up), and the items inserted. A repeated event in the same batch counts once."""
    stored: list[Event | None] = []
    created: list[PublishItem] = []
    for it in items:
        seq = inserted.pop((it.event.organization_id, it.event.id), None)
        if seq is None:
            stored.append(None)
        else:
            stored.append(replace(it.event, seq=seq))
            created.append(it)
    return stored, created


async def _existing_event(tx: Connection, ev: Event) -> Event:
    row = await tx.fetch_one("get_event", organization_id=ev.organization_id, id=ev.id)
    if row is None and ev.idempotency_key is not None:
        row = await tx.fetch_one(
            "get_event_by_idempotency_key",
            organization_id=ev.organization_id,
            idempotency_key=ev.idempotency_key,
        )
    if row is None:
        raise StoreError(f"event {ev.id} was neither inserted nor found")
    return r.event_from_row(row)


def _new_delivery_rows(created: Sequence[PublishItem], now: float | None) -> list[r.DeliveryRow]:
    """The deliveries of newly stored events; `now` defaults to each event's created_at."""
    return [
        (it.event.organization_id, it.event.id, d, it.event.created_at if now is None else now)
        for it in created
        for d in it.deliveries
    ]


async def _insert_deliveries(tx: Connection, rows: Sequence[r.DeliveryRow]) -> int:
    """Store new deliveries, numbered per endpoint under the endpoints' sequence locks
    (lock_sequences, then insert_deliveries, each its own statement: migration 0021 says why),
    then move the endpoints' counters and their subjects' latest events on to what was stored.
    Answers how many were stored (a pair that has a delivery already is not)."""
    if not rows:
        return 0
    endpoint_ids = sorted({d.endpoint_id for _, _, d, _ in rows})
    await tx.execute("lock_sequences", endpoint_ids=endpoint_ids)
    stored = await tx.fetch("insert_deliveries", rows=r.delivery_rows(rows))
    lasts: dict[str, int] = {}
    heads: dict[tuple[str, str], tuple[int, str]] = {}
    for row in stored:
        endpoint_id, sequence = row["endpoint_id"], int(row["sequence"])
        lasts[endpoint_id] = max(lasts.get(endpoint_id, 0), sequence)
        if row["subject"] is not None and row["status"] != DeliveryStatus.SKIPPED:
            key = (endpoint_id, row["subject"])
            if key not in heads or heads[key][0] < sequence:
                heads[key] = (sequence, row["event_id"])
    if lasts:
        await tx.execute(
            "advance_sequences",
            lasts=r.dumps([{"endpoint_id": e, "last": n} for e, n in sorted(lasts.items())]),
        )
    if heads:
        await tx.execute(
            "advance_subject_heads",
            heads=r.dumps(
                [
                    {"endpoint_id": e, "subject": subject, "event_id": event_id}
                    for (e, subject), (_, event_id) in sorted(heads.items())
                ]
            ),
        )
    return len(stored)


# What a delivery's outcome can leave it as that lets the next one of its subject go.
_SETTLED = frozenset({DeliveryStatus.SUCCEEDED.value, DeliveryStatus.FAILED.value})


async def _promote(tx: Connection, rows: Sequence[r.Row], now: float) -> int:
    """After ordered deliveries were settled, stopped or queued again (rows with endpoint_id,
    subject, ordered): under their endpoints' sequence locks, each such subject's next
    delivery is made due when none of its is pending or held. Answers how many were."""
    keys = sorted({(row["endpoint_id"], row["subject"]) for row in rows if row["ordered"]})
    if not keys:
        return 0
    await tx.execute("lock_sequences", endpoint_ids=sorted({e for e, _ in keys}))
    return await tx.execute(
        "promote_subjects",
        keys=r.dumps([{"endpoint_id": e, "subject": s} for e, s in keys]),
        now=now,
    )


async def _reorder_open_deliveries(tx: Connection, endpoint: Endpoint, now: float) -> None:
    """The endpoint's ordering changed: line its open deliveries up, or let them go."""
    await tx.execute("lock_sequences", endpoint_ids=[endpoint.id])
    name = (
        "order_open_deliveries"
        if endpoint.ordering == Ordering.SUBJECT
        else "unorder_open_deliveries"
    )
    await tx.execute(name, endpoint_id=endpoint.id, now=now)


def _any_pending(rows: Sequence[r.DeliveryRow]) -> bool:
    return any(d.status == DeliveryStatus.PENDING for _, _, d, _ in rows)


def _feed_query(
    name: str,
    organization_id: str,
    after: str | None,
    types: TypeFilter,
    limit: int,
    correlation_id: str | None,
) -> tuple[str, dict[str, Any]]:
    """A feed query (`list_events`, `events_page_fingerprint`) and its parameters: its
    `_by_correlation` variant, with its own index, when a correlation id narrows the feed.
    ValueError for a cursor the store did not make."""
    params: dict[str, Any] = {
        "organization_id": organization_id,
        "after_seq": r.decode_cursor(after),
        "limit": limit,
        **r.type_params(types),
    }
    if correlation_id is None:
        return name, params
    return f"{name}_by_correlation", {**params, "correlation_id": correlation_id}


def _page(
    rows: Sequence[r.Row],
    limit: int,
    item: Callable[[r.Row], T],
    cursor: Callable[[r.Row], str],
) -> Page[T]:
    """A keyset page from a query asked for `limit + 1` rows: the first `limit` as items, and
    the cursor of the last of them when the extra row says there is more."""
    page = rows[:limit]
    more = len(rows) > limit
    return Page(items=[item(row) for row in page], next_cursor=cursor(page[-1]) if more else None)


def _by_seq(row: r.Row) -> str:
    return r.encode_cursor(row["seq"])


def _by_id(row: r.Row) -> str:
    """For tables without a `seq`: the cursor names the last row by its id."""
    return r.encode_key_cursor(row["id"])


def _key(p: Projection) -> ProjectionKey:
    return (p.organization_id, p.kind, p.key)


def _projection_keys(items: Sequence[PublishItem]) -> list[ProjectionKey]:
    """The projection keys a publish touches, in key order (the order locks are taken in)."""
    return sorted(
        {(it.event.organization_id, u.kind, u.key) for it in items for u in it.projections}
    )


def _key_rows(keys: Sequence[ProjectionKey]) -> str:
    return r.dumps([{"organization_id": o, "kind": k, "key": x} for o, k, x in keys])


def _projection_changes(
    items: Sequence[PublishItem], current: dict[ProjectionKey, Projection], now: float | None
) -> dict[ProjectionKey, Projection]:
    """The projections a publish changes, by key, from their `current` rows: updates to the
    same key are applied in publish order on the state in memory, each write one version
    more; an update that changes nothing leaves its key out."""
    state_now = dict(current)
    changed: dict[ProjectionKey, Projection] = {}
    for it in items:
        ev = it.event
        for update in it.projections:
            key = (ev.organization_id, update.kind, update.key)
            before = state_now.get(key)
            state = update.apply(before)
            if state is None:
                continue
            state_now[key] = changed[key] = Projection(
                organization_id=ev.organization_id,
                kind=update.kind,
                key=update.key,
                state=state,
                version=1 if before is None else before.version + 1,
                updated_at=ev.created_at if now is None else now,
                source_created_at=ev.created_at,
                last_event_id=ev.id,
            )
    return changed


async def _apply_projections(
    tx: Connection, created: Sequence[PublishItem], now: float | None
) -> dict[ProjectionKey, Projection]:
    """Every projection update of the publish: lock the keys (in key order), read their current
    rows, write the changed ones. Answers the changed projections."""
    keys = _projection_keys(created)
    if not keys:
        return {}
    key_rows = _key_rows(keys)
    await tx.execute("lock_projections", keys=key_rows)
    rows = await tx.fetch("get_projections", keys=key_rows)
    current = {_key(p): p for p in map(r.projection_from_row, rows)}
    changed = _projection_changes(created, current, now)
    if changed:
        await tx.execute("upsert_projections", rows=r.dumps([changed[k] for k in sorted(changed)]))
    return changed


async def _rewrite_projections(
    tx: Connection, organization_id: str, updates: Sequence[ProjectionUpdate], now: float
) -> list[ProjectionKey]:
    """Apply `updates` to an organization's projections in place (not from an event: the last
    event and its time stay), under the same per-key locks as publishing; each changed one
    gets version+1 and updated_at now. Answers the keys changed."""
    keys = sorted({(organization_id, u.kind, u.key) for u in updates})
    if not keys:
        return []
    key_rows = _key_rows(keys)
    await tx.execute("lock_projections", keys=key_rows)
    rows = await tx.fetch("get_projections", keys=key_rows)
    current = {_key(p): p for p in map(r.projection_from_row, rows)}
    changed: dict[ProjectionKey, Projection] = {}
    for update in updates:
        key = (organization_id, update.kind, update.key)
        before = changed.get(key) or current.get(key)
        if before is None:
            continue
        state = update.apply(before)
        if state is None:
            continue
        changed[key] = replace(before, state=state, version=before.version + 1, updated_at=now)
    if changed:
        await tx.execute("upsert_projections", rows=r.dumps([changed[k] for k in sorted(changed)]))
    return sorted(changed)


def _compare_and_set_rows(
    changed: dict[ProjectionKey, Projection],
    believed: dict[ProjectionKey, Projection],
    keys: Sequence[ProjectionKey],
) -> str:
    """For the fast path: every key the publish touches, with the version it is believed to
    have (`expected`, null for absent) and, when it changes, its new row (`write`)."""
    rows = []
    for key in keys:
        row: dict[str, Any] = {"organization_id": key[0], "kind": key[1], "key": key[2]}
        if key in changed:
            row = r.as_row(changed[key])
        before = believed.get(key)
        row["expected"] = None if before is None else before.version
        row["write"] = key in changed
        rows.append(row)
    return r.dumps(rows)


def _delivery_history_query(flt: DeliveryFilter) -> str:
    """The list_deliveries variant whose index fits the filter."""
    if flt.event_types is not None and not flt.event_types.empty:
        if flt.endpoint_id is not None:
            return "list_deliveries_of_types_for_endpoint"
        return "list_deliveries_of_types"
    if flt.endpoint_id is not None:
        return "list_deliveries_for_endpoint"
    if flt.event_id is not None:
        return "list_deliveries_for_event"
    return "list_deliveries"


def _unsendable(deliveries: list[Delivery], endpoints: dict[str, Endpoint]) -> list[str]:
    """Claimed deliveries whose endpoint is no longer active. Pausing or deleting an endpoint
    leaves deliveries that were in flight pending; if their worker died, they come back through
    an expired lease and must be held (paused) or failed (deleted) instead of sent."""
    return [
        d.id
        for d in deliveries
        if (ep := endpoints.get(d.endpoint_id)) is not None
        and (ep.deleted_at is not None or ep.status != EndpointStatus.ACTIVE)
    ]


def _assemble_claims(
    deliveries: list[Delivery],
    events: dict[tuple[str, str], Event],
    endpoints: dict[str, Endpoint],
) -> list[ClaimedDelivery]:
    """Pair claimed deliveries with their event and endpoint. A delivery whose event is gone
    (cannot happen while it is pending, short of manual deletes) is left leased and logged."""
    claims: list[ClaimedDelivery] = []
    skip = set(_unsendable(deliveries, endpoints))
    for d in deliveries:
        if d.id in skip:
            continue
        ev = events.get((d.organization_id, d.event_id))
        ep = endpoints.get(d.endpoint_id)
        if ev is None or ep is None:
            log.error(
                "claimed delivery without its event or endpoint",
                extra={"action": "store.claim_orphan", "delivery_id": d.id},
            )
            continue
        claims.append(ClaimedDelivery(delivery=d, event=ev, endpoint=ep))
    return claims


def _locked_endpoints(outcomes: Sequence[AttemptOutcome]) -> list[str]:
    """The endpoints sent to, locked before their deliveries and in id order, as pause, resume
    and delete lock them: the two cannot deadlock."""
    return sorted({o.endpoint_id for o in outcomes})


def _log_dropped(outcomes: Sequence[AttemptOutcome], kept: Container[str]) -> None:
    """Each outcome not written: its lease was lost, or its delivery came twice (the first
    counts)."""
    seen: set[str] = set()
    for o in outcomes:
        if o.delivery_id in kept and o.delivery_id not in seen:
            seen.add(o.delivery_id)
        else:
            log.warning(
                "outcome dropped: lease lost",
                extra={"action": "store.lease_lost", "delivery_id": o.delivery_id},
            )


__all__ = [
    "BacklogStats",
    "Conflict",
    "DeliveryFilter",
    "EndpointBacklog",
    "EndpointHour",
    "ErasureCounts",
    "MigrationStatus",
    "NotFound",
    "PortalLinkUse",
    "ProjectionLookup",
    "ProjectionUpdate",
    "PublishItem",
    "PublishResult",
    "Store",
    "StoreError",
    "Subscribers",
    "SubscribersChanged",
    "TypeFilter",
    "WakeupCallback",
]
