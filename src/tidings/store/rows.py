"""Records to and from the database: rows (sqlite3.Row or asyncpg.Record, read by column name)
to the shared records of `tidings.models`, records to query parameters, batches as one JSON
document, and the opaque cursors. JSON columns travel as text both ways in both dialects."""

from __future__ import annotations

import base64
import binascii
import math
from collections.abc import Callable, Sequence
from dataclasses import fields, replace
from typing import Any, Protocol, TypeVar

import orjson

from tidings.filters import stored_filter
from tidings.models import (
    ApiKey,
    Attempt,
    AttemptOutcome,
    AuditEntry,
    BlockedSubject,
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
    Organization,
    Partner,
    PortalLink,
    Projection,
)
from tidings.receiver.ledger import LedgerEntry
from tidings.ttlcache import TtlCache


class Row(Protocol):
    """sqlite3.Row and asyncpg.Record both index by column name."""

    def __getitem__(self, key: str, /) -> Any: ...


def dumps(value: Any) -> str:
    return orjson.dumps(value).decode()


def loads(text: str | bytes | None) -> Any:
    return None if text is None else orjson.loads(text)


# ---- cursors ---------------------------------------------------------------------------------


KEY_CURSOR_PREFIX = "k:"  # tells a key cursor from text that only happens to decode


def encode_key_cursor(key: str) -> str:
    """A cursor that names the last row of a page by its key (tables without a `seq`)."""
    raw = (KEY_CURSOR_PREFIX + key).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_key_cursor(cursor: str | None) -> str | None:
    """None for no cursor; ValueError for anything the store did not make."""
    if cursor is None:
        return None
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError) as exc:
        raise ValueError("malformed cursor") from exc
    key = raw.removeprefix(KEY_CURSOR_PREFIX)
    if key == raw or not key:
        raise ValueError("malformed cursor")
    return key


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


def encode_change_cursor(updated_at: float, key: str) -> str:
    """A keyset cursor over (updated_at, key): the change order of projections."""
    raw = orjson.dumps([updated_at, key])
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_change_cursor(cursor: str | None) -> tuple[float | None, str | None]:
    """(None, None) for no cursor; ValueError for anything `encode_change_cursor` did not make."""
    if cursor is None:
        return None, None
    try:
        value = orjson.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except (binascii.Error, ValueError) as exc:
        raise ValueError("malformed cursor") from exc
    if (
        not isinstance(value, list)
        or len(value) != 2
        or not isinstance(value[0], int | float)
        or isinstance(value[0], bool)
        or not isinstance(value[1], str)
    ):
        raise ValueError("malformed cursor")
    return float(value[0]), value[1]


# ---- rows to records -------------------------------------------------------------------------
# A record's fields are its table's columns, by name; `_record` reads them, and each mapper
# says only what is not a plain column (an enum, a JSON column, a column of another name).

R = TypeVar("R")
_FIELDS: dict[type[Any], tuple[str, ...]] = {}


def _names(cls: type[Any]) -> tuple[str, ...]:
    names = _FIELDS.get(cls)
    if names is None:
        names = _FIELDS[cls] = tuple(f.name for f in fields(cls))
    return names


def _record(cls: type[R], r: Row, **values: Any) -> R:
    return cls(**{name: r[name] for name in _names(cls) if name not in values}, **values)


def as_row(record: Any) -> dict[str, Any]:
    """A record as {column: value} (its fields are its table's columns)."""
    return {name: getattr(record, name) for name in _names(type(record))}


def organization_from_row(r: Row) -> Organization:
    return _record(Organization, r)


def api_key_row(key: ApiKey) -> dict[str, Any]:
    """A key's record as its row (the scope written out: a record without one has its kind's
    full powers)."""
    return {**as_row(key), "scope": str(key.effective_scope)}


def api_key_from_row(r: Row) -> ApiKey:
    scope = r["scope"]
    return _record(
        ApiKey, r, kind=KeyKind(r["kind"]), scope=None if scope is None else KeyScope(scope)
    )


def console_session_from_row(r: Row) -> ConsoleSession:
    return _record(ConsoleSession, r, kind=KeyKind(r["kind"]), read_only=bool(r["read_only"]))


def portal_link_from_row(r: Row) -> PortalLink:
    return _record(PortalLink, r, read_only=bool(r["read_only"]))


def audit_params(entry: AuditEntry) -> dict[str, Any]:
    return {**as_row(entry), "changes": dumps(entry.changes)}


def audit_from_row(r: Row) -> AuditEntry:
    return _record(AuditEntry, r, changes=loads(r["changes"]))


def partner_from_row(r: Row) -> Partner:
    return _record(Partner, r)


# The hot ones (a claim reads hundreds of rows) spell their fields out: a call with the
# keywords written is about twice as fast as one built from a dict.
# (stored or plain secret, endpoint id) -> the other: the store's SecretBox at work
SecretMap = Callable[[str, str], str]


def endpoint_from_row(r: Row, open_secret: SecretMap | None = None) -> Endpoint:
    partner_ids = loads(r["partner_ids"])
    accepted = loads(r["accepted_schema_versions"])
    endpoint_id = r["id"]
    return Endpoint(
        id=endpoint_id,
        organization_id=r["organization_id"],
        url=r["url"],
        event_types=tuple(loads(r["event_types"])),
        format=r["format"],
        secrets=tuple(
            EndpointSecret(
                s["secret"] if open_secret is None else open_secret(s["secret"], endpoint_id),
                s["created_at"],
                s.get("expires_at"),
            )
            for s in loads(r["secrets"])
        ),
        status=EndpointStatus(r["status"]),
        partner_ids=None if partner_ids is None else tuple(partner_ids),
        accepted_schema_versions=None if accepted is None else tuple(accepted),
        sources=tuple(loads(r["sources"])),
        description=r["description"],
        headers=dict(loads(r["headers"]) or {}),
        rate_limit_per_second=r["rate_limit_per_second"],
        trace_context=bool(r["trace_context"]),
        filter=None if r["filter"] is None else stored_filter(r["filter"]),
        record_filtered=bool(r["record_filtered"]),
        ordering=r["ordering"],
        pause_reason=r["pause_reason"],
        failure_streak=r["failure_streak"],
        failing_since=r["failing_since"],
        last_success_at=r["last_success_at"],
        created_at=r["created_at"],
        updated_at=r["updated_at"],
        deleted_at=r["deleted_at"],
    )


# The columns endpoint_from_row reads but the three an attempt's outcome changes
# (record_endpoint_health: failure_streak, failing_since, last_success_at).
ENDPOINT_STABLE_COLUMNS = (
    "id", "organization_id", "url", "event_types", "format", "secrets", "status", "partner_ids",
    "accepted_schema_versions", "sources", "description", "headers", "rate_limit_per_second",
    "trace_context", "filter", "record_filtered", "ordering", "pause_reason", "created_at",
    "updated_at", "deleted_at",
)  # fmt: skip
ENDPOINT_MEMO_SIZE = 4_096


class EndpointMemo:
    """Endpoints built from rows, kept for the rows that come again. A worker reads the same
    endpoints claim after claim, and building one parses six JSON columns and opens its
    secrets: 5 % of a worker's time when it sends to 1,000 endpoints (the wan bench's profile).
    A row is known again by every column but the three an outcome changes, which are set anew
    on the kept endpoint when they differ."""

    def __init__(self, size: int = ENDPOINT_MEMO_SIZE) -> None:
        self._kept: TtlCache[tuple[Any, ...], Endpoint] = TtlCache(math.inf, size, lru=True)

    def endpoint(self, r: Row, open_secret: SecretMap | None = None) -> Endpoint:
        key = tuple(r[c] for c in ENDPOINT_STABLE_COLUMNS)
        kept = self._kept.get(key, 0.0)
        if kept is None:
            kept = endpoint_from_row(r, open_secret)
        elif (kept.failure_streak, kept.failing_since, kept.last_success_at) != (
            r["failure_streak"],
            r["failing_since"],
            r["last_success_at"],
        ):
            kept = replace(
                kept,
                failure_streak=r["failure_streak"],
                failing_since=r["failing_since"],
                last_success_at=r["last_success_at"],
            )
        else:
            return kept
        self._kept.put(key, kept, 0.0)
        return kept


def event_from_row(r: Row) -> Event:
    return Event(
        id=r["id"],
        organization_id=r["organization_id"],
        type=r["type"],
        schema_version=r["schema_version"],
        source=r["source"],
        created_at=r["created_at"],
        data=loads(r["data"]),
        partner_uuid=r["partner_uuid"],
        subject=r["subject"],
        attributes=dict(loads(r["attributes"]) or {}),
        idempotency_key=r["idempotency_key"],
        seq=r["seq"],
        erased_at=r["erased_at"],
        correlation_id=r["correlation_id"],
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
        sequence=r["sequence"] or 0,
        subject=r["subject"],
        previous_event_id=r["previous_event_id"],
        ordered=bool(r["ordered"]),
    )


def ledger_entry_from_row(r: Row) -> LedgerEntry:
    return _record(LedgerEntry, r, status=DeliveryStatus(r["status"]))


def blocked_subject_from_row(r: Row) -> BlockedSubject:
    return _record(BlockedSubject, r)


def attempt_from_row(r: Row) -> Attempt:
    return _record(Attempt, r)


def health_from_row(r: Row) -> EndpointHealth:
    return _record(EndpointHealth, r, endpoint_id=r["id"], status=EndpointStatus(r["status"]))


def projection_from_row(r: Row) -> Projection:
    """From a row, or from an object of a JSON answer (where `state` is already a value)."""
    state = r["state"]
    return _record(
        Projection, r, state=dict(loads(state) if isinstance(state, str | bytes) else state)
    )


# ---- records to parameters -------------------------------------------------------------------


def secrets_json(
    secrets: Sequence[EndpointSecret], endpoint_id: str, seal: SecretMap | None = None
) -> str:
    return dumps(
        [
            {
                "secret": s.secret if seal is None else seal(s.secret, endpoint_id),
                "created_at": s.created_at,
                "expires_at": s.expires_at,
            }
            for s in secrets
        ]
    )


def endpoint_params(ep: Endpoint, seal: SecretMap | None = None) -> dict[str, Any]:
    """Every column of the endpoint (update_endpoint reads the configuration ones)."""
    return as_row(ep) | {
        "event_types": dumps(ep.event_types),
        "secrets": secrets_json(ep.secrets, ep.id, seal),
        "partner_ids": None if ep.partner_ids is None else dumps(ep.partner_ids),
        "accepted_schema_versions": None
        if ep.accepted_schema_versions is None
        else dumps(ep.accepted_schema_versions),
        "sources": dumps(ep.sources),
        "headers": dumps(ep.headers),
        "filter": None if ep.filter is None else dumps(ep.filter.spec),
    }


def type_params(types: Any) -> dict[str, Any]:
    """A TypeFilter's parameters (no_types, exact, prefixes)."""
    return {"no_types": types.empty, "exact": list(types.exact), "prefixes": list(types.prefixes)}


# ---- batches: one JSON document each (a list of row objects), one parameter whatever the size


DeliveryRow = tuple[str, str, NewDelivery, float]  # organization_id, event_id, delivery, now


def event_rows(events: Sequence[Event]) -> str:
    """Each event as an object of its fields, the table's columns (orjson writes dataclasses)."""
    return dumps(list(events))


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
    """Each outcome with its attempt and whether it was a success, in attempt order (the fast
    path writes them all in one statement)."""
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


def attempt_rows(kept: Sequence[tuple[AttemptOutcome, Row]]) -> str:
    """The attempts of outcomes written, each with its delivery's row as the write answered."""
    return dumps(
        [
            {
                "delivery_id": o.delivery_id,
                "organization_id": d["organization_id"],
                "number": o.attempt.number,
                "series": d["series"],
                "started_at": o.attempt.started_at,
                "duration_ms": o.attempt.duration_ms,
                "status_code": o.attempt.status_code,
                "error": o.attempt.error,
                "response_excerpt": o.attempt.response_excerpt,
            }
            for o, d in kept
        ]
    )


def result_rows(kept: Sequence[tuple[AttemptOutcome, Row]]) -> str:
    """Per endpoint (the delivery's, as stored), the results of the outcomes written, in
    attempt order: "S" a success, "F" a failure (record_endpoint_health reads them)."""
    results: dict[str, str] = {}
    for o, d in kept:
        results[d["endpoint_id"]] = results.get(d["endpoint_id"], "") + ("S" if o.success else "F")
    return dumps([{"id": i, "results": results[i]} for i in sorted(results)])
