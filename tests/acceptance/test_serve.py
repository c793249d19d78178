"""`tidings serve` on a fresh machine: no setting at all, SQLite, API and worker in one process."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import threading
from typing import Any

import httpx
import orjson
from aiohttp import web

from tests.acceptance.conftest import clean_env, free_port


def test_serve_starts_with_no_setting_at_all(serve_process: Any) -> None:
    served = serve_process()
    assert httpx.get(served.url + "/healthz").status_code == 200
    ready = httpx.get(served.url + "/readyz")
    assert ready.status_code == 200, ready.text
    assert (served.cwd / "tidings-data" / "tidings.db").exists()
    key_file = served.cwd / "tidings-data" / "platform-key"
    assert oct(key_file.stat().st_mode & 0o777) == "0o600"
    key = key_file.read_text().strip()
    auth = {"Authorization": f"Bearer {key}"}
    org = httpx.post(served.url + "/v1/organizations", json={"name": "Acme"}, headers=auth)
    assert org.status_code == 201, org.text
    assert set(org.json()) >= {"organizationUuid", "name", "apiKey"}
    types = httpx.get(served.url + "/v1/event-types", headers=auth)
    assert types.status_code == 200
    assert served.stop() == 0
    assert key not in served.logs()


class _Receiver:
    """A real HTTP receiver on 127.0.0.1 in a background thread."""

    def __init__(self) -> None:
        self.port = free_port()
        self.requests: list[tuple[dict[str, str], bytes]] = []
        self.got = threading.Event()
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        self._ready.wait(10)

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)

        async def handle(request: web.Request) -> web.Response:
            self.requests.append((dict(request.headers), await request.read()))
            self.got.set()
            return web.Response(text="ok")

        app = web.Application()
        app.router.add_post("/{tail:.*}", handle)
        runner = web.AppRunner(app)
        self._loop.run_until_complete(runner.setup())
        self._loop.run_until_complete(web.TCPSite(runner, "127.0.0.1", self.port).start())
        self._ready.set()
        self._loop.run_forever()

    def close(self) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)


def test_readme_walkthrough_delivers_a_signed_event(serve_process: Any) -> None:
    receiver = _Receiver()
    try:
        served = serve_process(
            env=clean_env(
                TIDINGS_ALLOW_PRIVATE_URLS="true",
                TIDINGS_LOG_FORMAT="json",
                TIDINGS_PLATFORM_KEY="pk_walkthrough_secret_value",
            )
        )
        pk = {"Authorization": "Bearer pk_walkthrough_secret_value"}
        org = httpx.post(served.url + "/v1/organizations", json={"name": "Acme"}, headers=pk)
        org_uuid, org_key = org.json()["organizationUuid"], org.json()["apiKey"]
        ok = {"Authorization": f"Bearer {org_key}"}
        ep = httpx.post(
            served.url + "/v1/endpoints",
            json={"url": f"http://127.0.0.1:{receiver.port}/hooks", "eventTypes": ["compliance.*"]},
            headers=ok,
        )
        assert ep.status_code == 201, ep.text
        secret = ep.json()["secret"]
        assert ep.json()["format"] == "novatrade"
        event = {
            "type": "compliance.status_changed",
            "schemaVersion": 1,
            "source": "SYSTEM",
            "organizationUuid": org_uuid,
            "data": {"orderId": "ord_123", "previousStatus": "INCOMPLETE", "status": "VALID"},
        }
        pub = httpx.post(served.url + "/v1/events", json=event, headers=pk)
        assert pub.status_code == 201, pub.text
        assert receiver.got.wait(15), served.logs()
        headers, body = receiver.requests[0]
        sig = {k.lower(): v for k, v in headers.items()}["x-novatrade-signature"]
        parts = dict(p.split("=", 1) for p in sig.split(","))
        expected = hmac.new(
            secret.encode(), parts["t"].encode() + b"." + body, hashlib.sha256
        ).hexdigest()
        assert hmac.compare_digest(parts["v1"], expected)
        assert orjson.loads(body)["data"]["orderId"] == "ord_123"
        assert served.stop() == 0
        logs = served.logs()
        assert (
            secret not in logs and org_key not in logs and "pk_walkthrough_secret_value" not in logs
        )
        json_lines = [ln for ln in logs.splitlines() if ln.startswith("{")]
        assert json_lines, logs
        for line in json_lines:
            assert "action" in orjson.loads(line) or "msg" in orjson.loads(line)
    finally:
        receiver.close()


def test_serve_dev_allows_local_endpoints_and_plain_serve_names_the_setting(
    serve_process: Any,
) -> None:
    def register(served: Any) -> httpx.Response:
        key = (served.cwd / "tidings-data" / "platform-key").read_text().strip()
        org = httpx.post(
            served.url + "/v1/organizations",
            json={"name": "Acme"},
            headers={"Authorization": f"Bearer {key}"},
        )
        return httpx.post(
            served.url + "/v1/endpoints",
            json={"url": "http://127.0.0.1:9000/hooks", "eventTypes": ["compliance.*"]},
            headers={"Authorization": f"Bearer {org.json()['apiKey']}"},
        )

    plain = serve_process()
    refused = register(plain)
    assert refused.status_code == 422
    message = refused.json()["error"]["message"]
    assert "TIDINGS_ALLOW_PRIVATE_URLS=true" in message and "ALLOW_HTTP" not in message
    assert plain.stop() == 0

    dev = serve_process("--dev")
    assert register(dev).status_code == 201
    assert dev.stop() == 0
    assert "dev mode" in dev.logs()
