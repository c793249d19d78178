"""PostgreSQL implementation of the store: an asyncpg pool shared by any number of API and worker
processes.

Batches travel as arrays (`unnest`), so publishing or recording a batch costs a fixed number of
round trips. Claiming uses `FOR UPDATE SKIP LOCKED`. Commits that make deliveries due also
`pg_notify('tidings_wakeup')`: in the same transaction where it is rare (resume, replay,
release), after commit and coalesced for publishing (`_announce`). `listen()` keeps a dedicated
connection that turns those notifications into wake-up callbacks (and reconnects when it drops).
A lost notification costs at most the worker's idle poll, never a delivery.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections.abc import AsyncIterator, Iterator, Sequence
from typing import Any

import asyncpg
import orjson

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
    Event,
    NewDelivery,
    Organization,
    Page,
    Partner,
    PortalLink,
    Projection,
)
from tidings.store import _common as c
from tidings.store.base import (
    BacklogStats,
    Conflict,
    DeliveryFilter,
    MigrationStatus,
    NotFound,
    PortalLinkUse,
    PublishItem,
    PublishResult,
    Store,
    StoreError,
    Subscribers,
    SubscribersChanged,
    TypeFilter,
    WakeupCallback,
)
from tidings.ttlcache import TtlCache

log = logging.getLogger(__name__)

WAKEUP_CHANNEL = "tidings_wakeup"
POOL_MIN_CONNECTIONS = 1
POOL_MAX_CONNECTIONS = 10
LISTEN_RETRY_MAX_SECONDS = 30.0
LISTEN_CHECK_SECONDS = 30.0  # how often an idle LISTEN connection is checked
LISTEN_CHECK_TIMEOUT_SECONDS = 5.0
# Sent with each new connection (no round trip of its own). PostgreSQL gives a prepared
# statement a generic plan after five runs, costed on the tables' size at that moment, and keeps
# it until the next ANALYZE of a table it reads. A process that starts on a new or quiet database
# makes those plans on near-empty tables: sequential scans, which then read every event or
# delivery on each claim as the tables grow (the latency bench: 3-8 ms per claim reading all of
# `events` at 6,000 events, with autovacuum off). Planning each run with its parameters costs
# ~0.1 ms per statement here, and the latency bench measured less PostgreSQL CPU per event with
# it, not more. The PL/pgSQL functions opt out (migration 0006): they keep cached plans, made
# without sequential scans, since planning their statements on every call slowed drains.
SESSION_SETTINGS = {"plan_cache_mode": "force_custom_plan"}
_Q = c.load_queries("postgres")
_load = c.loads_decoded
_DRIVER_ERRORS = (asyncpg.PostgresError, asyncpg.InterfaceError, OSError, TimeoutError)
# Raised by tidings_publish (migration 0003) when its premise does not hold.
_PREMISE_FAILED = {"TD001", "TD002"}
# Publishing keeps, per process, the organizations' subscribed endpoints and the projections it
# last wrote or read, so a publish is one round trip; tidings_publish checks both against the
# database (endpoints by organizations.endpoints_version, projections by version) and answers a
# mismatch instead of storing, so a stale or missing entry costs a round trip, never a wrong
# write. (Projection rows are never deleted and a key's version only grows, so an entry whose
# version matches the row's holds the row's state.)
SUBSCRIBERS_CACHE_ORGANIZATIONS = 1_000
PROJECTION_CACHE_KEYS = 10_000
PUBLISH_TRIES = 3  # then the locking path, which reads under the keys' locks


@contextlib.contextmanager
def _mapped_errors() -> Iterator[None]:
    """The one place where asyncpg errors become StoreError."""
    try:
        yield
    except asyncpg.UniqueViolationError as exc:
        raise Conflict(str(exc)) from exc
    except _DRIVER_ERRORS as exc:
        raise StoreError(f"{type(exc).__name__}: {exc}") from exc


async def _init_connection(conn: Any) -> None:
    await conn.set_type_codec(
        "jsonb",
        encoder=lambda value: orjson.dumps(value).decode(),
        decoder=orjson.loads,
        schema="pg_catalog",
        format="text",
    )


async def _reset_connection(conn: Any) -> None:
    """Run when a connection goes back to the pool, after asyncpg has rolled back any open
    transaction. asyncpg's default adds a round trip (unlock advisory locks, close cursors,
    UNLISTEN, RESET ALL) to every release; the store takes only transaction-scoped locks,
    never SETs, LISTENs on its own connection and opens no cursor outside a transaction, so
    there is nothing else to reset. (The one session lock, the migration lock, is released
    in a finally on the same connection.)"""


def _rowcount(status: str) -> int:
    """'UPDATE 3' / 'INSERT 0 3' / 'DELETE 3' -> 3."""
    try:
        return int(status.rsplit(" ", 1)[-1])
    except ValueError:
        return 0


def _type_args(types: TypeFilter) -> tuple[bool, list[str], list[str]]:
    return types.empty, list(types.exact), list(types.prefixes)


class PostgresStore(Store):
    def __init__(
        self,
        url: str,
        *,
        min_connections: int = POOL_MIN_CONNECTIONS,
        max_connections: int = POOL_MAX_CONNECTIONS,
    ) -> None:
        self._url = url
        self._min = min_connections
        self._max = max(max_connections, min_connections)
        self._pool: Any = None
        self._wakeups: list[WakeupCallback] = []
        self._listener: Any = None
        self._listener_lost: asyncio.Event | None = None
        self._listen_task: asyncio.Task[None] | None = None
        self._announcer: asyncio.Task[None] | None = None
        self._announce_wanted = False
        self._subscribers: TtlCache[str, Subscribers] = TtlCache(
            math.inf, SUBSCRIBERS_CACHE_ORGANIZATIONS, lru=True
        )
        self._projections: TtlCache[c.ProjectionKey, Projection] = TtlCache(
            math.inf, PROJECTION_CACHE_KEYS, lru=True
        )

    # ---- plumbing -----------------------------------------------------------------------------
    @contextlib.asynccontextmanager
    async def _acquire(self) -> AsyncIterator[Any]:
        if self._pool is None:
            raise StoreError("store is not connected")
        with _mapped_errors():
            async with self._pool.acquire() as conn:
                yield conn

    @contextlib.asynccontextmanager
    async def _tx(self) -> AsyncIterator[Any]:
        async with self._acquire() as conn, conn.transaction():
            yield conn

    def _wake(self) -> None:
        for callback in list(self._wakeups):
            try:
                callback()
            except Exception:  # a broken listener must not fail the writer
                log.exception("wakeup callback failed", extra={"action": "store.wakeup"})

    def _announce(self) -> None:
        """Deliveries were published: wake this process's listeners now and other processes'
        workers with one NOTIFY sent after commit. A NOTIFY inside the publishing transaction
        would take PostgreSQL's database-wide notify lock from its commit until that commit is
        flushed, so concurrent publishes would commit one fsync at a time. Coalesced: one
        NOTIFY in flight per process, and publishes committed meanwhile share the next one."""
        self._wake()
        self._announce_wanted = True
        if self._announcer is None or self._announcer.done():
            self._announcer = asyncio.get_running_loop().create_task(self._send_announcements())

    async def _send_announcements(self) -> None:
        while self._announce_wanted and self._pool is not None:
            self._announce_wanted = False
            try:
                async with self._acquire() as conn:
                    await conn.execute(_Q["notify_wakeup"])
            except StoreError as exc:  # the workers' idle poll finds the deliveries
                log.warning(
                    "wakeup notification not sent",
                    extra={"action": "store.announce", "error": str(exc)},
                )
                return

    # ---- lifecycle ----------------------------------------------------------------------------
    async def connect(self) -> None:
        if self._pool is not None:
            return
        with _mapped_errors():
            self._pool = await asyncpg.create_pool(
                self._url,
                min_size=self._min,
                max_size=self._max,
                init=_init_connection,
                reset=_reset_connection,
                server_settings=SESSION_SETTINGS,
            )

    async def close(self) -> None:
        announcer, self._announcer = self._announcer, None
        if announcer is not None:  # the last publishes' notification still goes out
            with contextlib.suppress(Exception):
                await asyncio.wait_for(announcer, LISTEN_CHECK_TIMEOUT_SECONDS)
        task, self._listen_task = self._listen_task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        listener, self._listener = self._listener, None
        pool, self._pool = self._pool, None
        with _mapped_errors():
            if listener is not None and not listener.is_closed():
                await listener.close()
            if pool is not None:
                await pool.close()

    async def migrate(self) -> list[int]:
        applied: list[int] = []
        async with self._acquire() as conn:
            await conn.execute(_Q["migration_lock"])  # concurrent `migrate` calls queue here
            try:
                await conn.execute(_Q["create_migrations_table"])
                done = {r["version"] for r in await conn.fetch(_Q["applied_migrations"])}
                for m in c.load_migrations("postgres"):
                    if m.version in done:
                        continue
                    async with conn.transaction():
                        await conn.execute(m.sql)
                        await conn.execute(_Q["record_migration"], m.version, m.name)
                    applied.append(m.version)
            finally:
                await conn.execute(_Q["migration_unlock"])
        return applied

    async def migration_status(self) -> MigrationStatus:
        latest = max((m.version for m in c.load_migrations("postgres")), default=0)
        async with self._acquire() as conn:
            try:
                rows = await conn.fetch(_Q["applied_migrations"])
            except asyncpg.UndefinedTableError:
                rows = []
        return MigrationStatus(current=max((r["version"] for r in rows), default=0), latest=latest)

    async def ping(self) -> None:
        async with self._acquire() as conn:
            await conn.fetchval(_Q["ping"])

    def add_wakeup_listener(self, callback: WakeupCallback) -> None:
        self._wakeups.append(callback)

    async def listen(self) -> None:
        if self._listen_task is not None:
            return
        with _mapped_errors():
            await self._open_listener()
        self._listen_task = asyncio.create_task(self._keep_listening(), name="tidings-listen")

    async def _open_listener(self) -> None:
        conn = await asyncpg.connect(self._url)
        lost = asyncio.Event()
        conn.add_termination_listener(lambda _conn: lost.set())
        await conn.add_listener(WAKEUP_CHANNEL, self._on_notification)
        self._listener, self._listener_lost = conn, lost

    async def _listener_alive(self) -> bool:
        try:
            await self._listener.fetchval(_Q["ping"], timeout=LISTEN_CHECK_TIMEOUT_SECONDS)
        except (TimeoutError, *_DRIVER_ERRORS):
            return False
        return True

    def _on_notification(self, *_args: object) -> None:
        self._wake()

    async def _keep_listening(self) -> None:
        """Reopen the LISTEN connection whenever it drops, with capped exponential backoff."""
        while True:
            assert self._listener_lost is not None
            try:
                await asyncio.wait_for(self._listener_lost.wait(), LISTEN_CHECK_SECONDS)
            except TimeoutError:
                if await self._listener_alive():
                    continue
                self._listener.terminate()  # a silent network failure: start over
            log.warning("wakeup listener lost; reconnecting", extra={"action": "store.listen"})
            delay = 0.2
            while True:
                try:
                    await self._open_listener()
                    break
                except _DRIVER_ERRORS as exc:
                    log.warning(
                        "wakeup listener reconnect failed",
                        extra={"action": "store.listen", "error": type(exc).__name__},
                    )
                    await asyncio.sleep(delay)
                    delay = min(delay * 2, LISTEN_RETRY_MAX_SECONDS)
            log.info("wakeup listener reconnected", extra={"action": "store.listen"})
            self._wake()  # notifications sent while we were away are lost: look once

    # ---- organizations, keys, partners --------------------------------------------------------
    async def create_organization(
        self, org: Organization, first_key: ApiKey, key_hash: str
    ) -> None:
        async with self._tx() as conn:
            await conn.execute(_Q["insert_organization"], org.id, org.name, org.created_at)
            await conn.execute(_Q["insert_api_key"], *_key_args(first_key, key_hash))

    async def get_organization(self, organization_id: str) -> Organization | None:
        async with self._acquire() as conn:
            row = await conn.fetchrow(_Q["get_organization"], organization_id)
        return None if row is None else c.organization_from_row(row)

    async def create_api_key(self, key: ApiKey, key_hash: str) -> None:
        async with self._acquire() as conn:
            await conn.execute(_Q["insert_api_key"], *_key_args(key, key_hash))

    async def ensure_platform_key(self, key: ApiKey, key_hash: str) -> None:
        async with self._acquire() as conn:
            await conn.execute(_Q["ensure_platform_key"], *_key_args(key, key_hash))

    async def find_api_key(self, key_hash: str) -> ApiKey | None:
        async with self._acquire() as conn:
            row = await conn.fetchrow(_Q["find_api_key"], key_hash)
        return None if row is None else c.api_key_from_row(row)

    async def create_partner(self, partner: Partner) -> None:
        async with self._acquire() as conn:
            await conn.execute(
                _Q["insert_partner"],
                partner.organization_id,
                partner.partner_uuid,
                partner.name,
                partner.created_at,
            )

    async def list_partners(self, organization_id: str) -> list[Partner]:
        async with self._acquire() as conn:
            rows = await conn.fetch(_Q["list_partners"], organization_id)
        return [c.partner_from_row(r) for r in rows]

    # ---- endpoints ----------------------------------------------------------------------------
    async def create_endpoint(self, endpoint: Endpoint) -> None:
        ep = endpoint
        async with self._acquire() as conn:
            await conn.execute(
                _Q["insert_endpoint"],
                ep.id,
                ep.organization_id,
                ep.url,
                list(ep.event_types),
                ep.format,
                c.secrets_to_json(ep.secrets),
                str(ep.status),
                None if ep.partner_ids is None else list(ep.partner_ids),
                None if ep.accepted_schema_versions is None else list(ep.accepted_schema_versions),
                list(ep.sources),
                ep.description,
                ep.headers,
                ep.rate_limit_per_second,
                ep.pause_reason,
                ep.failure_streak,
                ep.failing_since,
                ep.last_success_at,
                ep.created_at,
                ep.updated_at,
                ep.deleted_at,
            )

    async def get_endpoint(
        self, organization_id: str, endpoint_id: str, *, include_deleted: bool = False
    ) -> Endpoint | None:
        async with self._acquire() as conn:
            row = await conn.fetchrow(
                _Q["get_endpoint"], organization_id, endpoint_id, include_deleted
            )
        return None if row is None else c.endpoint_from_row(row, _load)

    async def list_endpoints(
        self, organization_id: str, *, limit: int, cursor: str | None
    ) -> Page[Endpoint]:
        after = c.decode_cursor(cursor)
        async with self._acquire() as conn:
            rows = await conn.fetch(_Q["list_endpoints"], organization_id, after, limit + 1)
        more = len(rows) > limit
        rows = rows[:limit]
        return Page(
            items=[c.endpoint_from_row(r, _load) for r in rows],
            next_cursor=c.encode_cursor(rows[-1]["seq"]) if more else None,
        )

    async def list_subscribed_endpoints(self, organization_id: str) -> list[Endpoint]:
        return list((await self._read_subscribers(organization_id)).endpoints)

    async def subscribed_endpoints(self, organization_id: str) -> Subscribers:
        """From memory when this process has read them and `publish` has not found them
        changed since; else read with their version in one statement."""
        known = self._subscribers.get(organization_id, 0.0)
        if known is not None:
            return known
        answer = await self._read_subscribers(organization_id)
        if answer.version is not None:
            self._subscribers.put(organization_id, answer, 0.0)
        return answer

    async def _read_subscribers(self, organization_id: str) -> Subscribers:
        async with self._acquire() as conn:
            rows = await conn.fetch(_Q["list_subscribed_endpoints"], organization_id)
        if not rows:  # no such organization: nothing to keep or check
            return Subscribers([])
        return Subscribers(
            [c.endpoint_from_row(r, _load) for r in rows if r["id"] is not None],
            version=rows[0]["subscribers_version"],
        )

    def _subscribers_changed(self, organization_ids: Sequence[str]) -> SubscribersChanged:
        """Forget what this process kept of their endpoints; the error for `publish` to raise."""
        for org in organization_ids:
            self._subscribers.discard(org)
        return SubscribersChanged(organization_ids)

    async def update_endpoint(self, endpoint: Endpoint) -> None:
        ep = endpoint
        async with self._acquire() as conn:
            status = await conn.execute(
                _Q["update_endpoint"],
                ep.organization_id,
                ep.id,
                ep.url,
                list(ep.event_types),
                ep.format,
                None if ep.partner_ids is None else list(ep.partner_ids),
                None if ep.accepted_schema_versions is None else list(ep.accepted_schema_versions),
                list(ep.sources),
                ep.description,
                ep.headers,
                ep.rate_limit_per_second,
                c.secrets_to_json(ep.secrets),
                ep.updated_at,
            )
        if _rowcount(status) == 0:
            raise NotFound(f"endpoint {ep.id} not found")

    async def delete_endpoint(self, organization_id: str, endpoint_id: str, now: float) -> bool:
        async with self._tx() as conn:
            status = await conn.execute(_Q["delete_endpoint"], organization_id, endpoint_id, now)
            if _rowcount(status) == 0:
                return False
            await conn.execute(_Q["fail_endpoint_deliveries"], endpoint_id, now)
        return True

    async def pause_endpoint(
        self, organization_id: str, endpoint_id: str, reason: str, now: float
    ) -> bool:
        async with self._tx() as conn:
            status = await conn.execute(
                _Q["pause_endpoint"], organization_id, endpoint_id, reason, now
            )
            if _rowcount(status) == 0:
                return False
            await conn.execute(_Q["hold_endpoint_deliveries"], endpoint_id, now)
        return True

    async def resume_endpoint(self, organization_id: str, endpoint_id: str, now: float) -> int:
        async with self._tx() as conn:
            status = await conn.execute(_Q["resume_endpoint"], organization_id, endpoint_id, now)
            if _rowcount(status) == 0:
                return 0
            released = _rowcount(
                await conn.execute(_Q["release_held_deliveries"], endpoint_id, now)
            )
            if released:
                await conn.execute(_Q["notify_wakeup"])
        if released:
            self._wake()
        return released

    async def set_endpoint_secrets(
        self, organization_id: str, endpoint_id: str, secrets: Sequence[EndpointSecret], now: float
    ) -> None:
        async with self._acquire() as conn:
            status = await conn.execute(
                _Q["set_endpoint_secrets"],
                organization_id,
                endpoint_id,
                c.secrets_to_json(list(secrets)),
                now,
            )
        if _rowcount(status) == 0:
            raise NotFound(f"endpoint {endpoint_id} not found")

    # ---- events -------------------------------------------------------------------------------
    async def publish(
        self, items: Sequence[PublishItem], now: float | None = None
    ) -> list[PublishResult]:
        if not items:
            return []
        results = await self._publish_new(items, now)
        if results is None:
            results = await self._publish_locking(items, now)
        return results

    async def _publish_new(
        self, items: Sequence[PublishItem], now: float | None
    ) -> list[PublishResult] | None:
        """The common case in one round trip and no explicit transaction: `tidings_publish`
        checks the endpoint versions the items were planned with and the projection versions
        this process believes (the ones it last wrote or read; a key it has not seen, absent),
        then stores events, deliveries and the projection changes as one statement. A
        projection not as believed is answered with its current row, and the changes are
        computed again from it. None when an event exists already or the projections kept
        changing (nothing stored): the caller takes the locking path."""
        keys = c.projection_keys(items)
        planned = c.endpoint_versions(items)
        event_rows = c.event_rows([i.event for i in items], nested_as_text=False)
        deliveries = c.new_delivery_rows(items, now)
        delivery_rows = c.delivery_rows(deliveries)
        endpoint_rows = c.dumps(
            [{"organization_id": org, "version": v} for org, v in sorted(planned.items())]
        )
        answer: Any = None
        changed: dict[c.ProjectionKey, Projection] = {}
        async with self._acquire() as conn:
            for _ in range(PUBLISH_TRIES):
                believed = self._believed_projections(keys)
                changed = c.projection_changes(items, believed, now)
                try:
                    answer = await conn.fetchval(
                        _Q["publish"],
                        event_rows,
                        delivery_rows,
                        c.projection_rows(changed, read=believed, keys=keys),
                        endpoint_rows,
                    )
                except asyncpg.PostgresError as exc:
                    if getattr(exc, "sqlstate", None) in _PREMISE_FAILED:
                        return None
                    raise
                if "projections" not in answer:
                    break
                for key in keys:
                    self._projections.discard(key)
                for row in answer["projections"]:
                    self._remember_projection(c.projection_from_row(row, _load))
            else:
                return None
        if "endpoints" in answer:
            raise self._subscribers_changed(answer["endpoints"])
        events, created = c.split_published(
            items, {(org, event_id): int(seq) for org, event_id, seq in answer["stored"]}
        )
        if len(created) != len(items):  # the function refuses this; never half-answer
            raise StoreError("publish stored a different number of events than it was given")
        for proj in changed.values():
            self._remember_projection(proj)
        if c.any_pending(deliveries):
            self._announce()
        return [PublishResult(event=ev, created=True) for ev in events if ev is not None]

    def _believed_projections(
        self, keys: Sequence[c.ProjectionKey]
    ) -> dict[c.ProjectionKey, Projection]:
        known = {key: self._projections.get(key, 0.0) for key in keys}
        return {key: proj for key, proj in known.items() if proj is not None}

    def _remember_projection(self, proj: Projection) -> None:
        """Only what is committed: a row read, or a write whose statement returned."""
        self._projections.put((proj.organization_id, proj.kind, proj.key), proj, 0.0)

    async def _publish_locking(
        self, items: Sequence[PublishItem], now: float | None
    ) -> list[PublishResult]:
        """Any publish, in one transaction that locks the projection keys before reading them;
        events that exist already are answered as stored."""
        planned = c.endpoint_versions(items)
        async with self._tx() as conn:
            if planned:
                rows = await conn.fetch(_Q["endpoints_versions"], list(planned))
                stale = c.stale_organizations(
                    planned, {r["id"]: r["endpoints_version"] for r in rows}
                )
                if stale:
                    raise self._subscribers_changed(stale)
            rows = await conn.fetch(
                _Q["insert_events"], c.event_rows([i.event for i in items], nested_as_text=False)
            )
            stored, created = c.split_published(
                items, {(r["organization_id"], r["id"]): int(r["seq"]) for r in rows}
            )
            results = [
                PublishResult(event=ev, created=True)
                if ev is not None
                else PublishResult(event=await self._existing_event(conn, it.event), created=False)
                for it, ev in zip(items, stored, strict=True)
            ]
            deliveries = c.new_delivery_rows(created, now)
            if deliveries:
                await conn.execute(_Q["insert_deliveries"], c.delivery_rows(deliveries))
            changed = await self._apply_projections(conn, created, now)
        for proj in changed.values():
            self._remember_projection(proj)
        if c.any_pending(deliveries):
            self._announce()
        return results

    async def _apply_projections(
        self, conn: Any, created: Sequence[PublishItem], now: float | None
    ) -> dict[c.ProjectionKey, Projection]:
        """Every projection update of the batch in three round trips: lock the keys (in key
        order), read their current rows, write the changed ones (in key order). Answers the
        changed projections."""
        keys = c.projection_keys(created)
        if not keys:
            return {}
        key_rows = c.projection_key_rows(keys)
        await conn.execute(_Q["lock_projections"], key_rows)
        current: dict[c.ProjectionKey, Projection] = {}
        for row in await conn.fetch(_Q["get_projections"], key_rows):
            proj = c.projection_from_row(row, _load)
            current[(proj.organization_id, proj.kind, proj.key)] = proj
        changed = c.projection_changes(created, current, now)
        if changed:
            await conn.execute(_Q["upsert_projections"], c.projection_rows(changed))
        return changed

    async def _existing_event(self, conn: Any, ev: Event) -> Event:
        row = await conn.fetchrow(_Q["get_event"], ev.organization_id, ev.id)
        if row is None and ev.idempotency_key is not None:
            row = await conn.fetchrow(
                _Q["get_event_by_idempotency_key"], ev.organization_id, ev.idempotency_key
            )
        if row is None:
            raise StoreError(f"event {ev.id} was neither inserted nor found")
        return c.event_from_row(row, _load)

    async def get_event(self, organization_id: str, event_id: str) -> Event | None:
        async with self._acquire() as conn:
            row = await conn.fetchrow(_Q["get_event"], organization_id, event_id)
        return None if row is None else c.event_from_row(row, _load)

    async def get_events(self, organization_id: str, event_ids: Sequence[str]) -> dict[str, Event]:
        ids = sorted(set(event_ids))
        if not ids:
            return {}
        async with self._acquire() as conn:
            rows = await conn.fetch(_Q["events_by_keys"], [organization_id] * len(ids), ids)
        return {r["id"]: c.event_from_row(r, _load) for r in rows}

    async def list_events(
        self, organization_id: str, *, after: str | None, types: TypeFilter, limit: int
    ) -> Page[Event]:
        after_seq = c.decode_cursor(after)
        async with self._acquire() as conn:
            rows = await conn.fetch(
                _Q["list_events"], organization_id, after_seq, *_type_args(types), limit
            )
        items = [c.event_from_row(r, _load) for r in rows]
        return Page(items=items, next_cursor=c.encode_cursor(items[-1].seq) if items else after)

    async def events_page_fingerprint(
        self, organization_id: str, *, after: str | None, types: TypeFilter, limit: int
    ) -> tuple[int, int]:
        after_seq = c.decode_cursor(after)
        async with self._acquire() as conn:
            row = await conn.fetchrow(
                _Q["events_page_fingerprint"], organization_id, after_seq, *_type_args(types), limit
            )
        return int(row["n"]), int(row["last_seq"])

    # ---- deliveries: worker side --------------------------------------------------------------
    async def claim_due(
        self,
        worker_id: str,
        now: float,
        lease_seconds: float,
        limit: int,
        due_from: float = -math.inf,
    ) -> list[ClaimedDelivery]:
        async with self._acquire() as conn:
            rows = await conn.fetch(
                _Q["claim_due"], worker_id, now, now + lease_seconds, limit, due_from
            )
            if not rows:
                return []
            deliveries = sorted(
                (c.delivery_from_row(r) for r in rows), key=lambda d: (d.next_attempt_at, d.seq)
            )
            keys = sorted({(d.organization_id, d.event_id) for d in deliveries})
            event_rows = await conn.fetch(
                _Q["events_by_keys"], [k[0] for k in keys], [k[1] for k in keys]
            )
            endpoint_rows = await conn.fetch(
                _Q["endpoints_by_ids"], sorted({d.endpoint_id for d in deliveries})
            )
            events = {
                (r["organization_id"], r["id"]): c.event_from_row(r, _load) for r in event_rows
            }
            endpoints = {r["id"]: c.endpoint_from_row(r, _load) for r in endpoint_rows}
            stale = c.unsendable(deliveries, endpoints)
            if stale:
                await conn.execute(_Q["settle_unsendable_claims"], stale, worker_id, now)
        return c.assemble_claims(deliveries, events, endpoints, log)

    async def record_outcomes(
        self, worker_id: str, outcomes: Sequence[AttemptOutcome], now: float
    ) -> list[EndpointHealth]:
        if not outcomes:
            return []
        async with self._acquire() as conn:
            # one statement, its own transaction: migration 0005 says what it does and in which
            # order (endpoints locked first, in id order)
            answer = await conn.fetchval(
                _Q["record_outcomes"],
                worker_id,
                c.outcome_attempt_rows(outcomes),
                now,
                [o.delivery_id for o in outcomes],
                sorted({o.endpoint_id for o in outcomes}),
            )
        written = orjson.loads(answer)
        c.outcomes_with_lease(outcomes, set(written["kept"]), log)  # logs the dropped ones
        return sorted(
            (c.health_from_row(r) for r in written["health"]), key=lambda h: h.endpoint_id
        )

    async def release(
        self,
        worker_id: str,
        delivery_ids: Sequence[str],
        next_attempt_at: float | Sequence[float],
    ) -> int:
        """One statement, no transaction around it. Other processes' workers are told only
        when something was given back due already (a deferral into the future is found by the
        releasing worker itself, or by the idle poll)."""
        if not delivery_ids:
            return 0
        due = c.release_due(delivery_ids, next_attempt_at)
        async with self._acquire() as conn:
            count = _rowcount(await conn.execute(_Q["release"], list(delivery_ids), worker_id, due))
        soonest = (
            next_attempt_at
            if isinstance(next_attempt_at, int | float)
            else min(next_attempt_at, default=0.0)
        )
        if count and soonest <= time.time():
            self._announce()
        return count

    async def backlog_stats(self, now: float) -> BacklogStats:
        async with self._acquire() as conn:
            row = await conn.fetchrow(_Q["backlog_stats"], now)
        return BacklogStats(due=int(row["due"]), oldest_due_at=row["oldest_due_at"])

    async def count_deliveries_by_status(self) -> dict[str, int]:
        async with self._acquire() as conn:
            rows = await conn.fetch(_Q["count_deliveries_by_status"])
        return {r["status"]: int(r["n"]) for r in rows}

    async def count_endpoints_by_status(self) -> dict[str, int]:
        async with self._acquire() as conn:
            rows = await conn.fetch(_Q["count_endpoints_by_status"])
        return {r["status"]: int(r["n"]) for r in rows}

    async def worst_endpoints(self, limit: int) -> list[tuple[str, str, int]]:
        async with self._acquire() as conn:
            rows = await conn.fetch(_Q["worst_endpoints"], limit)
        return [(r["organization_id"], r["id"], int(r["failure_streak"])) for r in rows]

    async def purge_history(self, cutoff: float, batch_size: int) -> int:
        deleted = 0
        async with self._tx() as conn:
            rows = await conn.fetch(_Q["purge_select_deliveries"], cutoff, batch_size)
            if rows:
                await conn.execute(_Q["purge_attempts"], [r["id"] for r in rows])
                deleted += _rowcount(
                    await conn.execute(_Q["purge_deliveries"], [r["seq"] for r in rows])
                )
            deleted += _rowcount(await conn.execute(_Q["purge_events"], cutoff, batch_size))
        return deleted

    # ---- deliveries: history and replay -------------------------------------------------------
    async def get_delivery(self, organization_id: str, delivery_id: str) -> Delivery | None:
        async with self._acquire() as conn:
            row = await conn.fetchrow(_Q["get_delivery"], organization_id, delivery_id)
        return None if row is None else c.delivery_from_row(row)

    async def list_deliveries(
        self, organization_id: str, flt: DeliveryFilter, *, limit: int, cursor: str | None
    ) -> Page[Delivery]:
        before = c.decode_cursor(cursor)
        async with self._acquire() as conn:
            rows = await conn.fetch(
                _Q[c.delivery_history_query(flt.endpoint_id, flt.event_id)],
                organization_id,
                before,
                flt.endpoint_id,
                flt.event_id,
                None if flt.status is None else str(flt.status),
                flt.created_after,
                flt.created_before,
                limit + 1,
            )
        more = len(rows) > limit
        items = [c.delivery_from_row(r) for r in rows[:limit]]
        return Page(items=items, next_cursor=c.encode_cursor(items[-1].seq) if more else None)

    async def list_attempts(self, organization_id: str, delivery_id: str) -> list[Attempt]:
        async with self._acquire() as conn:
            rows = await conn.fetch(_Q["list_attempts"], organization_id, delivery_id)
        return [c.attempt_from_row(r) for r in rows]

    async def replay_delivery(
        self, organization_id: str, delivery_id: str, now: float
    ) -> Delivery | None:
        async with self._tx() as conn:
            row = await conn.fetchrow(_Q["replay_delivery"], organization_id, delivery_id, now)
            if row is None:
                row = await conn.fetchrow(_Q["get_delivery"], organization_id, delivery_id)
                return None if row is None else c.delivery_from_row(row)
            replayed = c.delivery_from_row(row)
            if replayed.status == DeliveryStatus.PENDING:
                await conn.execute(_Q["notify_wakeup"])
        if replayed.status == DeliveryStatus.PENDING:
            self._wake()
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
    ) -> int:
        async with self._tx() as conn:
            count = _rowcount(
                await conn.execute(
                    _Q["replay_endpoint_deliveries"],
                    organization_id,
                    endpoint_id,
                    since,
                    until,
                    [str(s) for s in statuses],
                    now,
                )
            )
            if count:
                await conn.execute(_Q["notify_wakeup"])
        if count:
            self._wake()
        return count

    async def revive_skipped_deliveries(
        self,
        organization_id: str,
        endpoint_id: str,
        revivals: Sequence[tuple[str, int]],
        now: float,
    ) -> int:
        if not revivals:
            return 0
        rows = c.dumps([{"id": d, "schema_version": v} for d, v in revivals])
        async with self._tx() as conn:
            count = _rowcount(
                await conn.execute(
                    _Q["revive_skipped_delivery"], organization_id, endpoint_id, rows, now
                )
            )
            if count:
                await conn.execute(_Q["notify_wakeup"])
        if count:
            self._wake()
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
        async with self._acquire() as conn:
            rows = await conn.fetch(
                _Q["events_without_delivery"],
                organization_id,
                endpoint_id,
                since,
                until,
                *_type_args(types),
                limit,
            )
        return [c.event_from_row(r, _load) for r in rows]

    async def add_deliveries(
        self, organization_id: str, pairs: Sequence[tuple[str, NewDelivery]], now: float
    ) -> int:
        if not pairs:
            return 0
        rows = [(organization_id, event_id, d, now) for event_id, d in pairs]
        async with self._tx() as conn:
            created = _rowcount(await conn.execute(_Q["insert_deliveries"], c.delivery_rows(rows)))
            wake = created > 0 and c.any_pending(rows)
            if wake:
                await conn.execute(_Q["notify_wakeup"])
        if wake:
            self._wake()
        return created

    # ---- projections --------------------------------------------------------------------------
    async def get_projection(self, organization_id: str, kind: str, key: str) -> Projection | None:
        async with self._acquire() as conn:
            row = await conn.fetchrow(_Q["get_projection"], organization_id, kind, key)
        return None if row is None else c.projection_from_row(row, _load)

    # ---- console sessions and portal links ----------------------------------------------------
    async def create_console_session(self, session: ConsoleSession, token_hash: str) -> None:
        async with self._acquire() as conn:
            await conn.execute(
                _Q["insert_console_session"],
                session.id,
                token_hash,
                session.key_id,
                str(session.kind),
                session.organization_id,
                session.read_only,
                session.created_at,
                session.expires_at,
            )

    async def find_console_session(self, token_hash: str, now: float) -> ConsoleSession | None:
        async with self._acquire() as conn:
            row = await conn.fetchrow(_Q["find_console_session"], token_hash, now)
        return None if row is None else c.console_session_from_row(row)

    async def delete_console_session(self, token_hash: str) -> bool:
        async with self._acquire() as conn:
            status = await conn.execute(_Q["delete_console_session"], token_hash)
        return _rowcount(status) > 0

    async def create_portal_link(self, link: PortalLink, token_hash: str) -> None:
        async with self._acquire() as conn:
            await conn.execute(
                _Q["insert_portal_link"],
                link.id,
                token_hash,
                link.organization_id,
                link.key_id,
                link.read_only,
                link.created_at,
                link.expires_at,
            )

    async def use_portal_link(self, token_hash: str, now: float) -> PortalLinkUse:
        async with self._acquire() as conn:
            row = await conn.fetchrow(_Q["use_portal_link"], token_hash, now)
            if row is not None:
                return PortalLinkUse(c.portal_link_from_row(row), opened=True)
            row = await conn.fetchrow(_Q["find_portal_link"], token_hash)
        return PortalLinkUse(None if row is None else c.portal_link_from_row(row), opened=False)

    async def purge_console_sessions(self, cutoff: float) -> int:
        async with self._tx() as conn:
            sessions = await conn.execute(_Q["purge_console_sessions"], cutoff)
            links = await conn.execute(_Q["purge_portal_links"], cutoff)
        return _rowcount(sessions) + _rowcount(links)


def _key_args(key: ApiKey, key_hash: str) -> tuple[Any, ...]:
    return (key.id, key_hash, str(key.kind), key.organization_id, key.created_at)
