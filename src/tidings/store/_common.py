"""What both store implementations share: row-to-record mapping, opaque cursors, the named-query
and migration file loaders. No driver imports here."""

from __future__ import annotations

import base64
import binascii
import logging
import re
from collections.abc import Callable, Container, Sequence
from dataclasses import dataclass, replace
from importlib import resources
from typing import Any, Protocol

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
    EndpointStatus,
    Event,
    KeyKind,
    NewDelivery,
    Organization,
    Partner,
    PortalLink,
    Projection,
)
from tidings.store.base import PublishItem


class Row(Protocol):
    """sqlite3.Row and asyncpg.Record both index by column name."""

    def __getitem__(self, key: str, /) -> Any: ...


Loader = Callable[[Any], Any]

# ---- JSON ------------------------------------------------------------------------------------


def dumps(value: Any) -> str:
    return orjson.dumps(value).decode()


def loads_text(value: Any) -> Any:
    """SQLite keeps JSON as TEXT."""
    return None if value is None else orjson.loads(value)


def loads_decoded(value: Any) -> Any:
    """PostgreSQL's JSONB codec already decoded the value."""
    return value


def secrets_to_json(secrets: tuple[EndpointSecret, ...] | list[EndpointSecret]) -> list[Any]:
    return [
        {"secret": s.secret, "created_at": s.created_at, "expires_at": s.expires_at}
        for s in secrets
    ]


# ---- cursors ---------------------------------------------------------------------------------


def encode_cursor(seq: int) -> str:
    return base64.urlsafe_b64encode(str(seq).encode()).decode().rstrip("=")


def decode_cursor(cursor: str | None) -> int | None:
    """None for no cursor; ValueError for anything the store did not make."""
    if cursor is None:
        return None
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode("ascii")
    except (binascii.Error, UnicodeDecodeError, ValueError) as exc:
        raise ValueError("malformed cursor") from exc
    if not raw.isdigit() or len(raw) > 19:
        raise ValueError("malformed cursor")
    return int(raw)


# ---- rows to records ---------------------------------------------------------------------------


def organization_from_row(r: Row) -> Organization:
    return Organization(id=r["id"], name=r["name"], created_at=r["created_at"])


def api_key_from_row(r: Row) -> ApiKey:
    return ApiKey(
        id=r["id"],
        kind=KeyKind(r["kind"]),
        organization_id=r["organization_id"],
        created_at=r["created_at"],
    )


def console_session_from_row(r: Row) -> ConsoleSession:
    return ConsoleSession(
        id=r["id"],
        key_id=r["key_id"],
        kind=KeyKind(r["kind"]),
        organization_id=r["organization_id"],
        read_only=bool(r["read_only"]),
        created_at=r["created_at"],
        expires_at=r["expires_at"],
    )


def portal_link_from_row(r: Row) -> PortalLink:
    return PortalLink(
        id=r["id"],
        organization_id=r["organization_id"],
        key_id=r["key_id"],
        read_only=bool(r["read_only"]),
        created_at=r["created_at"],
        expires_at=r["expires_at"],
        used_at=r["used_at"],
    )


def partner_from_row(r: Row) -> Partner:
    return Partner(
        organization_id=r["organization_id"],
        partner_uuid=r["partner_uuid"],
        name=r["name"],
        created_at=r["created_at"],
    )


def endpoint_from_row(r: Row, load: Loader) -> Endpoint:
    partner_ids = load(r["partner_ids"])
    accepted = load(r["accepted_schema_versions"])
    return Endpoint(
        id=r["id"],
        organization_id=r["organization_id"],
        url=r["url"],
        event_types=tuple(load(r["event_types"])),
        format=r["format"],
        secrets=tuple(
            EndpointSecret(
                secret=s["secret"], created_at=s["created_at"], expires_at=s.get("expires_at")
            )
            for s in load(r["secrets"])
        ),
        status=EndpointStatus(r["status"]),
        partner_ids=None if partner_ids is None else tuple(partner_ids),
        accepted_schema_versions=None if accepted is None else tuple(accepted),
        sources=tuple(load(r["sources"])),
        description=r["description"],
        headers=dict(load(r["headers"]) or {}),
        rate_limit_per_second=r["rate_limit_per_second"],
        pause_reason=r["pause_reason"],
        failure_streak=r["failure_streak"],
        failing_since=r["failing_since"],
        last_success_at=r["last_success_at"],
        created_at=r["created_at"],
        updated_at=r["updated_at"],
        deleted_at=r["deleted_at"],
    )


def event_from_row(r: Row, load: Loader) -> Event:
    return Event(
        id=r["id"],
        organization_id=r["organization_id"],
        type=r["type"],
        schema_version=r["schema_version"],
        source=r["source"],
        created_at=r["created_at"],
        data=load(r["data"]),
        partner_uuid=r["partner_uuid"],
        subject=r["subject"],
        attributes=dict(load(r["attributes"]) or {}),
        idempotency_key=r["idempotency_key"],
        seq=r["seq"],
    )


def delivery_from_row(r: Row) -> Delivery:
    return Delivery(
        id=r["id"],
        organization_id=r["organization_id"],
        event_id=r["event_id"],
        endpoint_id=r["endpoint_id"],
        status=DeliveryStatus(r["status"]),
        schema_version=r["schema_version"],
        attempt_count=r["attempt_count"],
        next_attempt_at=r["next_attempt_at"],
        created_at=r["created_at"],
        updated_at=r["updated_at"],
        skip_reason=r["skip_reason"],
        is_meta=bool(r["is_meta"]),
        lease_owner=r["lease_owner"],
        lease_expires_at=r["lease_expires_at"],
        last_attempt_at=r["last_attempt_at"],
        last_status_code=r["last_status_code"],
        last_error=r["last_error"],
        series=r["series"],
        seq=r["seq"],
    )


def attempt_from_row(r: Row) -> Attempt:
    return Attempt(
        delivery_id=r["delivery_id"],
        number=r["number"],
        started_at=r["started_at"],
        duration_ms=r["duration_ms"],
        status_code=r["status_code"],
        error=r["error"],
        response_excerpt=r["response_excerpt"],
        series=r["series"],
    )


def health_from_row(r: Row) -> EndpointHealth:
    return EndpointHealth(
        endpoint_id=r["id"],
        organization_id=r["organization_id"],
        status=EndpointStatus(r["status"]),
        failure_streak=r["failure_streak"],
        failing_since=r["failing_since"],
        last_success_at=r["last_success_at"],
    )


def projection_from_row(r: Row, load: Loader) -> Projection:
    return Projection(
        organization_id=r["organization_id"],
        kind=r["kind"],
        key=r["key"],
        state=dict(load(r["state"])),
        version=r["version"],
        updated_at=r["updated_at"],
        source_created_at=r["source_created_at"],
        last_event_id=r["last_event_id"],
    )


# ---- batched writes ---------------------------------------------------------------------------
# Batches travel as one JSON document (a list of row objects) read back by json_each /
# json(b)_to_recordset: one parameter, encoded by orjson, whatever the batch size.

DeliveryRow = tuple[str, str, NewDelivery, float]  # organization_id, event_id, delivery, now


def event_rows(events: Sequence[Event], *, nested_as_text: bool) -> str:
    """`nested_as_text`: data/attributes as JSON strings (SQLite's json_extract would unquote a
    scalar), else as JSON values (PostgreSQL's jsonb_to_recordset keeps them)."""

    def nested(value: Any) -> Any:
        return dumps(value) if nested_as_text else value

    return dumps(
        [
            {
                "id": e.id,
                "organization_id": e.organization_id,
                "type": e.type,
                "schema_version": e.schema_version,
                "source": e.source,
                "partner_uuid": e.partner_uuid,
                "subject": e.subject,
                "attributes": nested(e.attributes),
                "data": nested(e.data),
                "idempotency_key": e.idempotency_key,
                "created_at": e.created_at,
            }
            for e in events
        ]
    )


def delivery_rows(rows: Sequence[DeliveryRow]) -> str:
    return dumps(
        [
            {
                "id": d.id,
                "organization_id": org,
                "event_id": event_id,
                "endpoint_id": d.endpoint_id,
                "status": str(d.status),
                "skip_reason": d.skip_reason,
                "schema_version": d.schema_version,
                "is_meta": d.is_meta,
                "now": at,
            }
            for org, event_id, d, at in rows
        ]
    )


def new_delivery_rows(created: Sequence[PublishItem], now: float | None) -> list[DeliveryRow]:
    """The deliveries of newly stored events; `now` defaults to each event's created_at."""
    return [
        (it.event.organization_id, it.event.id, d, it.event.created_at if now is None else now)
        for it in created
        for d in it.deliveries
    ]


def any_pending(rows: Sequence[DeliveryRow]) -> bool:
    return any(d.status == DeliveryStatus.PENDING for _, _, d, _ in rows)


def split_published(
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


def endpoint_versions(items: Sequence[PublishItem]) -> dict[str, int]:
    """The `Subscribers.version` each organization's items were planned from (items without
    one are not checked)."""
    return {
        it.event.organization_id: it.endpoints_version
        for it in items
        if it.endpoints_version is not None
    }


def stale_organizations(planned: dict[str, int], current: dict[str, int]) -> list[str]:
    """Organizations whose endpoints changed since they were planned from (sorted)."""
    return sorted(org for org, version in planned.items() if current.get(org) != version)


ProjectionKey = tuple[str, str, str]  # organization_id, kind, key


def projection_keys(items: Sequence[PublishItem]) -> list[ProjectionKey]:
    """The projection keys a publish touches, in key order (the order locks are taken in)."""
    return sorted(
        {(it.event.organization_id, u.kind, u.key) for it in items for u in it.projections}
    )


def projection_key_rows(keys: Sequence[ProjectionKey]) -> str:
    return dumps([{"organization_id": o, "kind": k, "key": x} for o, k, x in keys])


def projection_changes(
    items: Sequence[PublishItem], current: dict[ProjectionKey, Projection], now: float | None
) -> dict[ProjectionKey, Projection]:
    """The projections a publish changes, by key, from their `current` rows: updates to the
    same key are applied in publish order on the state in memory; an update that changes
    nothing leaves its key out."""
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
            after = Projection(
                organization_id=ev.organization_id,
                kind=update.kind,
                key=update.key,
                state=state,
                version=1 if before is None else before.version + 1,
                updated_at=ev.created_at if now is None else now,
                source_created_at=ev.created_at,
                last_event_id=ev.id,
            )
            state_now[key] = changed[key] = after
    return changed


def projection_rows(
    changed: dict[ProjectionKey, Projection],
    *,
    read: dict[ProjectionKey, Projection] | None = None,
    keys: Sequence[ProjectionKey] = (),
) -> str:
    """Rows for writing `changed` in key order. With `read` (the rows the changes were computed
    from), every one of `keys` also carries the version it had (`expected`, null when it did
    not exist) and whether it is written, for a compare-and-set."""
    if read is None:
        return dumps([_projection_row(changed[k]) for k in sorted(changed)])
    rows = []
    for key in keys:
        before = read.get(key)
        row: dict[str, Any] = (
            _projection_row(changed[key])
            if key in changed
            else {"organization_id": key[0], "kind": key[1], "key": key[2]}
        )
        row["expected"] = None if before is None else before.version
        row["write"] = key in changed
        rows.append(row)
    return dumps(rows)


def _projection_row(p: Projection) -> dict[str, Any]:
    return {
        "organization_id": p.organization_id,
        "kind": p.kind,
        "key": p.key,
        "state": p.state,
        "version": p.version,
        "updated_at": p.updated_at,
        "source_created_at": p.source_created_at,
        "last_event_id": p.last_event_id,
    }


def release_due(delivery_ids: Sequence[str], next_attempt_at: float | Sequence[float]) -> str:
    """{delivery id: due time} as JSON, for `release`."""
    if isinstance(next_attempt_at, int | float):
        return dumps(dict.fromkeys(delivery_ids, float(next_attempt_at)))
    if len(next_attempt_at) != len(delivery_ids):
        raise ValueError("one due time per delivery, or one for all")
    return dumps(dict(zip(delivery_ids, next_attempt_at, strict=True)))


def _outcome_row(o: AttemptOutcome) -> dict[str, Any]:
    """The delivery's new state after one attempt."""
    return {
        "id": o.delivery_id,
        "status": str(o.status),
        "next_attempt_at": o.next_attempt_at,
        "started_at": o.attempt.started_at,
        "last_status_code": o.last_status_code,
        "last_error": o.last_error,
    }


def outcome_rows(outcomes: Sequence[AttemptOutcome]) -> str:
    return dumps([_outcome_row(o) for o in outcomes])


def outcome_attempt_rows(outcomes: Sequence[AttemptOutcome]) -> str:
    """Each outcome with its attempt, in attempt order (tidings_record_outcomes, PostgreSQL)."""
    return dumps(
        [
            _outcome_row(o)
            | {
                "success": o.success,
                "number": o.attempt.number,
                "duration_ms": o.attempt.duration_ms,
                "status_code": o.attempt.status_code,
                "error": o.attempt.error,
                "response_excerpt": o.attempt.response_excerpt,
            }
            for o in outcomes
        ]
    )


def attempt_rows(kept: Sequence[AttemptOutcome], updated: dict[str, Row]) -> str:
    return dumps(
        [
            {
                "delivery_id": o.delivery_id,
                "organization_id": updated[o.delivery_id]["organization_id"],
                "number": o.attempt.number,
                "series": updated[o.delivery_id]["series"],
                "started_at": o.attempt.started_at,
                "duration_ms": o.attempt.duration_ms,
                "status_code": o.attempt.status_code,
                "error": o.attempt.error,
                "response_excerpt": o.attempt.response_excerpt,
            }
            for o in kept
        ]
    )


# ---- endpoint bookkeeping ------------------------------------------------------------------------


@dataclass(slots=True)
class StreakChange:
    """The net effect of one batch's outcomes on one endpoint, in attempt order: `reset` when a
    success happened (streak restarts from 0), `failures` counted after the last success."""

    reset: bool = False
    failures: int = 0

    def add(self, success: bool) -> None:
        if success:
            self.reset = True
            self.failures = 0
        else:
            self.failures += 1


def streak_changes(
    kept: Sequence[AttemptOutcome], updated: dict[str, Row]
) -> dict[str, StreakChange]:
    """Per endpoint (as stored on the delivery), the net effect of the batch, in order."""
    changes: dict[str, StreakChange] = {}
    for o in kept:
        changes.setdefault(updated[o.delivery_id]["endpoint_id"], StreakChange()).add(o.success)
    return changes


def streak_rows(changes: dict[str, StreakChange]) -> list[dict[str, Any]]:
    return [
        {"id": i, "reset": changes[i].reset, "failures": changes[i].failures}
        for i in sorted(changes)
    ]


def delivery_history_query(endpoint_id: str | None, event_id: str | None) -> str:
    """The list_deliveries variant whose index fits the filter."""
    if endpoint_id is not None:
        return "list_deliveries_for_endpoint"
    if event_id is not None:
        return "list_deliveries_for_event"
    return "list_deliveries"


def unsendable(deliveries: list[Delivery], endpoints: dict[str, Endpoint]) -> list[str]:
    """Claimed deliveries whose endpoint is no longer active. Pausing or deleting an endpoint
    leaves deliveries that were in flight pending; if their worker died, they come back through
    an expired lease and must be held (paused) or failed (deleted) instead of sent."""
    return [
        d.id
        for d in deliveries
        if (ep := endpoints.get(d.endpoint_id)) is not None
        and (ep.deleted_at is not None or ep.status != EndpointStatus.ACTIVE)
    ]


def assemble_claims(
    deliveries: list[Delivery],
    events: dict[tuple[str, str], Event],
    endpoints: dict[str, Endpoint],
    log: logging.Logger,
) -> list[ClaimedDelivery]:
    """Pair claimed deliveries with their event and endpoint. A delivery whose event is gone
    (cannot happen while it is pending, short of manual deletes) is left leased and logged."""
    claims: list[ClaimedDelivery] = []
    skip = set(unsendable(deliveries, endpoints))
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


def outcomes_with_lease(
    outcomes: Sequence[AttemptOutcome], updated: Container[str], log: logging.Logger
) -> list[AttemptOutcome]:
    """The outcomes whose delivery row was written (the worker still held its lease); the others
    are dropped, attempt included: another worker owns the delivery now and will record its own."""
    kept: list[AttemptOutcome] = []
    seen: set[str] = set()
    for o in outcomes:
        if o.delivery_id in updated and o.delivery_id not in seen:
            seen.add(o.delivery_id)
            kept.append(o)
        else:
            log.warning(
                "outcome dropped: lease lost",
                extra={"action": "store.lease_lost", "delivery_id": o.delivery_id},
            )
    return kept


# ---- files -------------------------------------------------------------------------------------

_NAME = re.compile(r"^--\s*name:\s*([a-z_][a-z0-9_]*)\s*$")
_MIGRATION = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")


def parse_queries(text: str) -> dict[str, str]:
    """Split a file of `-- name: x` blocks into {name: sql}."""
    queries: dict[str, str] = {}
    name: str | None = None
    lines: list[str] = []

    def flush() -> None:
        if name is not None:
            sql = "\n".join(lines).strip().rstrip(";").strip()
            if not sql:
                raise ValueError(f"query {name!r} is empty")
            queries[name] = sql

    for line in text.splitlines():
        match = _NAME.match(line.strip())
        if match:
            flush()
            name = match.group(1)
            if name in queries:
                raise ValueError(f"query {name!r} defined twice")
            lines = []
        elif name is not None:
            lines.append(line)
    flush()
    return queries


def load_queries(dialect: str) -> dict[str, str]:
    text = (
        resources.files("tidings.store")
        .joinpath("queries", f"{dialect}.sql")
        .read_text(encoding="utf-8")
    )
    return parse_queries(text)


@dataclass(frozen=True, slots=True)
class Migration:
    version: int
    name: str
    sql: str


def load_migrations(dialect: str) -> list[Migration]:
    folder = resources.files("tidings.store").joinpath("migrations", dialect)
    found: list[Migration] = []
    for entry in folder.iterdir():
        match = _MIGRATION.match(entry.name)
        if match:
            found.append(
                Migration(int(match.group(1)), match.group(2), entry.read_text(encoding="utf-8"))
            )
    found.sort(key=lambda m: m.version)
    versions = [m.version for m in found]
    if len(set(versions)) != len(versions):
        raise ValueError(f"duplicate migration versions in {dialect}")
    return found
