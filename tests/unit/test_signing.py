from __future__ import annotations

import base64
import json
import re
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from tidings.signing import (
    generate_secret,
    secret_fits_format,
    sign_dlt,
    sign_novatrade,
    sign_standard,
)

# A copy of /work/shared/vectors/standard-webhooks.json (the official library's test vectors),
# kept beside the tests so they never depend on a sibling directory.
VECTORS_PATH = Path(__file__).resolve().parent / "vectors" / "standard-webhooks.json"


def _vectors() -> list[dict[str, Any]]:
    data = json.loads(VECTORS_PATH.read_text())
    vectors: list[dict[str, Any]] = data["vectors"]
    assert len(vectors) >= 2
    return vectors


# ---- secrets ---------------------------------------------------------------------------------


def test_generate_standard_secret() -> None:
    secret = generate_secret("standard")
    assert re.fullmatch(r"whsec_[A-Za-z0-9+/]{43}=", secret)
    assert len(base64.b64decode(secret[6:], validate=True)) == 32
    assert secret_fits_format(secret, "standard")
    Webhook(secret)  # the reference library accepts it


@pytest.mark.parametrize(("fmt", "prefix"), [("novatrade", "ntsec_"), ("dlt", "dltsec_")])
def test_generate_hex_secrets(fmt: str, prefix: str) -> None:
    secret = generate_secret(fmt)
    assert re.fullmatch(prefix + r"[0-9a-f]{64}", secret)
    assert secret_fits_format(secret, fmt)
    assert not secret_fits_format(secret, "standard")


def test_secrets_are_random() -> None:
    assert len({generate_secret("standard") for _ in range(50)}) == 50
    assert len({generate_secret("dlt") for _ in range(50)}) == 50


def test_generate_unknown_format() -> None:
    with pytest.raises(ValueError):
        generate_secret("xml")


def test_secret_fits_format_rejects_wrong_shapes() -> None:
    assert not secret_fits_format("whsec_not*base64", "standard")
    assert not secret_fits_format("ntsec_abc", "novatrade")
    assert not secret_fits_format("ntsec_" + "A" * 64, "novatrade")
    assert not secret_fits_format(generate_secret("novatrade"), "dlt")
    assert not secret_fits_format(generate_secret("standard"), "unknown")


# ---- standard --------------------------------------------------------------------------------


@pytest.mark.parametrize("index", [0, 1])
def test_standard_webhooks_vectors(index: int) -> None:
    v = _vectors()[index]
    got = sign_standard([v["secret"]], v["msg_id"], v["timestamp"], v["payload"].encode())
    assert got == v["signature"]
    # and the reference library agrees
    ref = Webhook(v["secret"]).sign(
        v["msg_id"], datetime.fromtimestamp(v["timestamp"], tz=UTC), v["payload"]
    )
    assert got == ref


def test_standard_verifies_with_reference_library_and_rotation() -> None:
    old, new = generate_secret("standard"), generate_secret("standard")
    body = b'{"type":"kyc.vies_check_failed","timestamp":"2026-01-01T00:00:00Z","data":{}}'
    ts = int(time.time())  # the library checks a +-5 min window around its own clock
    header = sign_standard([new, old], "evt_1", ts, body)
    assert len(header.split(" ")) == 2
    headers = {"webhook-id": "evt_1", "webhook-timestamp": str(ts), "webhook-signature": header}
    for secret in (old, new):
        Webhook(secret).verify(body, headers)
    with pytest.raises(WebhookVerificationError):
        Webhook(generate_secret("standard")).verify(body, headers)
    with pytest.raises(WebhookVerificationError):
        Webhook(new).verify(body + b" ", headers)


def test_standard_refuses_non_whsec_secret() -> None:
    with pytest.raises(ValueError):
        sign_standard([generate_secret("novatrade")], "m", 1, b"{}")
    with pytest.raises(ValueError):
        sign_standard(["whsec_***"], "m", 1, b"{}")


# ---- novatrade (known answers computed with openssl) ----------------------------------------
#   K1=ntsec_000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f
#   K2=ntsec_ffeeddccbbaa99887766554433221100ffeeddccbbaa99887766554433221100
#   BODY='{"id":"evt_1","type":"compliance.status_changed","data":{"orderId":"o-1"}}'
#   printf '%s' "1730204142.$BODY" | openssl dgst -sha256 -hmac "$K1"
#   printf '%s' "1730204142.$BODY" | openssl dgst -sha256 -hmac "$K2"
NT_K1 = "ntsec_000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"
NT_K2 = "ntsec_ffeeddccbbaa99887766554433221100ffeeddccbbaa99887766554433221100"
NT_BODY = b'{"id":"evt_1","type":"compliance.status_changed","data":{"orderId":"o-1"}}'
NT_SIG1 = "aa28ae2dd09e0b88a852a69b4f56e4e1b53205f35f5192ff558a2687d92557b0"
NT_SIG2 = "c899ec7a2432b22d72f5da2e29dc6f60c3e39b1bfdfe7ce4d1d3c15c520946bb"


def test_novatrade_known_answer() -> None:
    assert sign_novatrade([NT_K1], 1730204142, NT_BODY) == f"t=1730204142,v1={NT_SIG1}"


def test_novatrade_rotation_one_v1_per_secret_in_order() -> None:
    assert (
        sign_novatrade([NT_K2, NT_K1], 1730204142, NT_BODY)
        == f"t=1730204142,v1={NT_SIG2},v1={NT_SIG1}"
    )


def test_novatrade_timestamp_is_signed() -> None:
    assert sign_novatrade([NT_K1], 1730204143, NT_BODY) != f"t=1730204143,v1={NT_SIG1}"


# ---- dlt (known answers computed with openssl) -----------------------------------------------
#   D1=dltsec_000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f
#   D2=dltsec_ffeeddccbbaa99887766554433221100ffeeddccbbaa99887766554433221100
#   DB='{"notification_id":"n-1","notification_type":"requirementsIDV","details":{}}'
#   printf '%s' "$DB" | openssl dgst -sha256 -hmac "$D1" -binary | openssl base64 -A
DLT_K1 = "dltsec_000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"
DLT_K2 = "dltsec_ffeeddccbbaa99887766554433221100ffeeddccbbaa99887766554433221100"
DLT_BODY = b'{"notification_id":"n-1","notification_type":"requirementsIDV","details":{}}'
DLT_SIG1 = "327HZtvAqBchJpMPWQjX+UNFfIpMrHgsq3mXHjA6GJk="
DLT_SIG2 = "j5svLxpABzXrV1SFhnIsbPCtfGuyxMbKupkW+vLZadk="


def test_dlt_known_answer() -> None:
    assert sign_dlt([DLT_K1], DLT_BODY) == DLT_SIG1


def test_dlt_rotation() -> None:
    assert sign_dlt([DLT_K1, DLT_K2], DLT_BODY) == f"{DLT_SIG1},{DLT_SIG2}"


@pytest.mark.parametrize("signer", ["novatrade", "dlt", "standard"])
def test_no_secret_is_an_error(signer: str) -> None:
    with pytest.raises(ValueError):
        if signer == "novatrade":
            sign_novatrade([], 1, b"")
        elif signer == "dlt":
            sign_dlt([], b"")
        else:
            sign_standard([], "m", 1, b"")


@given(n=st.integers(min_value=1, max_value=4), body=st.binary(max_size=64))
def test_rotation_one_signature_per_secret(n: int, body: bytes) -> None:
    secrets_by_fmt = {f: [generate_secret(f) for _ in range(n)] for f in ("novatrade", "dlt")}
    std = [generate_secret("standard") for _ in range(n)]
    nt = sign_novatrade(secrets_by_fmt["novatrade"], 7, body).split(",")
    assert nt[0] == "t=7" and len(nt) == n + 1
    assert nt[1:] == [
        sign_novatrade([s], 7, body).split(",")[1] for s in secrets_by_fmt["novatrade"]
    ]
    dlt = sign_dlt(secrets_by_fmt["dlt"], body).split(",")
    assert dlt == [sign_dlt([s], body) for s in secrets_by_fmt["dlt"]]
    sw = sign_standard(std, "msg", 7, body).split(" ")
    assert sw == [sign_standard([s], "msg", 7, body) for s in std]
    assert len(set(sw)) == n
