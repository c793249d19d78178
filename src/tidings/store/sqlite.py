"""SQLite implementation of the store: aiosqlite, one connection in WAL mode, one process.

Writes run in `BEGIN IMMEDIATE` transactions; an asyncio.Lock serialises everything that uses the
one connection, so a reader never sees another coroutine's uncommitted transaction. Claiming is a
single `UPDATE ... RETURNING` over a `LIMIT`ed subquery inside such a transaction.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import sqlite3
from collections.abc import AsyncIterator, Iterator, Sequence
from pathlib import Path
from typing import Any

import aiosqlite

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
    TypeFilter,
    WakeupCallback,
)

log = logging.getLogger(__name__)

BUSY_TIMEOUT_MS = 5000
_Q = c.load_queries("sqlite")
_load = c.loads_text


def sqlite_path(url: str) -> str:
    """sqlite:///relative/path, sqlite:////absolute/path, sqlite://:memory:."""
    if not url.startswith("sqlite:"):
        raise ValueError("not a sqlite URL")
    rest = url[len("sqlite:") :]
    if rest in ("//:memory:", "///:memory:", ":memory:"):
        return ":memory:"
    if not rest.startswith("///"):
        raise ValueError("sqlite URL must look like sqlite:///path or sqlite://:memory:")
    path = rest[3:]
    if not path:
        raise ValueError("sqlite URL has no path")
    return path


@contextlib.contextmanager
def _mapped_errors() -> Iterator[None]:
    """The one place where sqlite3 errors become StoreError."""
    try:
        yield
    except sqlite3.IntegrityError as exc:
        if "UNIQUE" in str(exc) or "PRIMARY KEY" in str(exc):
            raise Conflict(str(exc)) from exc
        raise StoreError(str(exc)) from exc
    except sqlite3.Error as exc:
        raise StoreError(str(exc)) from exc


def _split_script(script: str) -> list[str]:
    statements: list[str] = []
    buffer = ""
    for line in script.splitlines(keepends=True):
        buffer += line
        if sqlite3.complete_statement(buffer):
            if buffer.strip():
                statements.append(buffer.strip())
            buffer = ""
    if buffer.strip() and not all(
        ln.strip().startswith("--") or not ln.strip() for ln in buffer.splitlines()
    ):
        raise ValueError("migration ends with an incomplete statement")
    return statements


def _type_params(types: TypeFilter) -> dict[str, Any]:
    return {
        "no_types": types.empty,
        "exact": c.dumps(list(types.exact)),
        "prefixes": c.dumps(list(types.prefixes)),
    }


def _endpoint_params(ep: Endpoint) -> dict[str, Any]:
    return {
        "id": ep.id,
        "organization_id": ep.organization_id,
        "url": ep.url,
        "event_types": c.dumps(list(ep.event_types)),
        "format": ep.format,
        "secrets": c.dumps(c.secrets_to_json(ep.secrets)),
        "status": str(ep.status),
        "partner_ids": None if ep.partner_ids is None else c.dumps(list(ep.partner_ids)),
        "accepted_schema_versions": None
        if ep.accepted_schema_versions is None
        else c.dumps(list(ep.accepted_schema_versions)),
        "sources": c.dumps(list(ep.sources)),
        "description": ep.description,
        "headers": c.dumps(ep.headers),
        "rate_limit_per_second": ep.rate_limit_per_second,
        "pause_reason": ep.pause_reason,
        "failure_streak": ep.failure_streak,
        "failing_since": ep.failing_since,
        "last_success_at": ep.last_success_at,
        "created_at": ep.created_at,
        "updated_at": ep.updated_at,
        "deleted_at": ep.deleted_at,
    }


class SqliteStore(Store):
    def __init__(self, url: str) -> None:
        self._path = sqlite_path(url)
        self._db: aiosqlite.Connection | None = None
        self._lock = asyncio.Lock()
        self._wakeups: list[WakeupCallback] = []

    # ---- plumbing -----------------------------------------------------------------------------
    @property
    def _conn(self) -> aiosqlite.Connection:
        if self._db is None:
            raise StoreError("store is not connected")
        return self._db

    @contextlib.asynccontextmanager
    async def _read(self) -> AsyncIterator[aiosqlite.Connection]:
        async with self._lock:
            with _mapped_errors():
                yield self._conn

    @contextlib.asynccontextmanager
    async def _write(self) -> AsyncIterator[aiosqlite.Connection]:
        async with self._lock:
            db = self._conn
            with _mapped_errors():
                await db.execute("BEGIN IMMEDIATE")
                try:
                    yield db
                    await db.execute("COMMIT")
                except BaseException:
                    if db.in_transaction:  # also when COMMIT itself failed
                        await db.execute("ROLLBACK")
                    raise

    async def _fetchall(
        self, db: aiosqlite.Connection, name: str, params: dict[str, Any]
    ) -> list[sqlite3.Row]:
        async with db.execute(_Q[name], params) as cur:
            return list(await cur.fetchall())

    async def _fetchone(
        self, db: aiosqlite.Connection, name: str, params: dict[str, Any]
    ) -> sqlite3.Row | None:
        async with db.execute(_Q[name], params) as cur:
            row: sqlite3.Row | None = await cur.fetchone()
            return row

    async def _rowcount(self, db: aiosqlite.Connection, name: str, params: dict[str, Any]) -> int:
        async with db.execute(_Q[name], params) as cur:
            return int(cur.rowcount)

    def _wake(self) -> None:
        for callback in list(self._wakeups):
            try:
                callback()
            except Exception:  # a broken listener must not fail the writer
                log.exception("wakeup callback failed", extra={"action": "store.wakeup"})

    # ---- lifecycle ----------------------------------------------------------------------------
    async def connect(self) -> None:
        if self._db is not None:
            return
        if self._path != ":memory:":
            Path(self._path).expanduser().parent.mkdir(parents=True, exist_ok=True)
        try:
            db = await aiosqlite.connect(self._path, isolation_level=None)
            db.row_factory = sqlite3.Row
            await db.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
            await db.execute("PRAGMA journal_mode = WAL")
            await db.execute("PRAGMA synchronous = NORMAL")
            await db.execute("PRAGMA foreign_keys = ON")
        except sqlite3.Error as exc:
            raise StoreError(f"cannot open SQLite database: {exc}") from exc
        self._db = db

    async def close(self) -> None:
        db, self._db = self._db, None
        if db is not None:
            with _mapped_errors():
                await db.close()

    async def migrate(self) -> list[int]:
        applied: list[int] = []
        async with self._write() as db:
            await db.execute(_Q["create_migrations_table"])
            done = {r[0] for r in await self._fetchall(db, "applied_migrations", {})}
            for m in c.load_migrations("sqlite"):
                if m.version in done:
                    continue
                for statement in _split_script(m.sql):
                    await db.execute(statement)
                await db.execute(
                    _Q["record_migration"],
                    {"version": m.version, "name": m.name},
                )
                applied.append(m.version)
        return applied

    async def migration_status(self) -> MigrationStatus:
        latest = max((m.version for m in c.load_migrations("sqlite")), default=0)
        async with self._read() as db:
            await db.execute(_Q["create_migrations_table"])
            rows = await self._fetchall(db, "applied_migrations", {})
        return MigrationStatus(current=max((r[0] for r in rows), default=0), latest=latest)

    async def ping(self) -> None:
        async with self._read() as db:
            await self._fetchone(db, "ping", {})

    def add_wakeup_listener(self, callback: WakeupCallback) -> None:
        self._wakeups.append(callback)

    async def listen(self) -> None:
        return None

    # ---- organizations, keys, partners --------------------------------------------------------
    async def create_organization(
        self, org: Organization, first_key: ApiKey, key_hash: str
    ) -> None:
        async with self._write() as db:
            await db.execute(
                _Q["insert_organization"],
                {"id": org.id, "name": org.name, "created_at": org.created_at},
            )
            await db.execute(_Q["insert_api_key"], _key_params(first_key, key_hash))

    async def get_organization(self, organization_id: str) -> Organization | None:
        async with self._read() as db:
            row = await self._fetchone(db, "get_organization", {"id": organization_id})
        return None if row is None else c.organization_from_row(row)

    async def create_api_key(self, key: ApiKey, key_hash: str) -> None:
        async with self._write() as db:
            await db.execute(_Q["insert_api_key"], _key_params(key, key_hash))

    async def ensure_platform_key(self, key: ApiKey, key_hash: str) -> None:
        async with self._write() as db:
            await db.execute(_Q["ensure_platform_key"], _key_params(key, key_hash))

    async def find_api_key(self, key_hash: str) -> ApiKey | None:
        async with self._read() as db:
            row = await self._fetchone(db, "find_api_key", {"key_hash": key_hash})
        return None if row is None else c.api_key_from_row(row)

    async def create_partner(self, partner: Partner) -> None:
        async with self._write() as db:
            await db.execute(
                _Q["insert_partner"],
                {
                    "organization_id": partner.organization_id,
                    "partner_uuid": partner.partner_uuid,
                    "name": partner.name,
                    "created_at": partner.created_at,
                },
            )

    async def list_partners(self, organization_id: str) -> list[Partner]:
        async with self._read() as db:
            rows = await self._fetchall(db, "list_partners", {"organization_id": organization_id})
        return [c.partner_from_row(r) for r in rows]

    # ---- endpoints ----------------------------------------------------------------------------
    async def create_endpoint(self, endpoint: Endpoint) -> None:
        async with self._write() as db:
            await db.execute(_Q["insert_endpoint"], _endpoint_params(endpoint))

    async def get_endpoint(
        self, organization_id: str, endpoint_id: str, *, include_deleted: bool = False
    ) -> Endpoint | None:
        async with self._read() as db:
            row = await self._fetchone(
                db,
                "get_endpoint",
                {
                    "organization_id": organization_id,
                    "id": endpoint_id,
                    "include_deleted": include_deleted,
                },
            )
        return None if row is None else c.endpoint_from_row(row, _load)

    async def list_endpoints(
        self, organization_id: str, *, limit: int, cursor: str | None
    ) -> Page[Endpoint]:
        after = c.decode_cursor(cursor)
        async with self._read() as db:
            rows = await self._fetchall(
                db,
                "list_endpoints",
                {"organization_id": organization_id, "after_seq": after, "limit": limit + 1},
            )
        more = len(rows) > limit
        rows = rows[:limit]
        return Page(
            items=[c.endpoint_from_row(r, _load) for r in rows],
            next_cursor=c.encode_cursor(rows[-1]["seq"]) if more else None,
        )

    async def list_subscribed_endpoints(self, organization_id: str) -> list[Endpoint]:
        async with self._read() as db:
            rows = await self._fetchall(
                db, "list_subscribed_endpoints", {"organization_id": organization_id}
            )
        return [c.endpoint_from_row(r, _load) for r in rows]

    async def update_endpoint(self, endpoint: Endpoint) -> None:
        params = _endpoint_params(endpoint)
        for unused in (
            "status",
            "pause_reason",
            "failure_streak",
            "failing_since",
            "last_success_at",
            "created_at",
            "deleted_at",
        ):
            del params[unused]
        async with self._write() as db:
            if await self._rowcount(db, "update_endpoint", params) == 0:
                raise NotFound(f"endpoint {endpoint.id} not found")

    async def delete_endpoint(self, organization_id: str, endpoint_id: str, now: float) -> bool:
        async with self._write() as db:
            key = {"organization_id": organization_id, "id": endpoint_id, "now": now}
            if await self._rowcount(db, "delete_endpoint", key) == 0:
                return False
            await db.execute(
                _Q["fail_endpoint_deliveries"], {"endpoint_id": endpoint_id, "now": now}
            )
        return True

    async def pause_endpoint(
        self, organization_id: str, endpoint_id: str, reason: str, now: float
    ) -> bool:
        async with self._write() as db:
            key = {"organization_id": organization_id, "id": endpoint_id, "now": now}
            if await self._rowcount(db, "pause_endpoint", {**key, "reason": reason}) == 0:
                return False
            await db.execute(
                _Q["hold_endpoint_deliveries"], {"endpoint_id": endpoint_id, "now": now}
            )
        return True

    async def resume_endpoint(self, organization_id: str, endpoint_id: str, now: float) -> int:
        async with self._write() as db:
            key = {"organization_id": organization_id, "id": endpoint_id, "now": now}
            if await self._rowcount(db, "resume_endpoint", key) == 0:
                return 0
            released = await self._rowcount(
                db, "release_held_deliveries", {"endpoint_id": endpoint_id, "now": now}
            )
        if released:
            self._wake()
        return released

    async def set_endpoint_secrets(
        self, organization_id: str, endpoint_id: str, secrets: Sequence[EndpointSecret], now: float
    ) -> None:
        params = {
            "organization_id": organization_id,
            "id": endpoint_id,
            "secrets": c.dumps(c.secrets_to_json(list(secrets))),
            "now": now,
        }
        async with self._write() as db:
            if await self._rowcount(db, "set_endpoint_secrets", params) == 0:
                raise NotFound(f"endpoint {endpoint_id} not found")

    # ---- events -------------------------------------------------------------------------------
    async def publish(
        self, items: Sequence[PublishItem], now: float | None = None
    ) -> list[PublishResult]:
        if not items:
            return []
        async with self._write() as db:
            rows = await self._fetchall(
                db,
                "insert_events",
                {"rows": c.event_rows([i.event for i in items], nested_as_text=True)},
            )
            stored, created = c.split_published(
                items, {(r["organization_id"], r["id"]): int(r["seq"]) for r in rows}
            )
            results = [
                PublishResult(event=ev, created=True)
                if ev is not None
                else PublishResult(event=await self._existing_event(db, it.event), created=False)
                for it, ev in zip(items, stored, strict=True)
            ]
            deliveries = c.new_delivery_rows(created, now)
            if deliveries:
                await db.execute(_Q["insert_deliveries"], {"rows": c.delivery_rows(deliveries)})
            for it in created:
                await self._apply_projections(db, it, now)
        if c.any_pending(deliveries):
            self._wake()
        return results

    async def _apply_projections(
        self, db: aiosqlite.Connection, it: PublishItem, now: float | None
    ) -> None:
        ev = it.event
        for update in it.projections:
            key = {"organization_id": ev.organization_id, "kind": update.kind, "key": update.key}
            current = await self._fetchone(db, "get_projection", key)
            state = update.apply(None if current is None else c.projection_from_row(current, _load))
            if state is None:
                continue
            await db.execute(
                _Q["upsert_projection"],
                {
                    **key,
                    "state": c.dumps(state),
                    "updated_at": ev.created_at if now is None else now,
                    "source_created_at": ev.created_at,
                    "last_event_id": ev.id,
                },
            )

    async def _existing_event(self, db: aiosqlite.Connection, ev: Event) -> Event:
        row = await self._fetchone(
            db, "get_event", {"organization_id": ev.organization_id, "id": ev.id}
        )
        if row is None and ev.idempotency_key is not None:
            row = await self._fetchone(
                db,
                "get_event_by_idempotency_key",
                {"organization_id": ev.organization_id, "idempotency_key": ev.idempotency_key},
            )
        if row is None:
            raise StoreError(f"event {ev.id} was neither inserted nor found")
        return c.event_from_row(row, _load)

    async def get_event(self, organization_id: str, event_id: str) -> Event | None:
        async with self._read() as db:
            row = await self._fetchone(
                db, "get_event", {"organization_id": organization_id, "id": event_id}
            )
        return None if row is None else c.event_from_row(row, _load)

    async def get_events(self, organization_id: str, event_ids: Sequence[str]) -> dict[str, Event]:
        ids = sorted(set(event_ids))
        if not ids:
            return {}
        keys = c.dumps([(organization_id, i) for i in ids])
        async with self._read() as db:
            rows = await self._fetchall(db, "events_by_keys", {"keys": keys})
        return {e.id: e for e in (c.event_from_row(r, _load) for r in rows)}

    async def list_events(
        self, organization_id: str, *, after: str | None, types: TypeFilter, limit: int
    ) -> Page[Event]:
        after_seq = c.decode_cursor(after)
        params = {
            "organization_id": organization_id,
            "after_seq": after_seq,
            "limit": limit,
            **_type_params(types),
        }
        async with self._read() as db:
            rows = await self._fetchall(db, "list_events", params)
        items = [c.event_from_row(r, _load) for r in rows]
        return Page(items=items, next_cursor=c.encode_cursor(items[-1].seq) if items else after)

    async def events_page_fingerprint(
        self, organization_id: str, *, after: str | None, types: TypeFilter, limit: int
    ) -> tuple[int, int]:
        params = {
            "organization_id": organization_id,
            "after_seq": c.decode_cursor(after),
            "limit": limit,
            **_type_params(types),
        }
        async with self._read() as db:
            row = await self._fetchone(db, "events_page_fingerprint", params)
        assert row is not None
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
        params = {
            "worker_id": worker_id,
            "now": now,
            "lease_until": now + lease_seconds,
            "limit": limit,
            "due_from": due_from,
        }
        async with self._write() as db:
            rows = await self._fetchall(db, "claim_due", params)
            if not rows:
                return []
            deliveries = sorted(
                (c.delivery_from_row(r) for r in rows), key=lambda d: (d.next_attempt_at, d.seq)
            )
            keys = c.dumps(sorted({(d.organization_id, d.event_id) for d in deliveries}))
            events = {
                (e.organization_id, e.id): e
                for e in (
                    c.event_from_row(r, _load)
                    for r in await self._fetchall(db, "events_by_keys", {"keys": keys})
                )
            }
            ids = c.dumps(sorted({d.endpoint_id for d in deliveries}))
            endpoints = {
                e.id: e
                for e in (
                    c.endpoint_from_row(r, _load)
                    for r in await self._fetchall(db, "endpoints_by_ids", {"ids": ids})
                )
            }
            stale = c.unsendable(deliveries, endpoints)
            if stale:
                await db.execute(
                    _Q["settle_unsendable_claims"],
                    {"ids": c.dumps(stale), "worker_id": worker_id, "now": now},
                )
        return c.assemble_claims(deliveries, events, endpoints, log)

    async def record_outcomes(
        self, worker_id: str, outcomes: Sequence[AttemptOutcome], now: float
    ) -> list[EndpointHealth]:
        if not outcomes:
            return []
        async with self._write() as db:
            rows = await self._fetchall(
                db,
                "record_delivery_outcome",
                {"rows": c.outcome_rows(outcomes), "worker_id": worker_id, "now": now},
            )
            updated: dict[str, c.Row] = {r["id"]: r for r in rows}
            kept = c.outcomes_with_lease(outcomes, updated, log)
            if not kept:
                return []
            await db.execute(_Q["insert_attempt"], {"rows": c.attempt_rows(kept, updated)})
            changes = c.streak_changes(kept, updated)
            health = await self._fetchall(
                db,
                "record_endpoint_health",
                {"rows": c.dumps(c.streak_rows(changes)), "now": now},
            )
        return sorted((c.health_from_row(r) for r in health), key=lambda h: h.endpoint_id)

    async def release(
        self,
        worker_id: str,
        delivery_ids: Sequence[str],
        next_attempt_at: float | Sequence[float],
    ) -> int:
        if not delivery_ids:
            return 0
        params = {"due": c.release_due(delivery_ids, next_attempt_at), "worker_id": worker_id}
        async with self._write() as db:
            count = await self._rowcount(db, "release", params)
        if count:
            self._wake()
        return count

    async def backlog_stats(self, now: float) -> BacklogStats:
        async with self._read() as db:
            row = await self._fetchone(db, "backlog_stats", {"now": now})
        assert row is not None
        return BacklogStats(due=int(row["due"]), oldest_due_at=row["oldest_due_at"])

    async def count_deliveries_by_status(self) -> dict[str, int]:
        async with self._read() as db:
            rows = await self._fetchall(db, "count_deliveries_by_status", {})
        return {r["status"]: int(r["n"]) for r in rows}

    async def count_endpoints_by_status(self) -> dict[str, int]:
        async with self._read() as db:
            rows = await self._fetchall(db, "count_endpoints_by_status", {})
        return {r["status"]: int(r["n"]) for r in rows}

    async def worst_endpoints(self, limit: int) -> list[tuple[str, str, int]]:
        async with self._read() as db:
            rows = await self._fetchall(db, "worst_endpoints", {"limit": limit})
        return [(r["organization_id"], r["id"], int(r["failure_streak"])) for r in rows]

    async def purge_history(self, cutoff: float, batch_size: int) -> int:
        async with self._write() as db:
            rows = await self._fetchall(
                db, "purge_select_deliveries", {"cutoff": cutoff, "limit": batch_size}
            )
            deleted = 0
            if rows:
                await db.execute(_Q["purge_attempts"], {"ids": c.dumps([r["id"] for r in rows])})
                deleted += await self._rowcount(
                    db, "purge_deliveries", {"seqs": c.dumps([r["seq"] for r in rows])}
                )
            deleted += await self._rowcount(
                db, "purge_events", {"cutoff": cutoff, "limit": batch_size}
            )
        return deleted

    # ---- deliveries: history and replay -------------------------------------------------------
    async def get_delivery(self, organization_id: str, delivery_id: str) -> Delivery | None:
        async with self._read() as db:
            row = await self._fetchone(
                db, "get_delivery", {"organization_id": organization_id, "id": delivery_id}
            )
        return None if row is None else c.delivery_from_row(row)

    async def list_deliveries(
        self, organization_id: str, flt: DeliveryFilter, *, limit: int, cursor: str | None
    ) -> Page[Delivery]:
        params = {
            "organization_id": organization_id,
            "before_seq": c.decode_cursor(cursor),
            "endpoint_id": flt.endpoint_id,
            "event_id": flt.event_id,
            "status": None if flt.status is None else str(flt.status),
            "created_after": flt.created_after,
            "created_before": flt.created_before,
            "limit": limit + 1,
        }
        async with self._read() as db:
            rows = await self._fetchall(
                db, c.delivery_history_query(flt.endpoint_id, flt.event_id), params
            )
        more = len(rows) > limit
        items = [c.delivery_from_row(r) for r in rows[:limit]]
        return Page(items=items, next_cursor=c.encode_cursor(items[-1].seq) if more else None)

    async def list_attempts(self, organization_id: str, delivery_id: str) -> list[Attempt]:
        async with self._read() as db:
            rows = await self._fetchall(
                db,
                "list_attempts",
                {"organization_id": organization_id, "delivery_id": delivery_id},
            )
        return [c.attempt_from_row(r) for r in rows]

    async def replay_delivery(
        self, organization_id: str, delivery_id: str, now: float
    ) -> Delivery | None:
        key = {"organization_id": organization_id, "id": delivery_id}
        async with self._write() as db:
            row = await self._fetchone(db, "replay_delivery", {**key, "now": now})
            if row is None:
                row = await self._fetchone(db, "get_delivery", key)
                return None if row is None else c.delivery_from_row(row)
        replayed = c.delivery_from_row(row)
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
        params = {
            "organization_id": organization_id,
            "endpoint_id": endpoint_id,
            "since": since,
            "until": until,
            "statuses": c.dumps([str(s) for s in statuses]),
            "now": now,
        }
        async with self._write() as db:
            count = await self._rowcount(db, "replay_endpoint_deliveries", params)
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
        count = 0
        async with self._write() as db:
            for delivery_id, schema_version in revivals:
                params = {
                    "organization_id": organization_id,
                    "endpoint_id": endpoint_id,
                    "id": delivery_id,
                    "schema_version": schema_version,
                    "now": now,
                }
                count += await self._rowcount(db, "revive_skipped_delivery", params)
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
        params = {
            "organization_id": organization_id,
            "endpoint_id": endpoint_id,
            "since": since,
            "until": until,
            "limit": limit,
            **_type_params(types),
        }
        async with self._read() as db:
            rows = await self._fetchall(db, "events_without_delivery", params)
        return [c.event_from_row(r, _load) for r in rows]

    async def add_deliveries(
        self, organization_id: str, pairs: Sequence[tuple[str, NewDelivery]], now: float
    ) -> int:
        if not pairs:
            return 0
        rows = [(organization_id, event_id, d, now) for event_id, d in pairs]
        async with self._write() as db:
            created = await self._rowcount(db, "insert_deliveries", {"rows": c.delivery_rows(rows)})
        if created and c.any_pending(rows):
            self._wake()
        return created

    # ---- projections --------------------------------------------------------------------------
    async def get_projection(self, organization_id: str, kind: str, key: str) -> Projection | None:
        async with self._read() as db:
            row = await self._fetchone(
                db,
                "get_projection",
                {"organization_id": organization_id, "kind": kind, "key": key},
            )
        return None if row is None else c.projection_from_row(row, _load)

    # ---- console sessions and portal links ----------------------------------------------------
    async def create_console_session(self, session: ConsoleSession, token_hash: str) -> None:
        async with self._write() as db:
            await db.execute(
                _Q["insert_console_session"],
                {
                    "id": session.id,
                    "token_hash": token_hash,
                    "key_id": session.key_id,
                    "kind": str(session.kind),
                    "organization_id": session.organization_id,
                    "read_only": session.read_only,
                    "created_at": session.created_at,
                    "expires_at": session.expires_at,
                },
            )

    async def find_console_session(self, token_hash: str, now: float) -> ConsoleSession | None:
        async with self._read() as db:
            row = await self._fetchone(
                db, "find_console_session", {"token_hash": token_hash, "now": now}
            )
        return None if row is None else c.console_session_from_row(row)

    async def delete_console_session(self, token_hash: str) -> bool:
        async with self._write() as db:
            deleted = await self._rowcount(db, "delete_console_session", {"token_hash": token_hash})
        return deleted > 0

    async def create_portal_link(self, link: PortalLink, token_hash: str) -> None:
        async with self._write() as db:
            await db.execute(
                _Q["insert_portal_link"],
                {
                    "id": link.id,
                    "token_hash": token_hash,
                    "organization_id": link.organization_id,
                    "key_id": link.key_id,
                    "read_only": link.read_only,
                    "created_at": link.created_at,
                    "expires_at": link.expires_at,
                },
            )

    async def use_portal_link(self, token_hash: str, now: float) -> PortalLinkUse:
        params = {"token_hash": token_hash, "now": now}
        async with self._write() as db:
            row = await self._fetchone(db, "use_portal_link", params)
            if row is not None:
                return PortalLinkUse(c.portal_link_from_row(row), opened=True)
            row = await self._fetchone(db, "find_portal_link", params)
        return PortalLinkUse(None if row is None else c.portal_link_from_row(row), opened=False)

    async def purge_console_sessions(self, cutoff: float) -> int:
        async with self._write() as db:
            sessions = await self._rowcount(db, "purge_console_sessions", {"cutoff": cutoff})
            links = await self._rowcount(db, "purge_portal_links", {"cutoff": cutoff})
        return sessions + links


def _key_params(key: ApiKey, key_hash: str) -> dict[str, Any]:
    return {
        "id": key.id,
        "key_hash": key_hash,
        "kind": str(key.kind),
        "organization_id": key.organization_id,
        "created_at": key.created_at,
    }
