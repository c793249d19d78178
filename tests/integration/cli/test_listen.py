"""`tidings listen` on its own: a bad signature is answered 401 and shown with its reason;
`--fail-first` answers 500 first; a body that is not an event of the format is a 400.
(A verified delivery from the real engine is in test_cli.py.)"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import httpx

from tests.integration.cli.conftest import Background, free_port, wait_until


def _listening(port: int) -> Callable[[], bool]:
    def ready() -> bool:
        try:
            return httpx.get(f"http://127.0.0.1:{port}/", timeout=1.0).status_code == 200
        except httpx.HTTPError:
            return False

    return ready


def test_listen_rejects_a_bad_signature_with_401(background: Callable[..., Background]) -> None:
    port = free_port()
    bg = background(
        "listen", "--port", str(port), "--secret", "ntsec_right", "--format", "novatrade", "--json"
    )
    wait_until(_listening(port), 20, "listen")
    body = json.dumps(
        {"id": "evt_1", "type": "compliance.status_changed", "schemaVersion": 1, "data": {}}
    )
    r = httpx.post(
        f"http://127.0.0.1:{port}/hook",
        content=body,
        headers={"X-Novatrade-Signature": "t=1700000000,v1=" + "ab" * 32},
    )
    assert r.status_code == 401
    wait_until(lambda: bg.json_lines(), 10, "a JSON line")
    seen = bg.json_lines()[0]
    assert seen["verified"] is False
    assert seen["status"] == 401
    assert seen["reason"].startswith("timestamp_outside_tolerance")
    assert bg.interrupt() == 0
    assert "1 rejected" in "".join(bg.errors)


def test_listen_fail_first_then_ok_and_bad_body(background: Callable[..., Background]) -> None:
    port = free_port()
    bg = background("listen", "--port", str(port), "--format", "dlt", "--fail-first", "1")
    wait_until(_listening(port), 20, "listen")
    body: dict[str, Any] = {
        "notification_id": "n1",
        "created_at": "2026-01-01T00:00:00Z",
        "notification_type": "requirementsIDV",
        "details": {"workflow_id": "w", "branch": "DEU", "name": "x"},
    }
    url = f"http://127.0.0.1:{port}/kyc"
    assert httpx.post(url, json=body).status_code == 500
    assert httpx.post(url, json=body).status_code == 200
    assert httpx.post(url, content=b"[1, 2]").status_code == 400
    bg.wait_for("malformed_payload")
    text = bg.text()
    assert "failing on purpose (1 of 1)" in text
    assert "unverified" in text and "requirementsIDV" in text
    assert bg.interrupt() == 0
    assert "stopped: 3 requests" in bg.text()
