from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from dataclasses import replace
from typing import Any

import pytest
from standardwebhooks.webhooks import Webhook

import tidings
from tidings.formats import (
    RenderedRequest,
    render,
    render_body,
    sign_headers,
    validate_custom_headers,
)
from tidings.models import Event
from tidings.signing import generate_secret

CREATED = 1_730_204_142.0  # 2024-10-29T12:15:42Z
NOW = 1_730_204_200.75

NT_EVENT = Event(
    id="evt_nt1",
    organization_id="org-uuid",
    type="compliance.status_changed",
    schema_version=2,
    source="WEB_APP",
    created_at=CREATED,
    data={"orderId": "o-1", "previousStatus": "PENDING", "status": "APPROVED", "v2": True},
    partner_uuid="partner-uuid",
)
DLT_ATTRS = {
    "owner_id": "8e9b9a45-6212-4a77-bb43-4b8d123a5e42",
    "owner_type": "person",
    "external_id": "client_id_123",
    "entitlement_trigger_id": "8e9b9a45-6212-4a77-bb43-4b8d123a5e42",
    "entitlement_id": "9a9b9a45-6212-4a77-bb43-4b8d123a5e42",
}
DLT_EVENT = Event(
    id="8e9b9a45-6212-4a77-bb43-4b8d123a5e42",
    organization_id="org-uuid",
    type="onboarding.requirementsIDV",
    schema_version=1,
    source="SYSTEM",
    created_at=CREATED + 0.5,
    data={"requirements": ["IDV"]},
    attributes=dict(DLT_ATTRS),
)
META_EVENT = Event(
    id="evt_meta",
    organization_id="org-uuid",
    type="webhook.endpoint_auto_paused",
    schema_version=1,
    source="SYSTEM",
    created_at=CREATED,
    data={"endpointId": "ep_x", "reason": "gone"},
)


def _render(fmt: str, event: Event, secrets: list[str], **kw: Any) -> RenderedRequest:
    args: dict[str, Any] = {
        "event": event,
        "data": event.data,
        "schema_version": event.schema_version,
        "delivery_id": "dlv_1",
        "attempt": 1,
        "secrets": secrets,
        "now": NOW,
    }
    args.update(kw)
    return render(fmt, **args)


def _common_headers_ok(req: RenderedRequest, event: Event, version: int, attempt: int) -> None:
    h = req.headers
    assert h["Content-Type"] == "application/json"
    assert h["User-Agent"] == f"tidings/{tidings.__version__}"
    assert h["X-Tidings-Delivery-Id"] == "dlv_1"
    assert h["X-Tidings-Attempt"] == str(attempt)
    assert h["X-Tidings-Event-Id"] == event.id
    assert h["X-Tidings-Event-Type"] == event.type
    assert h["X-Tidings-Schema-Version"] == str(version)


# ---- novatrade -----------------------------------------------------------------------------


def test_novatrade_body_and_signature() -> None:
    secret = generate_secret("novatrade")
    converted = {"orderId": "o-1", "previousStatus": "PENDING", "status": "APPROVED"}
    req = _render("novatrade", NT_EVENT, [secret], data=converted, schema_version=1, attempt=3)
    body = json.loads(req.body)
    assert list(body) == [
        "id",
        "type",
        "schemaVersion",
        "source",
        "organizationUuid",
        "partnerUuid",
        "createdAt",
        "data",
    ]
    assert body == {
        "id": "evt_nt1",
        "type": "compliance.status_changed",
        "schemaVersion": 1,
        "source": "WEB_APP",
        "organizationUuid": "org-uuid",
        "partnerUuid": "partner-uuid",
        "createdAt": "2024-10-29T12:15:42Z",
        "data": converted,
    }
    assert b" " not in req.body  # compact
    _common_headers_ok(req, NT_EVENT, version=1, attempt=3)
    expected = hmac.new(
        secret.encode(), f"{int(NOW)}.".encode() + req.body, hashlib.sha256
    ).hexdigest()
    assert req.headers["X-Novatrade-Signature"] == f"t={int(NOW)},v1={expected}"


def test_novatrade_rotation_signs_with_each_secret() -> None:
    s1, s2 = generate_secret("novatrade"), generate_secret("novatrade")
    req = _render("novatrade", NT_EVENT, [s1, s2])
    parts = req.headers["X-Novatrade-Signature"].split(",")
    assert parts[0] == f"t={int(NOW)}"
    msg = f"{int(NOW)}.".encode() + req.body
    assert parts[1:] == [
        "v1=" + hmac.new(s.encode(), msg, hashlib.sha256).hexdigest() for s in (s1, s2)
    ]


def test_novatrade_null_partner() -> None:
    body = json.loads(render_body("novatrade", event=META_EVENT, data={}, schema_version=1))
    assert body["partnerUuid"] is None


# ---- dlt -------------------------------------------------------------------------------------


def test_dlt_body_and_signature() -> None:
    secret = generate_secret("dlt")
    req = _render("dlt", DLT_EVENT, [secret])
    body = json.loads(req.body)
    assert list(body) == [
        "notification_id",
        "created_at",
        "owner_id",
        "owner_type",
        "external_id",
        "entitlement_trigger_id",
        "entitlement_id",
        "notification_type",
        "details",
    ]
    assert body["notification_id"] == DLT_EVENT.id
    assert body["created_at"] == "2024-10-29T12:15:42Z"  # whole seconds, as in the seed
    for name, value in DLT_ATTRS.items():
        assert body[name] == value
    assert body["notification_type"] == "requirementsIDV"
    assert body["details"] == {"requirements": ["IDV"]}
    _common_headers_ok(req, DLT_EVENT, version=1, attempt=1)
    expected = base64.b64encode(hmac.new(secret.encode(), req.body, hashlib.sha256).digest())
    assert req.headers["X-DLT-Signature"] == expected.decode()


def test_dlt_meta_event_has_null_attributes_and_full_type() -> None:
    body = json.loads(render_body("dlt", event=META_EVENT, data=META_EVENT.data, schema_version=1))
    assert body["notification_type"] == "webhook.endpoint_auto_paused"
    assert all(body[k] is None for k in DLT_ATTRS)
    assert body["details"] == META_EVENT.data


def test_dlt_notification_type_keeps_later_dots() -> None:
    ev = replace(DLT_EVENT, type="account_locks.applyFundingLock")
    body = json.loads(render_body("dlt", event=ev, data={}, schema_version=1))
    assert body["notification_type"] == "applyFundingLock"


# ---- standard --------------------------------------------------------------------------------


@pytest.mark.parametrize("event", [NT_EVENT, DLT_EVENT, META_EVENT])
def test_standard_body_and_reference_verification(event: Event) -> None:
    old, new = generate_secret("standard"), generate_secret("standard")
    now = time.time()  # the reference library checks a +-5 min window around its own clock
    req = _render("standard", event, [new, old], now=now, attempt=2)
    body = json.loads(req.body)
    assert list(body) == ["type", "timestamp", "data"]
    assert body["type"] == event.type
    fraction = ".500" if event is DLT_EVENT else ""
    assert body["timestamp"] == f"2024-10-29T12:15:42{fraction}Z"
    assert body["data"] == event.data
    assert req.headers["webhook-id"] == event.id
    assert req.headers["webhook-timestamp"] == str(int(now))
    _common_headers_ok(req, event, version=event.schema_version, attempt=2)
    for secret in (old, new):
        assert Webhook(secret).verify(req.body, req.headers) == body


def test_standard_webhook_id_stable_across_attempts() -> None:
    secret = generate_secret("standard")
    a = _render("standard", NT_EVENT, [secret], attempt=1, now=NOW)
    b = _render("standard", NT_EVENT, [secret], attempt=2, now=NOW + 60)
    assert a.headers["webhook-id"] == b.headers["webhook-id"] == NT_EVENT.id
    assert a.body == b.body
    assert a.headers["webhook-signature"] != b.headers["webhook-signature"]


# ---- common ----------------------------------------------------------------------------------


def test_render_equals_render_body_plus_sign_headers() -> None:
    secret = generate_secret("novatrade")
    req = _render("novatrade", NT_EVENT, [secret], data={"a": 1}, schema_version=1, attempt=4)
    body = render_body("novatrade", event=NT_EVENT, data={"a": 1}, schema_version=1)
    headers = sign_headers(
        "novatrade",
        event=NT_EVENT,
        body=body,
        delivery_id="dlv_1",
        attempt=4,
        secrets=[secret],
        now=NOW,
        extra_headers=None,
        schema_version=1,
    )
    assert req == RenderedRequest(body=body, headers=headers)


@pytest.mark.parametrize(
    ("fmt", "secret_fmt", "sig_header"),
    [
        ("novatrade", "novatrade", "X-Novatrade-Signature"),
        ("dlt", "dlt", "X-DLT-Signature"),
        ("standard", "standard", "webhook-signature"),
    ],
)
def test_custom_headers_cannot_override(fmt: str, secret_fmt: str, sig_header: str) -> None:
    extra = {
        "authorization": "Bearer receiver-token",
        "X-Team": "compliance",
        "content-type": "text/plain",
        "USER-AGENT": "evil",
        "x-tidings-attempt": "99",
        "X-Tidings-Custom": "nope",
        sig_header.upper(): "forged",
        "Webhook-Id": "forged",
        "x-novatrade-signature": "forged",
        "x-dlt-signature": "forged",
        "Host": "internal",
        "Content-Length": "1",
        "X-Bad": "a\r\nInjected: 1",
        "bad name": "x",
    }
    plain = _render(fmt, NT_EVENT, [generate_secret(secret_fmt)], now=NOW)
    req = _render(fmt, NT_EVENT, [generate_secret(secret_fmt)], now=NOW, extra_headers=extra)
    lowered = {k.lower(): v for k, v in req.headers.items()}
    assert len(lowered) == len(req.headers)  # no case-variant duplicates
    assert lowered["authorization"] == "Bearer receiver-token"
    assert lowered["x-team"] == "compliance"
    assert set(lowered) == {k.lower() for k in plain.headers} | {"authorization", "x-team"}
    for name, value in plain.headers.items():
        if name.lower() != sig_header.lower():  # signatures differ: other secret
            assert lowered[name.lower()] == value
    assert lowered[sig_header.lower()] != "forged"


def test_validate_custom_headers() -> None:
    assert validate_custom_headers({"Authorization": "Bearer x", "X-Team": "a"}) is None
    assert validate_custom_headers({}) is None
    for bad in (
        {"Content-Type": "text/plain"},
        {"x-tidings-attempt": "1"},
        {"X-Novatrade-Signature": "x"},
        {"bad name": "x"},
        {"X-A": "line\nbreak"},
        {"X-A": "x" * 2000},
        {f"X-{i}": "v" for i in range(21)},
    ):
        assert validate_custom_headers(bad) is not None, bad


def test_unknown_format_and_bad_attempt() -> None:
    with pytest.raises(ValueError):
        _render("xml", NT_EVENT, ["s"])
    with pytest.raises(ValueError):
        _render("novatrade", NT_EVENT, [generate_secret("novatrade")], attempt=0)


def test_the_correlation_id_header_is_sent_when_the_event_has_one() -> None:
    """Issue 26 item 7: X-Tidings-Correlation-Id on every format's attempts, and the receiver
    SDK reads the same header name."""
    from tidings import formats
    from tidings.receiver import events as receiver_events

    assert receiver_events.CORRELATION_ID_HEADER == formats.CORRELATION_ID_HEADER
    base = Event(
        id="evt_1",
        organization_id="org",
        type="compliance.status_changed",
        schema_version=1,
        source="WEB_APP",
        created_at=1_767_225_600.0,
        data={"orderId": "o"},
    )
    for fmt in ("novatrade", "dlt", "standard"):
        secrets = [generate_secret(fmt)]
        without = formats.sign_headers(fmt, event=base, body=b"{}", delivery_id="dlv_1", attempt=1,
                                  secrets=secrets, now=1_767_225_600.0)  # fmt: skip
        assert "X-Tidings-Correlation-Id" not in without
        made = formats.sign_headers(fmt, event=replace(base, correlation_id="req-9"), body=b"{}",
                               delivery_id="dlv_1", attempt=1, secrets=secrets,
                               now=1_767_225_600.0)  # fmt: skip
        assert made["X-Tidings-Correlation-Id"] == "req-9"


@pytest.mark.parametrize("event", [NT_EVENT, DLT_EVENT], ids=["novatrade", "dlt"])
def test_the_sequence_headers_go_beside_every_format_and_change_no_body(event: Event) -> None:
    """Issue 25: X-Tidings-Sequence and X-Tidings-Previous-Event-Id are headers in every format
    (for standard, beside webhook-id/-timestamp/-signature, as that specification allows); the
    body bytes are the same with or without them, and the signatures still verify (the standard
    one with the reference library); the receiver SDK reads the same header names."""
    from tidings import formats
    from tidings.receiver import events as receiver_events

    assert receiver_events.SEQUENCE_HEADER == formats.SEQUENCE_HEADER
    assert receiver_events.PREVIOUS_EVENT_ID_HEADER == formats.PREVIOUS_EVENT_HEADER
    for fmt in ("novatrade", "dlt", "standard"):
        secret = generate_secret(fmt)
        now = time.time()
        body = render_body(fmt, event=event, data=event.data, schema_version=event.schema_version)
        plain = sign_headers(fmt, event=event, body=body, delivery_id="dlv_1", attempt=1,
                             secrets=[secret], now=now)  # fmt: skip
        assert "X-Tidings-Sequence" not in plain and "X-Tidings-Previous-Event-Id" not in plain
        headers = sign_headers(fmt, event=event, body=body, delivery_id="dlv_1", attempt=1,
                               secrets=[secret], now=now, sequence=7,
                               previous_event_id="evt_6")  # fmt: skip
        assert headers["X-Tidings-Sequence"] == "7"
        assert headers["X-Tidings-Previous-Event-Id"] == "evt_6"
        added = {"X-Tidings-Sequence", "X-Tidings-Previous-Event-Id"}
        assert {k: v for k, v in headers.items() if k not in added} == plain
        if fmt == "standard":
            assert Webhook(secret).verify(body, headers) == json.loads(body)
