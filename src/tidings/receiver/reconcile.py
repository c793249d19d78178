"""Proving a receiver has everything (issue 25): `reconcile`, its small API client, and the
`OrderingGuard`.

Every delivery carries ``X-Tidings-Sequence`` (the endpoint's number for it: 1, 2, 3 ... in the
order its deliveries were stored) and, for an event with a subject,
``X-Tidings-Previous-Event-Id``. A receiver that stores each event id with its sequence number
(`WebhookEvent.sequence`) can ask tidings whether it holds everything it is owed:

    client = TidingsClient("https://tidings.example.com", org_api_key, "ep_...")
    report = reconcile(client, stored, handle_event)  # stored: {event id: sequence}

`reconcile` compares the server's count and digest (`event_ids_digest`) of each chunk of
sequence numbers with those of the stored ids numbered in it: one request per chunk, and a chunk
that agrees costs nothing more. For a chunk that differs it reads the ledger of that range, and
each delivery that was attempted for good (``succeeded`` or ``failed``) whose event id is not
stored is fetched (``GET /v1/events/{id}``) and handed to `handler` as a `WebhookEvent`, in
sequence order. Deliveries still on their way (``pending``, ``held``, ``queued``) are counted,
not handled: tidings will deliver them. Skipped deliveries were never owed.

`OrderingGuard` is told about each event as it arrives and says when one arrived whose previous
event (of its subject) the application has not seen.

Standard library only (``urllib.request``), synchronous: from asyncio code run `reconcile` in a
thread (``await asyncio.to_thread(reconcile, client, stored, handler)``).
"""

from __future__ import annotations

import json
import threading
import urllib.error
import urllib.parse
import urllib.request
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

from tidings.receiver.digest import event_ids_digest
from tidings.receiver.events import (
    CORRELATION_ID_HEADER,
    DELIVERY_ID_HEADER,
    EVENT_TYPE_HEADER,
    PREVIOUS_EVENT_ID_HEADER,
    SCHEMA_VERSION_HEADER,
    SEQUENCE_HEADER,
    WebhookEvent,
    parse,
)
from tidings.receiver.ledger import MAX_DIGEST_RANGE, LedgerEntry, LedgerPage, RangeDigest
from tidings.receiver.verify import FORMATS, STANDARD_ID_HEADER
from tidings.receiver.wire import DLT_ENVELOPE_FIELDS

# The ledger's statuses (GET /v1/endpoints/{id}/ledger)
SETTLED_STATUSES = frozenset({"succeeded", "failed"})  # attempted for good: the receiver owes
IN_FLIGHT_STATUSES = frozenset({"pending", "held", "queued"})  # tidings will still deliver
SKIPPED_STATUS = "skipped"  # never owed

MAX_PAGE = 500  # the API's largest page
MAX_CHUNK = MAX_DIGEST_RANGE  # the widest range one digest covers
DEFAULT_TIMEOUT_SECONDS = 30.0


# ---- the API client -----------------------------------------------------------------------------
class TidingsApiError(Exception):
    """A call to the tidings API that did not answer 2xx JSON.

    `status` is the HTTP status (None when no answer came: connection refused, timeout, a body
    that is not JSON); `code` and `message` come from the API's error body when it had one."""

    def __init__(self, url: str, status: int | None, code: str | None, message: str) -> None:
        self.url = url
        self.status = status
        self.code = code
        self.message = message
        shown = f"HTTP {status}" if status is not None else "no answer"
        super().__init__(f"{url}: {shown}{f' {code}' if code else ''}: {message}")


class ReconcileClient(Protocol):
    """What `reconcile` needs of the API (`TidingsClient`; tests hand a fake)."""

    def ledger(self, after: int = 0, limit: int = MAX_PAGE) -> LedgerPage: ...

    def digest(self, first: int, last: int) -> RangeDigest: ...

    def event(self, event_id: str) -> dict[str, Any] | None: ...


def _error_of(url: str, status: int, body: bytes) -> TidingsApiError:
    code: str | None = None
    message = body[:300].decode("utf-8", errors="replace") or "no body"
    try:
        parsed = json.loads(body)
    except ValueError:
        parsed = None
    if isinstance(parsed, dict) and isinstance(parsed.get("error"), dict):
        code = parsed["error"].get("code")
        message = str(parsed["error"].get("message") or message)
    return TidingsApiError(url, status, code if isinstance(code, str) else None, message)


class TidingsClient:
    """The three calls `reconcile` makes, for one endpoint, with an organization API key:
    ``GET /v1/endpoints/{id}/ledger``, ``GET /v1/endpoints/{id}/digest`` and
    ``GET /v1/events/{id}``. Every answer that is not 2xx raises `TidingsApiError` (`event`
    answers None for a 404: an event retention removed)."""

    def __init__(
        self,
        base_url: str,
        api_key: str,
        endpoint_id: str,
        *,
        timeout: float = DEFAULT_TIMEOUT_SECONDS,
    ) -> None:
        if not base_url.startswith(("http://", "https://")):
            raise ValueError("base_url must be an http:// or https:// URL")
        if not api_key or not endpoint_id:
            raise ValueError("api_key and endpoint_id are required")
        self.base_url = base_url.rstrip("/")
        self.endpoint_id = endpoint_id
        self.timeout = timeout
        self._api_key = api_key

    def __repr__(self) -> str:  # never shows the key
        return f"TidingsClient({self.base_url!r}, endpoint_id={self.endpoint_id!r})"

    def _get(self, path: str, query: Mapping[str, int] | None = None) -> Any:
        url = self.base_url + path
        if query:
            url += "?" + urllib.parse.urlencode(query)
        request = urllib.request.Request(
            url,
            headers={"Authorization": f"Bearer {self._api_key}", "Accept": "application/json"},
        )
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                body = response.read()
        except urllib.error.HTTPError as exc:
            raise _error_of(url, exc.code, exc.read()) from None
        except (urllib.error.URLError, TimeoutError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise TidingsApiError(url, None, None, str(reason)) from exc
        try:
            return json.loads(body)
        except ValueError:
            raise TidingsApiError(url, None, None, "the answer is not JSON") from None

    def _endpoint_path(self, what: str) -> str:
        return f"/v1/endpoints/{urllib.parse.quote(self.endpoint_id, safe='')}/{what}"

    def ledger(self, after: int = 0, limit: int = MAX_PAGE) -> LedgerPage:
        return LedgerPage.from_wire(
            self._get(self._endpoint_path("ledger"), {"after": after, "limit": limit})
        )

    def digest(self, first: int, last: int) -> RangeDigest:
        return RangeDigest.from_wire(
            self._get(self._endpoint_path("digest"), {"from": first, "to": last})
        )

    def event(self, event_id: str) -> dict[str, Any] | None:
        """The stored event envelope with its ``deliveries``; None when it is gone (404)."""
        try:
            body = self._get(f"/v1/events/{urllib.parse.quote(event_id, safe='')}")
        except TidingsApiError as exc:
            if exc.status == 404:
                return None
            raise
        if not isinstance(body, dict):
            raise TidingsApiError(self.base_url, None, None, "the event is not a JSON object")
        return body


# ---- a WebhookEvent from the stored envelope ----------------------------------------------------
def _dlt_created_at(created_at: Any) -> Any:
    # the dlt body carries whole seconds (tidings.formats.dlt); keep the same precision
    if not isinstance(created_at, str):
        return created_at
    try:
        parsed = datetime.fromisoformat(created_at)
    except ValueError:
        return created_at
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _notification_type(type_name: str) -> str:
    if type_name.startswith("webhook.") or "." not in type_name:
        return type_name
    return type_name.split(".", 1)[1]


def event_from_envelope(
    fmt: str,
    envelope: Mapping[str, Any],
    *,
    sequence: int | None = None,
    delivery_id: str | None = None,
    previous_event_id: str | None = None,
) -> WebhookEvent:
    """The `WebhookEvent` the webhook route would have parsed from a delivery of `envelope` (the
    answer of ``GET /v1/events/{id}``) in wire format `fmt`: its body is rebuilt as the format
    renders it and parsed by `parse`, so `raw`, `attributes` and `type` have the same shape.
    `data` and `schema_version` are the stored event's own (a delivery converted to an older
    accepted version carried that version's data instead); `attempt` is None."""
    if fmt not in FORMATS:
        raise ValueError(f"unknown wire format {fmt!r}")
    event_id = str(envelope["id"])
    type_name = str(envelope["type"])
    version = envelope.get("schemaVersion") or 1
    headers = {
        EVENT_TYPE_HEADER: type_name,
        SCHEMA_VERSION_HEADER: str(version),
    }
    if delivery_id:
        headers[DELIVERY_ID_HEADER] = delivery_id
    if envelope.get("correlationId"):
        headers[CORRELATION_ID_HEADER] = str(envelope["correlationId"])
    if sequence:
        headers[SEQUENCE_HEADER] = str(sequence)
    if previous_event_id:
        headers[PREVIOUS_EVENT_ID_HEADER] = previous_event_id
    body: dict[str, Any]
    if fmt == "novatrade":
        body = {
            "id": event_id,
            "type": type_name,
            "schemaVersion": version,
            "source": envelope.get("source"),
            "organizationUuid": envelope.get("organizationUuid"),
            "partnerUuid": envelope.get("partnerUuid"),
            "createdAt": envelope.get("createdAt"),
            "data": envelope.get("data"),
        }
    elif fmt == "dlt":
        attributes = envelope.get("attributes") or {}
        body = {
            "notification_id": event_id,
            "created_at": _dlt_created_at(envelope.get("createdAt")),
            **{name: attributes.get(name) for name in DLT_ENVELOPE_FIELDS},
            "notification_type": _notification_type(type_name),
            "details": envelope.get("data"),
        }
    else:
        headers[STANDARD_ID_HEADER] = event_id
        body = {
            "type": type_name,
            "timestamp": envelope.get("createdAt"),
            "data": envelope.get("data"),
        }
    return parse(fmt, json.dumps(body), headers)


# ---- reconcile ----------------------------------------------------------------------------------
@dataclass
class ReconcileReport:
    """What one `reconcile` run found and did.

    - `last_sequence`: the endpoint's highest number when the run began (the run covers
      `first`..`last_sequence`; what is stored after that is for the next run).
    - `chunks_checked`, `chunks_differed`: digest requests made, and how many disagreed.
    - `recovered`: event ids handed to the handler (sequence order).
    - `pending`: deliveries in differing chunks still on their way (pending, held, queued), not
      stored by the receiver: tidings will deliver them, nothing to do.
    - `gaps`: sequence numbers in differing chunks that tidings owes (not skipped) and that no
      stored id carries, recovered or pending ones included.
    - `unexpected`: stored event ids numbered in a differing chunk that the ledger does not list
      at that number (an id stored with a wrong number, or another endpoint's).
    - `unavailable`: owed event ids that could not be handed over: retention removed the event
      (404) or it was erased (its data is gone).
    """

    first: int
    last_sequence: int = 0
    chunks_checked: int = 0
    chunks_differed: int = 0
    recovered: list[str] = field(default_factory=list)
    pending: int = 0
    gaps: list[int] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)
    unavailable: list[str] = field(default_factory=list)

    @property
    def complete(self) -> bool:
        """True when nothing is left to explain: no delivery on its way, no stored id the
        ledger does not list, nothing owed that could not be handed over."""
        return not self.pending and not self.unexpected and not self.unavailable


def _ledger_range(client: ReconcileClient, first: int, last: int, page: int) -> list[LedgerEntry]:
    entries: list[LedgerEntry] = []
    after = first - 1
    while after < last:
        answer = client.ledger(after=after, limit=min(page, last - after))
        entries.extend(e for e in answer.items if first <= e.sequence <= last)
        if answer.next_after is None or not answer.items:
            break
        after = answer.next_after
    return entries


def _previous_of(envelope: Mapping[str, Any], delivery_id: str) -> str | None:
    for delivery in envelope.get("deliveries") or ():
        if isinstance(delivery, Mapping) and delivery.get("id") == delivery_id:
            previous = delivery.get("previousEventId")
            return previous if isinstance(previous, str) else None
    return None


def reconcile(
    client: ReconcileClient,
    stored: Mapping[str, int],
    handler: Callable[[WebhookEvent], object],
    *,
    chunk: int = 1000,
    first: int = 1,
    fmt: str = "novatrade",
    page_size: int = MAX_PAGE,
) -> ReconcileReport:
    """Find what the endpoint is owed and the receiver does not hold, and hand it to `handler`.

    `stored` maps each event id the receiver holds to the sequence number it came with
    (``X-Tidings-Sequence``, `WebhookEvent.sequence`). The numbers `first`..lastSequence are
    checked `chunk` at a time: one digest request per chunk, compared with the count and
    `event_ids_digest` of the stored ids numbered in it. For a chunk that differs, the ledger of
    its range is read, and each ``succeeded`` or ``failed`` delivery whose event id is not in
    `stored` is fetched and passed to `handler` as a `WebhookEvent` in format `fmt` (see
    `event_from_envelope`), with `sequence` and `delivery_id` from the ledger and
    `previous_event_id` from that delivery, in sequence order.

    The handler should store what it handles, as the webhook route does (it is the same
    handler). If it raises, the exception propagates at once: the events before it were handled,
    none after it; run `reconcile` again once the cause is fixed (what was handled is then
    stored, so nothing is handed over twice). API failures raise `TidingsApiError`.
    """
    if not 1 <= chunk <= MAX_CHUNK:
        raise ValueError(f"chunk must be between 1 and {MAX_CHUNK:,}")
    if not 1 <= page_size <= MAX_PAGE:
        raise ValueError(f"page_size must be between 1 and {MAX_PAGE}")
    if first < 1:
        raise ValueError("first must be >= 1")
    if fmt not in FORMATS:
        raise ValueError(f"unknown wire format {fmt!r}")
    report = ReconcileReport(first=first)
    by_sequence: dict[int, list[str]] = {}
    for event_id, sequence in stored.items():
        by_sequence.setdefault(sequence, []).append(event_id)

    top = max(by_sequence, default=0)
    lo = first
    last: int | None = None
    while last is None or lo <= last:
        hi = lo + chunk - 1 if last is None else min(lo + chunk - 1, last)
        server = client.digest(lo, hi)
        report.chunks_checked += 1
        if last is None:  # the first answer fixes the end of this run
            last = report.last_sequence = server.last_sequence
        mine = [e for n in range(lo, min(hi, top) + 1) for e in by_sequence.get(n, ())]
        if server.count != len(mine) or server.digest != event_ids_digest(mine):
            report.chunks_differed += 1
            _repair(client, stored, handler, report, lo, hi, mine, fmt, page_size)
        lo = hi + 1
    return report


def _repair(
    client: ReconcileClient,
    stored: Mapping[str, int],
    handler: Callable[[WebhookEvent], object],
    report: ReconcileReport,
    lo: int,
    hi: int,
    mine: Iterable[str],
    fmt: str,
    page_size: int,
) -> None:
    entries = _ledger_range(client, lo, hi, page_size)
    listed = {(e.event_id, e.sequence) for e in entries}
    report.unexpected.extend(e for e in mine if (e, stored[e]) not in listed)
    held_numbers = {stored[e] for e in mine}
    for entry in entries:
        if entry.status == SKIPPED_STATUS:
            continue
        if entry.sequence not in held_numbers:
            report.gaps.append(entry.sequence)
        if entry.event_id in stored:
            continue
        if entry.status not in SETTLED_STATUSES:  # pending, held, queued (or a newer one)
            report.pending += 1
            continue
        envelope = client.event(entry.event_id)
        if envelope is None or envelope.get("erasedAt"):
            report.unavailable.append(entry.event_id)
            continue
        event = event_from_envelope(
            fmt,
            envelope,
            sequence=entry.sequence,
            delivery_id=entry.delivery_id,
            previous_event_id=_previous_of(envelope, entry.delivery_id),
        )
        handler(event)
        report.recovered.append(entry.event_id)


# ---- the ordering guard -------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class OrderCheck:
    """The verdict on one arrival: `in_order` unless the event names a previous event
    (`previous_event_id`) that the guard has not seen; then `missing` is that id. Truthy when
    in order."""

    event_id: str
    previous_event_id: str | None
    missing: str | None

    @property
    def in_order(self) -> bool:
        return self.missing is None

    def __bool__(self) -> bool:
        return self.in_order


class OutOfOrderError(Exception):
    """Raised by `OrderingGuard.require`: `event_id` arrived before its previous event
    `missing` was seen."""

    def __init__(self, check: OrderCheck) -> None:
        self.check = check
        self.event_id = check.event_id
        self.missing = check.missing
        super().__init__(
            f"event {check.event_id} arrived before its previous event {check.missing}"
        )


class OrderingGuard:
    """For an endpoint with ``ordering: "subject"``: says when an event arrives whose previous
    event of the same subject (``X-Tidings-Previous-Event-Id``) the application has not seen.

    ``guard.check(event)`` records the event as seen and answers an `OrderCheck`;
    ``guard.require(event)`` raises `OutOfOrderError` instead of answering a bad one (the event
    is then not recorded). Events without a previous event id (no subject, or the first of
    their subject) always pass. If your handler then fails and you answer non-2xx, call
    ``guard.forget(event.id)``: tidings will send it again.

    Seen ids are kept in memory, the `max_items` most recent (thread-safe). A process that
    restarts, or an id evicted, would be reported missing: pass `known`, a function that answers
    whether your own store holds an event id, and it is asked before an id counts as missing.

    tidings sends an ordered subject's next event only once the previous one succeeded, failed
    for good or was skipped, so a missing previous event means it failed for good or was
    answered 2xx and lost (`reconcile` fetches both), or, rarely, it was skipped after the next
    one was stored (an event erased before it went out: nothing to fetch).
    """

    def __init__(
        self, max_items: int = 100_000, *, known: Callable[[str], bool] | None = None
    ) -> None:
        if max_items < 1:
            raise ValueError("max_items must be >= 1")
        self.max_items = max_items
        self._known = known
        self._seen: OrderedDict[str, None] = OrderedDict()
        self._lock = threading.Lock()

    def _has(self, event_id: str) -> bool:
        with self._lock:
            if event_id in self._seen:
                self._seen.move_to_end(event_id)
                return True
        return self._known is not None and self._known(event_id)

    def _verdict(self, event: WebhookEvent) -> OrderCheck:
        previous = event.previous_event_id
        missing = previous if previous is not None and not self._has(previous) else None
        return OrderCheck(event.id, previous, missing)

    def seen(self, event_id: str) -> None:
        """Record `event_id` as held by the application (e.g. one `reconcile` recovered)."""
        with self._lock:
            self._seen[event_id] = None
            self._seen.move_to_end(event_id)
            while len(self._seen) > self.max_items:
                self._seen.popitem(last=False)

    def forget(self, event_id: str) -> None:
        with self._lock:
            self._seen.pop(event_id, None)

    def check(self, event: WebhookEvent) -> OrderCheck:
        """Whether `event`'s previous event was seen; records `event` as seen either way."""
        verdict = self._verdict(event)
        self.seen(event.id)
        return verdict

    def require(self, event: WebhookEvent) -> OrderCheck:
        """As `check`, but raises `OutOfOrderError` (without recording `event`) when its previous
        event was not seen."""
        verdict = self._verdict(event)
        if not verdict.in_order:
            raise OutOfOrderError(verdict)
        self.seen(event.id)
        return verdict

    def __contains__(self, event_id: object) -> bool:
        with self._lock:
            return event_id in self._seen

    def __len__(self) -> int:
        with self._lock:
            return len(self._seen)


__all__ = [
    "IN_FLIGHT_STATUSES",
    "SETTLED_STATUSES",
    "LedgerEntry",
    "LedgerPage",
    "OrderCheck",
    "OrderingGuard",
    "OutOfOrderError",
    "RangeDigest",
    "ReconcileClient",
    "ReconcileReport",
    "TidingsApiError",
    "TidingsClient",
    "event_from_envelope",
    "reconcile",
]
