"""The receiver SDK's reconciliation and ordering guard (issue 25), without a server: `reconcile`
against a fake ledger that answers as the API does, `event_from_envelope` against what the
sending side renders, `TidingsClient` against a stdlib HTTP server, and `OrderingGuard`."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from tidings.receiver import (
    OrderingGuard,
    OutOfOrderError,
    TidingsApiError,
    TidingsClient,
    WebhookEvent,
    event_ids_digest,
    reconcile,
    verify_and_parse,
)
from tidings.receiver.reconcile import LedgerEntry, LedgerPage, RangeDigest, event_from_envelope

ORG = "0b7e5f0e-0000-4000-8000-000000000001"


def envelope(event_id: str, subject: str | None = None, **extra: Any) -> dict[str, Any]:
    return {
        "id": event_id,
        "type": "compliance.status_changed",
        "schemaVersion": 1,
        "source": "WEB_APP",
        "organizationUuid": ORG,
        "partnerUuid": None,
        "subject": subject,
        "correlationId": None,
        "attributes": {},
        "data": {"orderId": event_id, "previousStatus": None, "status": "VALID"},
        "createdAt": "2026-09-21T10:00:00.123Z",
        "erasedAt": None,
        "warnings": [],
        **extra,
    }


@dataclass
class FakeApi:
    """The ledger, digest and events API over a list of entries, answering as tidings does
    (digest over the entries that are not skipped); counts the calls."""

    entries: list[LedgerEntry]
    envelopes: dict[str, dict[str, Any]] = field(default_factory=dict)
    calls: list[tuple[str, Any, Any]] = field(default_factory=list)

    def last(self) -> int:
        return max((e.sequence for e in self.entries), default=0)

    def ledger(self, after: int = 0, limit: int = 500) -> LedgerPage:
        self.calls.append(("ledger", after, limit))
        items = [e for e in self.entries if e.sequence > after][:limit]
        more = len(items) == limit and items[-1].sequence < self.last()
        return LedgerPage(items, items[-1].sequence if more else None, self.last())

    def digest(self, first: int, last: int) -> RangeDigest:
        self.calls.append(("digest", first, last))
        ids = [
            e.event_id
            for e in self.entries
            if first <= e.sequence <= last and e.status != "skipped"
        ]
        return RangeDigest(first, last, len(ids), event_ids_digest(ids), self.last())

    def event(self, event_id: str) -> dict[str, Any] | None:
        self.calls.append(("event", event_id, None))
        return self.envelopes.get(event_id)

    def kinds(self, kind: str) -> list[tuple[str, Any, Any]]:
        return [c for c in self.calls if c[0] == kind]


def fake_api(statuses: list[str], subjects: dict[int, str] | None = None) -> FakeApi:
    """Entries numbered 1.. with the given statuses; event ids e1, e2, ...; an envelope for
    each, whose delivery names the previous event of its subject."""
    subjects = subjects or {}
    api = FakeApi([])
    previous: dict[str, str] = {}
    for n, status in enumerate(statuses, start=1):
        subject = subjects.get(n)
        event_id = f"e{n}"
        api.entries.append(
            LedgerEntry(n, event_id, "compliance.status_changed", subject, f"dlv_{n}", status)
        )
        before = previous.get(subject) if subject else None
        delivery = {"id": f"dlv_{n}", "sequence": n, "previousEventId": before}
        api.envelopes[event_id] = envelope(event_id, subject, deliveries=[delivery])
        if subject and status != "skipped":
            previous[subject] = event_id
    return api


def test_agreeing_chunks_cost_one_request_each_and_nothing_else() -> None:
    api = fake_api(["succeeded"] * 10)
    stored = {f"e{n}": n for n in range(1, 11)}
    handled: list[WebhookEvent] = []
    report = reconcile(api, stored, handled.append, chunk=4)
    assert api.calls == [("digest", 1, 4), ("digest", 5, 8), ("digest", 9, 10)]
    assert (report.chunks_checked, report.chunks_differed, report.last_sequence) == (3, 0, 10)
    assert handled == [] and report.recovered == [] and report.gaps == []
    assert report.complete


def test_dropped_deliveries_are_recovered_in_order_and_pending_ones_left_alone() -> None:
    statuses = ["succeeded"] * 12
    statuses[2] = "succeeded"  # e3: answered 2xx, lost by the receiver
    statuses[6] = "failed"  # e7: failed for good, never received
    statuses[7] = "pending"  # e8: still on its way
    statuses[8] = "skipped"  # e9: never owed
    api = fake_api(statuses, subjects={3: "A", 5: "A", 7: "A", 8: "A"})
    stored = {f"e{n}": n for n in (1, 2, 4, 5, 6, 10, 11, 12)}
    handled: list[WebhookEvent] = []
    report = reconcile(api, stored, handled.append, chunk=4)

    assert [e.id for e in handled] == ["e3", "e7"] == report.recovered
    assert [e.sequence for e in handled] == [3, 7]
    assert [e.delivery_id for e in handled] == ["dlv_3", "dlv_7"]
    assert [e.previous_event_id for e in handled] == [None, "e5"]
    assert handled[0].data == {"orderId": "e3", "previousStatus": None, "status": "VALID"}
    assert handled[0].format == "novatrade" and handled[0].attempt is None
    assert (report.chunks_checked, report.chunks_differed) == (3, 2)
    assert report.pending == 1
    assert report.gaps == [3, 7, 8]  # e9 was never owed: not a gap
    assert report.unexpected == [] and report.unavailable == []
    assert not report.complete  # e8 is still pending
    # the third chunk (9..12) agreed: no ledger read there; events fetched only for the drops
    assert [(c[1], c[2]) for c in api.kinds("ledger")] == [(0, 4), (4, 4)]
    assert [c[1] for c in api.kinds("event")] == ["e3", "e7"]

    # once the handler stored them, only the chunk with the pending e8 still differs
    stored.update({e.id: e.sequence for e in handled if e.sequence is not None})
    again = reconcile(api, stored, handled.append, chunk=4)
    assert again.recovered == [] and again.chunks_differed == 1 and again.pending == 1


def test_ledger_pages_inside_a_chunk() -> None:
    api = fake_api(["succeeded"] * 9)
    stored = {"e1": 1, "e9": 9}
    handled: list[WebhookEvent] = []
    report = reconcile(api, stored, handled.append, chunk=9, page_size=3)
    assert report.recovered == [f"e{n}" for n in range(2, 9)]
    assert [(c[1], c[2]) for c in api.kinds("ledger")] == [(0, 3), (3, 3), (6, 3)]


def test_a_handler_that_raises_stops_the_run_after_the_events_before_it() -> None:
    api = fake_api(["succeeded"] * 6)
    stored = {"e1": 1, "e4": 4, "e6": 6}
    handled: list[str] = []

    def handler(event: WebhookEvent) -> None:
        if event.id == "e3":
            raise RuntimeError("database down")
        handled.append(event.id)

    with pytest.raises(RuntimeError, match="database down"):
        reconcile(api, stored, handler, chunk=2)
    assert handled == ["e2"]  # e5 (a later chunk) was not touched
    assert [c[1] for c in api.kinds("event")] == ["e2", "e3"]


def test_unavailable_and_unexpected_are_reported_not_handled() -> None:
    api = fake_api(["succeeded"] * 4)
    del api.envelopes["e2"]  # retention removed it: the API answers 404
    api.envelopes["e3"]["erasedAt"] = "2026-09-22T00:00:00Z"
    api.envelopes["e3"]["data"] = None
    stored = {"e1": 1, "e4": 3, "stranger": 4}  # e4 stored under a wrong number
    handled: list[WebhookEvent] = []
    report = reconcile(api, stored, handled.append, chunk=10)
    assert handled == [] and report.recovered == []
    assert report.unavailable == ["e2", "e3"]
    assert sorted(report.unexpected) == ["e4", "stranger"]
    assert report.gaps == [2]  # 3 and 4 are numbers the receiver holds (with other ids)
    assert not report.complete


def test_an_endpoint_with_nothing_owed_is_one_request() -> None:
    api = fake_api([])
    report = reconcile(api, {}, lambda e: None)
    assert api.calls == [("digest", 1, 1000)]
    assert (report.chunks_checked, report.chunks_differed, report.last_sequence) == (1, 0, 0)


def test_first_starts_the_check_later() -> None:
    api = fake_api(["succeeded"] * 6)
    report = reconcile(api, {"e5": 5, "e6": 6}, lambda e: None, chunk=2, first=5)
    assert api.calls == [("digest", 5, 6)]
    assert report.chunks_differed == 0


@pytest.mark.parametrize(
    "kwargs",
    [{"chunk": 0}, {"chunk": 1_000_001}, {"page_size": 501}, {"first": 0}, {"fmt": "xml"}],
)
def test_bad_arguments(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        reconcile(fake_api([]), {}, lambda e: None, **kwargs)


# --- the rebuilt event is the one a delivery would have parsed into -------------------------------
@pytest.mark.parametrize(
    ("fmt", "type_name", "data", "attributes"),
    [
        ("novatrade", "compliance.status_changed", {"orderId": "o", "status": "VALID"}, {}),
        (
            "dlt",
            "derivatives.entitlementFailed",
            {"code": "R0003", "description": "Acknowledgements Verification Failed"},
            {"owner_id": "own-1", "owner_type": "person", "entitlement_id": "ent-1"},
        ),
        ("standard", "rfi.reminder", {"type": "rfi_4_week_reminder"}, {}),
    ],
)
def test_event_from_envelope_matches_a_parsed_delivery(
    fmt: str, type_name: str, data: dict[str, Any], attributes: dict[str, Any]
) -> None:
    from tidings import formats, signing
    from tidings.api.views import event_view
    from tidings.models import Event

    now = 1_790_000_000.0
    event = Event(
        id="evt_r1",
        organization_id=ORG,
        type=type_name,
        schema_version=1,
        source="SYSTEM",
        created_at=now - 5.25,
        data=data,
        subject="acct-1",
        correlation_id="req-7",
        attributes=attributes,
    )
    secret = signing.generate_secret(fmt)
    body = formats.render_body(fmt, event=event, data=data, schema_version=1)
    headers = formats.sign_headers(
        fmt,
        event=event,
        body=body,
        delivery_id="dlv_r1",
        attempt=1,
        secrets=[secret],
        now=now,
        sequence=17,
        previous_event_id="evt_r0",
    )
    delivered = verify_and_parse(fmt, body, headers, secret, now=now)
    rebuilt = event_from_envelope(
        fmt,
        json.loads(json.dumps(event_view(event))),
        sequence=17,
        delivery_id="dlv_r1",
        previous_event_id="evt_r0",
    )
    assert rebuilt == WebhookEvent(**{**delivered.__dict__, "attempt": None})
    assert (rebuilt.sequence, rebuilt.previous_event_id) == (17, "evt_r0")


# --- the HTTP client ------------------------------------------------------------------------------
class _Handler(BaseHTTPRequestHandler):
    answers: dict[str, tuple[int, Any]] = {}
    seen: list[tuple[str, str | None]] = []

    def do_GET(self) -> None:
        self.seen.append((self.path, self.headers.get("Authorization")))
        status, body = self.answers.get(self.path, (404, {"error": {"code": "not_found"}}))
        raw = body if isinstance(body, bytes) else json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(raw)))
        self.end_headers()
        self.wfile.write(raw)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def http_api() -> Iterator[tuple[str, type[_Handler]]]:
    handler = type("Handler", (_Handler,), {"answers": {}, "seen": []})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/", handler
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def test_client_reads_the_three_answers(http_api: tuple[str, type[_Handler]]) -> None:
    url, handler = http_api
    item = {
        "sequence": 1,
        "eventId": "e1",
        "type": "t",
        "subject": "A",
        "deliveryId": "dlv_1",
        "status": "succeeded",
    }
    handler.answers = {
        "/v1/endpoints/ep_1/ledger?after=0&limit=2": (
            200,
            {"items": [item], "nextAfter": None, "lastSequence": 1},
        ),
        "/v1/endpoints/ep_1/digest?from=1&to=5": (
            200,
            {"from": 1, "to": 5, "count": 1, "digest": "ab", "lastSequence": 1},
        ),
        "/v1/events/e1": (200, envelope("e1")),
    }
    client = TidingsClient(url, "tdk_secret_key", "ep_1")
    assert "tdk_secret_key" not in repr(client)
    page = client.ledger(after=0, limit=2)
    assert page == LedgerPage([LedgerEntry(1, "e1", "t", "A", "dlv_1", "succeeded")], None, 1)
    assert client.digest(1, 5) == RangeDigest(1, 5, 1, "ab", 1)
    assert client.event("e1") == envelope("e1")
    assert client.event("gone") is None  # 404: retention removed it
    assert {auth for _, auth in handler.seen} == {"Bearer tdk_secret_key"}


def test_client_raises_on_errors(http_api: tuple[str, type[_Handler]]) -> None:
    url, handler = http_api
    handler.answers = {
        "/v1/endpoints/ep_1/digest?from=1&to=5": (
            401,
            {"error": {"code": "unauthorized", "message": "unknown key"}},
        ),
        "/v1/endpoints/ep_1/ledger?after=0&limit=500": (200, b"<html>"),
        "/v1/events/e1": (500, b"boom"),
    }
    client = TidingsClient(url, "tdk_wrong", "ep_1")
    with pytest.raises(TidingsApiError) as exc:
        client.digest(1, 5)
    assert (exc.value.status, exc.value.code, exc.value.message) == (
        401,
        "unauthorized",
        "unknown key",
    )
    with pytest.raises(TidingsApiError) as exc:
        client.ledger()
    assert exc.value.status is None and "not JSON" in exc.value.message
    with pytest.raises(TidingsApiError) as exc:
        client.event("e1")
    assert exc.value.status == 500 and exc.value.message == "boom"
    with pytest.raises(TidingsApiError) as exc:  # nothing listens there
        TidingsClient("http://127.0.0.1:9", "k", "ep_1", timeout=5).digest(1, 2)
    assert exc.value.status is None
    with pytest.raises(ValueError):
        TidingsClient("ftp://x", "k", "ep_1")


# --- the ordering guard ---------------------------------------------------------------------------
def arrival(event_id: str, previous: str | None) -> WebhookEvent:
    return WebhookEvent(
        id=event_id,
        type="compliance.status_changed",
        schema_version=1,
        created_at=None,
        data={},
        raw={},
        format="novatrade",
        previous_event_id=previous,
    )


def test_guard_passes_a_subject_in_order_and_names_the_missing_previous_event() -> None:
    guard = OrderingGuard()
    assert guard.check(arrival("a1", None))  # the first of its subject
    assert guard.check(arrival("a2", "a1")).in_order
    assert guard.check(arrival("n1", None))  # no subject: always passes
    late = guard.check(arrival("a4", "a3"))  # a3 never arrived
    assert not late and late.missing == "a3" and late.event_id == "a4"
    assert "a4" in guard  # recorded all the same: a5 after it is in order
    assert guard.check(arrival("a5", "a4"))


def test_guard_require_raises_and_does_not_record() -> None:
    guard = OrderingGuard()
    with pytest.raises(OutOfOrderError) as exc:
        guard.require(arrival("b2", "b1"))
    assert (exc.value.event_id, exc.value.missing) == ("b2", "b1")
    assert "b2" not in guard
    guard.seen("b1")  # e.g. reconcile recovered it
    assert guard.require(arrival("b2", "b1")).in_order
    guard.forget("b2")  # the handler failed: tidings will send it again
    assert "b2" not in guard


def test_guard_is_bounded_and_asks_the_application_store_for_what_it_forgot() -> None:
    guard = OrderingGuard(max_items=2)
    for event_id in ("x1", "x2", "x3"):
        guard.check(arrival(event_id, None))
    assert len(guard) == 2 and "x1" not in guard
    assert not guard.check(arrival("x9", "x1"))  # evicted: reported missing
    held = {"x1"}
    remembering = OrderingGuard(max_items=2, known=held.__contains__)
    for event_id in ("x1", "x2", "x3"):
        remembering.check(arrival(event_id, None))
    assert remembering.check(arrival("x9", "x1"))  # the application's store still has it
    assert not remembering.check(arrival("y2", "y1"))
    with pytest.raises(ValueError):
        OrderingGuard(max_items=0)


# --- the example of docs/receiver.md runs as written ---------------------------------------------
def test_docs_reconcile_example(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    http_api: tuple[str, type[_Handler]],
) -> None:
    from tidings import formats, signing
    from tidings.models import Event

    url, handler = http_api
    text = (Path(__file__).parents[2] / "docs" / "receiver.md").read_text()
    [block] = [b.split("```", 1)[0] for b in text.split("```python\n")[1:] if "catch_up" in b]
    secret = signing.generate_secret("novatrade")
    monkeypatch.chdir(tmp_path)
    for name, value in (
        ("TIDINGS_SECRETS", secret),
        ("TIDINGS_URL", url),
        ("TIDINGS_API_KEY", "tdk_org_key"),
        ("TIDINGS_ENDPOINT_ID", "ep_1"),
    ):
        monkeypatch.setenv(name, value)
    namespace: dict[str, Any] = {"__name__": "docs_example"}
    exec(compile(block, "docs/receiver.md", "exec"), namespace)

    # e2 of subject A arrives; e1, in front of it, was lost
    now = time.time()
    e2 = Event(
        id="e2",
        organization_id=ORG,
        type="compliance.status_changed",
        schema_version=1,
        source="WEB_APP",
        created_at=now,
        data={"orderId": "e2", "previousStatus": None, "status": "VALID"},
        subject="A",
    )
    body = formats.render_body("novatrade", event=e2, data=e2.data, schema_version=1)
    headers = formats.sign_headers(
        "novatrade",
        event=e2,
        body=body,
        delivery_id="dlv_2",
        attempt=1,
        secrets=[secret],
        now=now,
        sequence=2,
        previous_event_id="e1",
    )
    namespace["receive"](body, headers)
    assert capsys.readouterr().out == "arrived before e1\n"

    items = [
        {"sequence": n, "eventId": f"e{n}", "type": e2.type, "subject": "A",
         "deliveryId": f"dlv_{n}", "status": "succeeded"}
        for n in (1, 2)
    ]  # fmt: skip
    first = {"id": "dlv_1", "sequence": 1, "previousEventId": None}
    handler.answers = {
        "/v1/endpoints/ep_1/digest?from=1&to=1000": (
            200,
            {
                "from": 1,
                "to": 1000,
                "count": 2,
                "digest": event_ids_digest(["e1", "e2"]),
                "lastSequence": 2,
            },
        ),
        "/v1/endpoints/ep_1/ledger?after=0&limit=500": (
            200,
            {"items": items, "nextAfter": None, "lastSequence": 2},
        ),
        "/v1/events/e1": (200, envelope("e1", "A", deliveries=[first])),
    }
    namespace["catch_up"]()
    assert capsys.readouterr().out == "['e1'] 0 True\n"
    rows = namespace["db"].execute("SELECT id, sequence FROM events ORDER BY id").fetchall()
    assert rows == [("e1", 1), ("e2", 2)]
    # the guard asks the database for what it did not see arrive
    assert "e1" not in namespace["guard"] and namespace["guard"].check(arrival("e3", "e1"))
    namespace["db"].close()
