"""The receiver SDK (`tidings.receiver`): verification of the three wire formats, parsing,
deduplication stores, the FastAPI and Flask integrations, and its stdlib-only import."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import subprocess
import sys
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tidings.receiver import (
    MemoryLRUStore,
    SqliteDedupStore,
    Verifier,
    WebhookEvent,
    WebhookPayloadError,
    WebhookVerificationError,
    once,
    parse,
    verify,
    verify_and_parse,
)
from tidings.receiver.dedup import Deduplicator, DedupStore
from tidings.receiver.models import (
    ApplyFundingLock,
    ComplianceStatusChanged,
    DerivativesEntitlementFailed,
    Reminder,
)

SRC = Path(__file__).resolve().parents[2] / "src"
VECTORS = Path(__file__).parent / "vectors" / "standard_webhooks_vectors.json"

NOW = 1_790_000_000.0
NT_SECRET = "ntsec_" + "ab" * 32
NT_SECRET_2 = "ntsec_" + "cd" * 32
DLT_SECRET = "dltsec_" + "12" * 32
DLT_SECRET_2 = "dltsec_" + "34" * 32
WH_SECRET = "whsec_" + base64.b64encode(b"k" * 32).decode()
WH_SECRET_2 = "whsec_" + base64.b64encode(b"j" * 32).decode()


# --- independent signers (the wire rules, written from the contract) --------------------------


def _mac(key: bytes, msg: bytes) -> bytes:
    return hmac.new(key, msg, hashlib.sha256).digest()


def nt_headers(body: bytes, secrets: list[str], t: int = int(NOW)) -> dict[str, str]:
    sigs = ",".join(f"v1={_mac(s.encode(), f'{t}.'.encode() + body).hex()}" for s in secrets)
    return {"X-Novatrade-Signature": f"t={t},{sigs}"}


def dlt_headers(body: bytes, secrets: list[str]) -> dict[str, str]:
    return {
        "X-DLT-Signature": ",".join(
            base64.b64encode(_mac(s.encode(), body)).decode() for s in secrets
        )
    }


def std_headers(
    body: bytes, secrets: list[str], msg_id: str = "evt_1", t: int = int(NOW)
) -> dict[str, str]:
    sig = " ".join(
        "v1,"
        + base64.b64encode(_mac(base64.b64decode(s[6:]), f"{msg_id}.{t}.".encode() + body)).decode()
        for s in secrets
    )
    return {"webhook-id": msg_id, "webhook-timestamp": str(t), "webhook-signature": sig}


NT_BODY = json.dumps(
    {
        "id": "evt_nt1",
        "type": "compliance.status_changed",
        "schemaVersion": 1,
        "source": "WEB_APP",
        "organizationUuid": "org-1",
        "partnerUuid": None,
        "createdAt": "2026-09-21T10:00:00.123Z",
        "data": {"orderId": "ord_1", "previousStatus": "INCOMPLETE", "status": "VALID"},
    }
).encode()
DLT_BODY = json.dumps(
    {
        "notification_id": "8e9b9a45-6212-4a77-bb43-4b8d123a5e42",
        "created_at": "2024-10-29T12:15:42Z",
        "owner_id": "own-1",
        "owner_type": "person",
        "external_id": "client_id_123",
        "entitlement_trigger_id": "trig-1",
        "entitlement_id": "ent-1",
        "notification_type": "entitlementFailed",
        "details": {
            "code": "retailDerivatives30DaysBlacklist",
            "description": "User failed Appropriateness test",
            "lock_date": "2024-10-29",
            "lock_release_date": "2024-11-28",
        },
    }
).encode()
STD_BODY = json.dumps(
    {
        "type": "rfi.reminder",
        "timestamp": "2026-09-21T10:00:00Z",
        "data": {"type": "rfi_2_week_reminder"},
    }
).encode()

SIGNERS: dict[str, Any] = {
    "novatrade": (NT_BODY, nt_headers, NT_SECRET, NT_SECRET_2),
    "dlt": (DLT_BODY, dlt_headers, DLT_SECRET, DLT_SECRET_2),
    "standard": (STD_BODY, std_headers, WH_SECRET, WH_SECRET_2),
}
ALL_FORMATS = sorted(SIGNERS)
TIMED_FORMATS = ["novatrade", "standard"]


def _reason(exc: pytest.ExceptionInfo[WebhookVerificationError]) -> str:
    return exc.value.reason


# --- verification ----------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ALL_FORMATS)
def test_valid_signature_verifies(fmt: str) -> None:
    body, sign, secret, _ = SIGNERS[fmt]
    verify(fmt, body, sign(body, [secret]), secret, now=NOW)
    verify(fmt, body, sign(body, [secret]), [secret], now=NOW)


@pytest.mark.parametrize("fmt", ALL_FORMATS)
def test_header_names_are_case_insensitive(fmt: str) -> None:
    body, sign, secret, _ = SIGNERS[fmt]
    for transform in (str.lower, str.upper):
        headers = {transform(k): v for k, v in sign(body, [secret]).items()}
        verify(fmt, body, headers, secret, now=NOW)


@pytest.mark.parametrize("fmt", ALL_FORMATS)
def test_tampered_body_is_a_mismatch(fmt: str) -> None:
    body, sign, secret, _ = SIGNERS[fmt]
    headers = sign(body, [secret])
    tampered = body.replace(b"}", b" }", 1)
    with pytest.raises(WebhookVerificationError) as exc:
        verify(fmt, tampered, headers, secret, now=NOW)
    assert _reason(exc) == "signature_mismatch"


@pytest.mark.parametrize("fmt", ALL_FORMATS)
def test_wrong_secret_is_a_mismatch(fmt: str) -> None:
    body, sign, secret, other = SIGNERS[fmt]
    with pytest.raises(WebhookVerificationError) as exc:
        verify(fmt, body, sign(body, [other]), secret, now=NOW)
    assert _reason(exc) == "signature_mismatch"


@pytest.mark.parametrize("fmt", ALL_FORMATS)
def test_sender_rotation_any_signature_matches(fmt: str) -> None:
    body, sign, secret, other = SIGNERS[fmt]
    headers = sign(body, [other, secret])  # the sender signs with new and old secret
    verify(fmt, body, headers, secret, now=NOW)
    verify(fmt, body, headers, other, now=NOW)


@pytest.mark.parametrize("fmt", ALL_FORMATS)
def test_receiver_rotation_any_secret_matches(fmt: str) -> None:
    body, sign, secret, other = SIGNERS[fmt]
    headers = sign(body, [secret])
    verify(fmt, body, headers, [other, secret], now=NOW)
    verify(fmt, body, headers, (secret, other), now=NOW)


@pytest.mark.parametrize("fmt", ALL_FORMATS)
def test_missing_signature(fmt: str) -> None:
    body, _sign, secret, _ = SIGNERS[fmt]
    with pytest.raises(WebhookVerificationError) as exc:
        verify(fmt, body, {"Content-Type": "application/json"}, secret, now=NOW)
    assert _reason(exc) == "missing_signature"


def test_standard_needs_all_three_headers() -> None:
    headers = std_headers(STD_BODY, [WH_SECRET])
    for name in list(headers):
        partial = {k: v for k, v in headers.items() if k != name}
        with pytest.raises(WebhookVerificationError) as exc:
            verify("standard", STD_BODY, partial, WH_SECRET, now=NOW)
        assert _reason(exc) == "missing_signature"


@pytest.mark.parametrize(
    ("fmt", "headers"),
    [
        ("novatrade", {"X-Novatrade-Signature": "garbage"}),
        ("novatrade", {"X-Novatrade-Signature": "v1=" + "00" * 32}),  # no t=
        ("novatrade", {"X-Novatrade-Signature": f"t={int(NOW)}"}),  # no v1=
        ("novatrade", {"X-Novatrade-Signature": f"t={int(NOW)},t=1,v1={'00' * 32}"}),
        ("novatrade", {"X-Novatrade-Signature": f"t=soon,v1={'00' * 32}"}),
        ("novatrade", {"X-Novatrade-Signature": f"t={int(NOW)},v1=nothex"}),
        ("dlt", {"X-DLT-Signature": "***not base64***"}),
        ("dlt", {"X-DLT-Signature": base64.b64encode(b"short").decode()}),
        (
            "standard",
            {"webhook-id": "m", "webhook-timestamp": str(int(NOW)), "webhook-signature": "v2,abc"},
        ),
        (
            "standard",
            {"webhook-id": "m", "webhook-timestamp": "yesterday", "webhook-signature": "v1,abc="},
        ),
    ],
)
def test_malformed_signature(fmt: str, headers: dict[str, str]) -> None:
    body, _, secret, _ = SIGNERS[fmt]
    with pytest.raises(WebhookVerificationError) as exc:
        verify(fmt, body, headers, secret, now=NOW)
    assert _reason(exc) == "malformed_signature"


@pytest.mark.parametrize("fmt", TIMED_FORMATS)
@pytest.mark.parametrize("offset", [-301, 301, -10_000])
def test_expired_or_future_timestamp(fmt: str, offset: int) -> None:
    body, sign, secret, _ = SIGNERS[fmt]
    headers = sign(body, [secret], t=int(NOW) + offset)
    with pytest.raises(WebhookVerificationError) as exc:
        verify(fmt, body, headers, secret, now=NOW)
    assert _reason(exc) == "timestamp_outside_tolerance"
    # the same delivery is fine with a wider tolerance, and at the boundary
    verify(fmt, body, headers, secret, now=NOW, tolerance_seconds=abs(offset))


@pytest.mark.parametrize("fmt", TIMED_FORMATS)
def test_timestamp_is_signed(fmt: str) -> None:
    body, sign, secret, _ = SIGNERS[fmt]
    headers = sign(body, [secret], t=int(NOW) - 1000)
    # replaying an old signature with a fresh timestamp does not verify
    fresh = {
        k: v.replace(str(int(NOW) - 1000), str(int(NOW)), 1)
        if "timestamp" in k.lower() or "novatrade" in k.lower()
        else v
        for k, v in headers.items()
    }
    assert fresh != headers
    with pytest.raises(WebhookVerificationError) as exc:
        verify(fmt, body, fresh, secret, now=NOW)
    assert _reason(exc) == "signature_mismatch"


def test_dlt_has_no_tolerance_check() -> None:
    headers = dlt_headers(DLT_BODY, [DLT_SECRET])
    verify("dlt", DLT_BODY, headers, DLT_SECRET, now=NOW + 10 * 365 * 86400)


def test_novatrade_ignores_other_schemes_and_empty_parts() -> None:
    headers = nt_headers(NT_BODY, [NT_SECRET])
    value = headers["X-Novatrade-Signature"] + ",v0=" + "11" * 32 + ","
    verify("novatrade", NT_BODY, {"x-novatrade-signature": value}, NT_SECRET, now=NOW)


def test_unknown_format() -> None:
    with pytest.raises(WebhookVerificationError) as exc:
        verify("xml", b"{}", {}, "s", now=NOW)
    assert _reason(exc) == "unknown_format"
    with pytest.raises(WebhookVerificationError) as exc:
        Verifier("xml", "s")
    assert _reason(exc) == "unknown_format"


@pytest.mark.parametrize(
    ("fmt", "secrets"),
    [
        ("novatrade", []),
        ("novatrade", [""]),
        ("dlt", WH_SECRET),  # a standard secret for a dlt endpoint
        ("standard", NT_SECRET),
        ("standard", "whsec_not*base64"),
        # url-safe base64 would silently decode to another key: refused
        ("standard", "whsec_" + base64.urlsafe_b64encode(b"\xfb\xff" * 16).decode()),
        ("standard", "whsec_"),
    ],
)
def test_bad_secret(fmt: str, secrets: Any) -> None:
    body, _sign, _, _ = SIGNERS[fmt]
    with pytest.raises(WebhookVerificationError) as exc:
        Verifier(fmt, secrets)
    assert _reason(exc) == "bad_secret"
    with pytest.raises(WebhookVerificationError) as exc:
        verify(fmt, body, {}, secrets, now=NOW)
    assert _reason(exc) == "bad_secret"


def test_standard_secret_without_prefix_is_accepted() -> None:
    headers = std_headers(STD_BODY, [WH_SECRET])
    verify("standard", STD_BODY, headers, WH_SECRET.removeprefix("whsec_"), now=NOW)


def test_errors_never_contain_the_secret() -> None:
    for fmt in ALL_FORMATS:
        body, sign, secret, other = SIGNERS[fmt]
        with pytest.raises(WebhookVerificationError) as exc:
            verify(fmt, body, sign(body, [other]), secret, now=NOW)
        assert secret not in str(exc.value)
        assert secret not in repr(Verifier(fmt, secret))


def test_verifier_object_matches_function() -> None:
    verifier = Verifier("novatrade", [NT_SECRET_2, NT_SECRET], tolerance_seconds=60)
    verifier.verify(NT_BODY, nt_headers(NT_BODY, [NT_SECRET]), now=NOW)
    with pytest.raises(WebhookVerificationError) as exc:
        verifier.verify(NT_BODY, nt_headers(NT_BODY, [NT_SECRET], t=int(NOW) - 61), now=NOW)
    assert _reason(exc) == "timestamp_outside_tolerance"
    with pytest.raises(ValueError):
        Verifier("novatrade", NT_SECRET, tolerance_seconds=-1)


def test_default_now_is_the_current_time() -> None:
    import time

    t = int(time.time())
    verify("novatrade", NT_BODY, nt_headers(NT_BODY, [NT_SECRET], t=t), NT_SECRET)
    with pytest.raises(WebhookVerificationError):
        verify("novatrade", NT_BODY, nt_headers(NT_BODY, [NT_SECRET], t=t - 3600), NT_SECRET)


@settings(max_examples=60, deadline=None)
@given(
    fmt=st.sampled_from(ALL_FORMATS),
    body=st.binary(min_size=1, max_size=200),
    raw_secret=st.binary(min_size=1, max_size=40),
    flip=st.integers(min_value=0),
)
def test_any_single_byte_change_is_detected(
    fmt: str, body: bytes, raw_secret: bytes, flip: int
) -> None:
    _, sign, _, _ = SIGNERS[fmt]
    if fmt == "standard":
        secret = "whsec_" + base64.b64encode(raw_secret).decode()
    else:
        secret = raw_secret.hex()
    headers = sign(body, [secret])
    verify(fmt, body, headers, secret, now=NOW)
    index = flip % len(body)
    tampered = body[:index] + bytes([body[index] ^ 0x01]) + body[index + 1 :]
    with pytest.raises(WebhookVerificationError) as exc:
        verify(fmt, tampered, headers, secret, now=NOW)
    assert exc.value.reason == "signature_mismatch"


# --- Standard Webhooks spec vectors and the reference package -------------------------------


def _vectors() -> list[dict[str, Any]]:
    vectors: list[dict[str, Any]] = json.loads(VECTORS.read_text())["vectors"]
    return vectors


@pytest.mark.parametrize("index", [0, 1])
def test_standard_webhooks_spec_vectors(index: int) -> None:
    v = _vectors()[index]
    headers = {
        "webhook-id": v["msg_id"],
        "webhook-timestamp": str(v["timestamp"]),
        "webhook-signature": v["signature"],
    }
    payload = v["payload"].encode()
    verify("standard", payload, headers, v["secret"], now=float(v["timestamp"]))
    # the vectors are old: with the real clock they are outside the tolerance
    with pytest.raises(WebhookVerificationError) as exc:
        verify("standard", payload, headers, v["secret"])
    assert _reason(exc) == "timestamp_outside_tolerance"
    with pytest.raises(WebhookVerificationError) as exc:
        verify("standard", payload + b" ", headers, v["secret"], now=float(v["timestamp"]))
    assert _reason(exc) == "signature_mismatch"


def test_standardwebhooks_package_signatures_verify() -> None:
    from standardwebhooks.webhooks import Webhook

    msg_id = "msg_2Lh9KRb0pzN4LePd3XiA4v12Axj"
    when = datetime.fromtimestamp(int(NOW), tz=UTC)
    signature = Webhook(WH_SECRET).sign(msg_id, when, STD_BODY.decode())
    headers = {
        "webhook-id": msg_id,
        "webhook-timestamp": str(int(NOW)),
        "webhook-signature": signature,
    }
    event = verify_and_parse("standard", STD_BODY, headers, WH_SECRET, now=NOW)
    assert event.id == msg_id
    # and ours verify with the package (it checks against the real clock)
    import time

    t = int(time.time())
    ours = std_headers(STD_BODY, [WH_SECRET_2, WH_SECRET], msg_id=msg_id, t=t)
    Webhook(WH_SECRET).verify(STD_BODY, ours)


# --- parsing ---------------------------------------------------------------------------------


def test_parse_novatrade() -> None:
    headers = {
        **nt_headers(NT_BODY, [NT_SECRET]),
        "X-Tidings-Delivery-Id": "dlv_9",
        "X-Tidings-Attempt": "3",
    }
    event = verify_and_parse("novatrade", NT_BODY, headers, NT_SECRET, now=NOW)
    assert event.id == "evt_nt1"
    assert event.type == "compliance.status_changed"
    assert event.schema_version == 1
    assert event.created_at == datetime(2026, 9, 21, 10, 0, 0, 123000, tzinfo=UTC)
    assert event.delivery_id == "dlv_9"
    assert event.attempt == 3
    assert event.format == "novatrade"
    assert event.raw == json.loads(NT_BODY)
    assert event.attributes["organizationUuid"] == "org-1"
    typed = event.typed
    assert isinstance(typed, ComplianceStatusChanged)
    assert (typed.order_id, typed.previous_status, typed.status) == ("ord_1", "INCOMPLETE", "VALID")


def test_sequence_and_previous_event_id_come_from_the_headers() -> None:
    # issue 25: in every format, next to the correlation id; absent headers give None
    plain = verify_and_parse(
        "novatrade", NT_BODY, nt_headers(NT_BODY, [NT_SECRET]), NT_SECRET, now=NOW
    )
    assert (plain.sequence, plain.previous_event_id) == (None, None)
    extra = {"x-tidings-sequence": " 42 ", "X-Tidings-Previous-Event-Id": "evt_41"}
    for fmt, body, headers, secret in (
        ("novatrade", NT_BODY, nt_headers(NT_BODY, [NT_SECRET]), NT_SECRET),
        ("dlt", DLT_BODY, dlt_headers(DLT_BODY, [DLT_SECRET]), DLT_SECRET),
        ("standard", STD_BODY, std_headers(STD_BODY, [WH_SECRET], msg_id="evt_s1"), WH_SECRET),
    ):
        event = verify_and_parse(fmt, body, {**headers, **extra}, secret, now=NOW)
        assert (event.sequence, event.previous_event_id) == (42, "evt_41")
    with pytest.raises(WebhookPayloadError, match="X-Tidings-Sequence"):
        verify_and_parse(
            "dlt",
            DLT_BODY,
            {**dlt_headers(DLT_BODY, [DLT_SECRET]), "X-Tidings-Sequence": "4x"},
            DLT_SECRET,
        )


def test_parse_dlt_takes_the_full_type_from_the_header() -> None:
    headers = {
        **dlt_headers(DLT_BODY, [DLT_SECRET]),
        "X-Tidings-Event-Type": "derivatives.entitlementFailed",
        "X-Tidings-Schema-Version": "1",
    }
    event = verify_and_parse("dlt", DLT_BODY, headers, DLT_SECRET, now=NOW)
    assert event.id == "8e9b9a45-6212-4a77-bb43-4b8d123a5e42"
    assert event.type == "derivatives.entitlementFailed"
    assert event.created_at == datetime(2024, 10, 29, 12, 15, 42, tzinfo=UTC)
    assert event.attributes["owner_id"] == "own-1"
    assert event.attributes["entitlement_id"] == "ent-1"
    typed = event.typed
    assert isinstance(typed, DerivativesEntitlementFailed)
    assert typed.code == "retailDerivatives30DaysBlacklist"
    assert typed.lock_release_date == "2024-11-28"


def test_parse_dlt_ignores_a_header_type_that_contradicts_the_body() -> None:
    headers = {
        **dlt_headers(DLT_BODY, [DLT_SECRET]),
        "X-Tidings-Event-Type": "account_locks.releaseFundingLock",
    }
    event = verify_and_parse("dlt", DLT_BODY, headers, DLT_SECRET, now=NOW)
    assert event.type == "entitlementFailed"
    assert event.typed is None  # ambiguous without the workflow: generic


def test_parse_standard() -> None:
    headers = {**std_headers(STD_BODY, [WH_SECRET], msg_id="evt_s1"), "X-Tidings-Attempt": "1"}
    event = verify_and_parse("standard", STD_BODY, headers, WH_SECRET, now=NOW)
    assert (event.id, event.type, event.attempt, event.delivery_id) == (
        "evt_s1",
        "rfi.reminder",
        1,
        None,
    )
    assert isinstance(event.typed, Reminder)
    assert event.typed.type == "rfi_2_week_reminder"


def test_unknown_type_parses_into_the_generic_event() -> None:
    body = json.dumps(
        {"id": "e", "type": "future.thing_happened", "schemaVersion": 7, "data": {"x": [1]}}
    ).encode()
    event = verify_and_parse("novatrade", body, nt_headers(body, [NT_SECRET]), NT_SECRET, now=NOW)
    assert event.type == "future.thing_happened"
    assert event.data == {"x": [1]}
    assert event.created_at is None
    assert event.typed is None


def test_unknown_schema_version_of_a_known_type_is_generic() -> None:
    raw = json.loads(NT_BODY)
    raw["schemaVersion"] = 99
    event = parse("novatrade", json.dumps(raw).encode(), {})
    assert event.schema_version == 99
    assert event.typed is None


def test_extra_properties_are_kept_and_lock_events_type() -> None:
    body = json.dumps(
        {
            "notification_id": "n1",
            "notification_type": "applyFundingLock",
            "details": {"reason_code": "EDD"},
        }
    ).encode()
    event = parse("dlt", body, {"X-Tidings-Event-Type": "account_locks.applyFundingLock"})
    typed = event.typed
    assert isinstance(typed, ApplyFundingLock)
    assert (typed.lock, typed.applied, typed.extra) == ("funding", True, {"reason_code": "EDD"})


def test_typed_data_that_does_not_fit_raises_payload_error() -> None:
    raw = json.loads(NT_BODY)
    del raw["data"]["orderId"]
    event = parse("novatrade", json.dumps(raw).encode(), {})
    with pytest.raises(WebhookPayloadError) as exc:
        _ = event.typed
    assert exc.value.reason == "malformed_payload"
    raw["data"]["orderId"] = 42
    with pytest.raises(WebhookPayloadError):
        _ = parse("novatrade", json.dumps(raw).encode(), {}).typed


@pytest.mark.parametrize(
    ("fmt", "body"),
    [
        ("novatrade", b"not json"),
        ("novatrade", b"[1, 2]"),
        ("novatrade", b'{"type": "x"}'),
        ("dlt", b'{"notification_id": "n"}'),
        ("standard", b'{"data": {}}'),
        ("novatrade", b'{"id": "e", "type": "t", "createdAt": "yesterday"}'),
    ],
)
def test_verified_but_malformed_body(fmt: str, body: bytes) -> None:
    _, sign, secret, _ = SIGNERS[fmt]
    with pytest.raises(WebhookVerificationError) as exc:
        verify_and_parse(fmt, body, sign(body, [secret]), secret, now=NOW)
    assert exc.value.reason == "malformed_payload"
    assert isinstance(exc.value, WebhookPayloadError)


# --- cross-check with the sending side (tidings.signing / tidings.formats) -------------------


def _sending_side() -> Any:
    try:
        from tidings import formats, signing
        from tidings.models import Event
    except ImportError as exc:  # pragma: no cover - only before the sending side exists
        pytest.skip(f"tidings.signing / tidings.formats not importable yet: {exc}")
    return formats, signing, Event


@pytest.mark.parametrize(
    ("fmt", "type_name", "data", "typed_cls"),
    [
        (
            "novatrade",
            "compliance.status_changed",
            {"orderId": "o1", "previousStatus": "INCOMPLETE", "status": "VALID"},
            ComplianceStatusChanged,
        ),
        (
            "dlt",
            "derivatives.entitlementFailed",
            {"code": "R0003", "description": "Acknowledgements Verification Failed"},
            DerivativesEntitlementFailed,
        ),
        ("standard", "rfi.reminder", {"type": "rfi_4_week_reminder"}, Reminder),
    ],
)
def test_deliveries_rendered_by_tidings_formats_verify_and_parse(
    fmt: str, type_name: str, data: dict[str, Any], typed_cls: type
) -> None:
    formats, signing, event_cls = _sending_side()
    secrets = [signing.generate_secret(fmt), signing.generate_secret(fmt)]
    event = event_cls(
        id="evt_x1",
        organization_id="org-1",
        type=type_name,
        schema_version=1,
        source="SYSTEM",
        created_at=NOW - 5,
        data=data,
        attributes={"owner_id": "own-1", "entitlement_id": "ent-1"},
    )
    rendered = formats.render(
        fmt,
        event=event,
        data=data,
        schema_version=1,
        delivery_id="dlv_1",
        attempt=2,
        secrets=secrets,
        now=NOW,
    )
    for secret in secrets:  # rotation: either secret verifies
        received = verify_and_parse(fmt, rendered.body, rendered.headers, secret, now=NOW + 1)
        assert received.id == "evt_x1"
        assert received.type == type_name
        assert received.schema_version == 1
        assert received.data == data
        assert received.delivery_id == "dlv_1"
        assert received.attempt == 2
        assert isinstance(received.typed, typed_cls)
    other = signing.generate_secret(fmt)
    with pytest.raises(WebhookVerificationError) as exc:
        verify(fmt, rendered.body, rendered.headers, other, now=NOW)
    assert exc.value.reason == "signature_mismatch"


@pytest.mark.parametrize("fmt", ALL_FORMATS)
def test_tidings_signing_matches_our_rules(fmt: str) -> None:
    _, signing, _ = _sending_side()
    body, sign, secret, other = SIGNERS[fmt]
    t = int(NOW)
    if fmt == "novatrade":
        theirs = {"X-Novatrade-Signature": signing.sign_novatrade([secret, other], t, body)}
    elif fmt == "dlt":
        theirs = {"X-DLT-Signature": signing.sign_dlt([secret, other], body)}
    else:
        theirs = {
            "webhook-id": "evt_1",
            "webhook-timestamp": str(t),
            "webhook-signature": signing.sign_standard([secret, other], "evt_1", t, body),
        }
    assert theirs == sign(body, [secret, other])


# --- deduplication ---------------------------------------------------------------------------


def test_memory_lru_store_records_and_evicts_least_recent() -> None:
    store = MemoryLRUStore(max_items=2)
    assert isinstance(store, DedupStore)
    assert store.seen("a") is False
    assert store.seen("a") is True
    assert store.seen("b") is False
    assert store.seen("a") is True  # a becomes the most recent
    assert store.seen("c") is False  # evicts b
    assert len(store) == 2
    assert "b" not in store
    assert store.seen("b") is False  # b was forgotten by eviction (and now evicts a)
    assert store.seen("c") is True
    store.forget("c")
    assert store.seen("c") is False
    with pytest.raises(ValueError):
        MemoryLRUStore(0)


def test_memory_store_is_atomic_across_threads() -> None:
    store = MemoryLRUStore(1000)
    results: list[bool] = []
    barrier = threading.Barrier(8)

    def worker() -> None:
        barrier.wait()
        results.append(store.seen("same"))

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == [False] + [True] * 7


def test_sqlite_store_persists_across_instances(tmp_path: Path) -> None:
    path = tmp_path / "dedup.sqlite3"
    with SqliteDedupStore(path, ttl_seconds=3600) as first:
        assert isinstance(first, DedupStore)
        assert first.seen("evt_1") is False
        assert first.seen("evt_1") is True
    with SqliteDedupStore(path, ttl_seconds=3600) as second:
        assert second.seen("evt_1") is True
        assert second.seen("evt_2") is False
        second.forget("evt_1")
        assert second.seen("evt_1") is False
        assert len(second) == 2


def test_sqlite_store_two_open_instances_share_state(tmp_path: Path) -> None:
    path = tmp_path / "dedup.sqlite3"
    a = SqliteDedupStore(path)
    b = SqliteDedupStore(path)
    try:
        assert a.seen("k") is False
        assert b.seen("k") is True
    finally:
        a.close()
        b.close()


def test_sqlite_store_ttl_expiry(tmp_path: Path) -> None:
    clock = [1000.0]
    store = SqliteDedupStore(tmp_path / "d.db", ttl_seconds=60, clock=lambda: clock[0])
    try:
        assert store.seen("k") is False
        clock[0] += 59
        assert store.seen("k") is True
        assert store.seen("other") is False
        clock[0] += 1.5  # k (recorded at 1000) is now older than 60 s; "other" is not
        assert len(store) == 1
        assert store.seen("k") is False
        assert store.seen("other") is True
    finally:
        store.close()
    with pytest.raises(ValueError):
        SqliteDedupStore(tmp_path / "x.db", ttl_seconds=0)


def _event(event_id: str) -> WebhookEvent:
    return WebhookEvent(
        id=event_id,
        type="t",
        schema_version=1,
        created_at=None,
        data={},
        raw={},
        format="novatrade",
    )


def test_once_runs_a_handler_only_for_the_first_delivery() -> None:
    calls: list[str] = []

    @once(MemoryLRUStore())
    def handle(event: WebhookEvent, suffix: str = "") -> str:
        calls.append(event.id + suffix)
        return "done"

    assert handle(_event("e1"), suffix="!") == "done"
    assert handle(_event("e1")) is None
    assert handle(_event("e2")) == "done"
    assert calls == ["e1!", "e2"]


def test_a_failing_handler_runs_again_on_the_retry() -> None:
    calls: list[int] = []
    dedup = Deduplicator(MemoryLRUStore())

    def flaky(event: WebhookEvent) -> int:
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("database down")
        return len(calls)

    with pytest.raises(RuntimeError):
        dedup.run(_event("e"), flaky)
    assert dedup.run(_event("e"), flaky) == 2
    assert dedup.run(_event("e"), flaky) is None
    assert len(calls) == 2


async def test_once_with_async_handlers(tmp_path: Path) -> None:
    store = SqliteDedupStore(tmp_path / "a.db")
    calls: list[str] = []

    @once(store)
    async def handle(event: WebhookEvent) -> str:
        calls.append(event.id)
        if event.id == "bad":
            raise ValueError("boom")
        return event.id

    try:
        assert await handle(_event("e")) == "e"
        assert await handle(_event("e")) is None
        with pytest.raises(ValueError):
            await handle(_event("bad"))
        with pytest.raises(ValueError):
            await handle(_event("bad"))  # forgotten after the failure: runs again
        assert calls == ["e", "bad", "bad"]
    finally:
        store.close()


def test_custom_dedup_key() -> None:
    dedup = Deduplicator(MemoryLRUStore(), key=lambda e: f"{e.format}:{e.id}")
    assert dedup.is_duplicate(_event("e")) is False
    assert dedup.is_duplicate(_event("e")) is True
    dedup.forget(_event("e"))
    assert dedup.is_duplicate(_event("e")) is False


# --- FastAPI and Flask -----------------------------------------------------------------------


def _fastapi_app(fmt: str, secrets: Any, tolerance: float = 300) -> Any:
    from fastapi import Depends, FastAPI

    from tidings.receiver.fastapi import webhook_dependency

    app = FastAPI()
    dep = webhook_dependency(fmt, secrets, tolerance_seconds=tolerance)
    seen = MemoryLRUStore()

    @app.post("/hook")
    async def hook(event: WebhookEvent = Depends(dep)) -> dict[str, Any]:
        return {"id": event.id, "type": event.type, "duplicate": seen.seen(event.id)}

    return app


def test_fastapi_dependency() -> None:
    import time

    from fastapi.testclient import TestClient

    client = TestClient(_fastapi_app("novatrade", [NT_SECRET_2, NT_SECRET]))
    t = int(time.time())
    headers = {**nt_headers(NT_BODY, [NT_SECRET], t=t), "Content-Type": "application/json"}
    ok = client.post("/hook", content=NT_BODY, headers=headers)
    assert ok.status_code == 200, ok.text
    assert ok.json() == {"id": "evt_nt1", "type": "compliance.status_changed", "duplicate": False}
    again = client.post("/hook", content=NT_BODY, headers=headers)
    assert again.json()["duplicate"] is True

    tampered = client.post("/hook", content=NT_BODY + b" ", headers=headers)
    assert tampered.status_code == 401
    assert tampered.json()["detail"]["reason"] == "signature_mismatch"
    missing = client.post("/hook", content=NT_BODY)
    assert missing.status_code == 401
    assert missing.json()["detail"]["reason"] == "missing_signature"
    expired = client.post(
        "/hook", content=NT_BODY, headers=nt_headers(NT_BODY, [NT_SECRET], t=t - 3600)
    )
    assert expired.status_code == 401
    assert expired.json()["detail"]["reason"] == "timestamp_outside_tolerance"
    malformed = client.post("/hook", content=NT_BODY, headers={"X-Novatrade-Signature": "x"})
    assert malformed.status_code == 400
    assert malformed.json()["detail"]["reason"] == "malformed_signature"


def test_fastapi_dependency_standard_and_misconfiguration() -> None:
    import time

    from fastapi.testclient import TestClient

    from tidings.receiver.fastapi import webhook_dependency

    client = TestClient(_fastapi_app("standard", WH_SECRET))
    headers = std_headers(STD_BODY, [WH_SECRET], msg_id="evt_s", t=int(time.time()))
    response = client.post("/hook", content=STD_BODY, headers=headers)
    assert response.status_code == 200
    assert response.json()["id"] == "evt_s"
    with pytest.raises(WebhookVerificationError) as exc:
        webhook_dependency("standard", "whsec_***")
    assert exc.value.reason == "bad_secret"


def test_flask_decorator() -> None:
    from flask import Flask

    from tidings.receiver.flask import verified_webhook

    app = Flask(__name__)
    received: list[WebhookEvent] = []

    @app.post("/hook/<tenant>")
    @verified_webhook("dlt", [DLT_SECRET, DLT_SECRET_2])
    def hook(event: WebhookEvent, tenant: str) -> dict[str, Any]:
        received.append(event)
        return {"id": event.id, "tenant": tenant}

    client = app.test_client()
    headers = {
        **dlt_headers(DLT_BODY, [DLT_SECRET_2]),
        "X-Tidings-Event-Type": "onboarding.entitlementFailed",
    }
    ok = client.post("/hook/acme", data=DLT_BODY, headers=headers)
    assert ok.status_code == 200
    assert ok.get_json() == {"id": "8e9b9a45-6212-4a77-bb43-4b8d123a5e42", "tenant": "acme"}
    assert received[0].type == "onboarding.entitlementFailed"

    bad = client.post("/hook/acme", data=DLT_BODY.replace(b"own-1", b"own-2"), headers=headers)
    assert bad.status_code == 400
    assert bad.get_json()["error"]["reason"] == "signature_mismatch"
    missing = client.post("/hook/acme", data=DLT_BODY)
    assert missing.status_code == 400
    assert missing.get_json()["error"]["reason"] == "missing_signature"
    assert len(received) == 1


# --- import isolation ------------------------------------------------------------------------

_FORBIDDEN = (
    "aiohttp",
    "asyncpg",
    "aiosqlite",
    "orjson",
    "jsonschema",
    "pydantic",
    "fastapi",
    "starlette",
    "flask",
    "uvloop",
    "typer",
    "rich",
    "prometheus_client",
)


def test_import_pulls_no_server_module() -> None:
    code = (
        "import sys, json, tidings.receiver, tidings.receiver.dedup, tidings.receiver.models\n"
        "mods = [m for m in sys.modules if m.split('.')[0] in set(sys.argv[1:])\n"
        "        or (m.startswith('tidings.') and not m.startswith('tidings.receiver'))]\n"
        "print(json.dumps(sorted(mods)))\n"
    )
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    out = subprocess.run(
        [sys.executable, "-c", code, *_FORBIDDEN],
        capture_output=True,
        text=True,
        env=env,
        check=True,
    )
    assert json.loads(out.stdout) == []


def test_import_works_with_the_standard_library_only() -> None:
    # -S: no site-packages at all, so any third-party import would fail
    code = (
        f"import sys; sys.path.insert(0, {str(SRC)!r})\n"
        "import tidings.receiver as r\n"
        "r.verify('dlt', b'{}', {'X-DLT-Signature': sys.argv[1]}, sys.argv[2])\n"
        "print('ok')\n"
    )
    sig = dlt_headers(b"{}", [DLT_SECRET])["X-DLT-Signature"]
    out = subprocess.run(
        [sys.executable, "-S", "-c", code, sig, DLT_SECRET],
        capture_output=True,
        text=True,
        env={k: v for k, v in os.environ.items() if k != "PYTHONPATH"},
        check=False,
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok"


# --- the examples of docs/receiver.md run as written -------------------------------------


def _doc_blocks() -> list[str]:
    text = (SRC.parent / "docs" / "receiver.md").read_text()
    return [block.split("```", 1)[0] for block in text.split("```python\n")[1:]]


def test_docs_fastapi_example(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import time

    from fastapi.testclient import TestClient

    block = _doc_blocks()[0]
    assert len(block.strip().splitlines()) < 20
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("TIDINGS_SECRETS", f"{NT_SECRET_2},{NT_SECRET}")
    namespace: dict[str, Any] = {}
    exec(compile(block, "docs/receiver.md", "exec"), namespace)
    client = TestClient(namespace["app"])
    headers = nt_headers(NT_BODY, [NT_SECRET], t=int(time.time()))
    assert client.post("/webhooks/tidings", content=NT_BODY, headers=headers).json() == {
        "duplicate": False
    }
    assert client.post("/webhooks/tidings", content=NT_BODY, headers=headers).json() == {
        "duplicate": True
    }
    assert client.post("/webhooks/tidings", content=NT_BODY).status_code == 401


def test_docs_flask_example() -> None:
    block = _doc_blocks()[1]
    namespace: dict[str, Any] = {"__name__": "docs_example"}
    exec(compile(block, "docs/receiver.md", "exec"), namespace)
    client = namespace["app"].test_client()
    secret = "dltsec_..."
    ok = client.post("/webhooks/tidings", data=DLT_BODY, headers=dlt_headers(DLT_BODY, [secret]))
    assert ok.status_code == 200
    bad = client.post("/webhooks/tidings", data=DLT_BODY, headers=dlt_headers(DLT_BODY, ["x"]))
    assert bad.status_code == 400
