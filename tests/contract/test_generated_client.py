"""A client generated from the served `/openapi.json` (openapi-python-client, installed by
scripts/bootstrap in `.venv/openapi-client`) runs the README's walk-through against a real
`tidings serve` (issue 23): organization, endpoint, publish, the delivery at a real receiver
verified with the endpoint's secret, history, the event, state, replay. Every call goes
through the generated functions and models, so the description is good enough to build an
integration from."""

from __future__ import annotations

import importlib
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import orjson

from tests.acceptance.conftest import clean_env
from tests.acceptance.test_serve import _Receiver as Receiver
from tidings.receiver.verify import verify

ROOT = Path(__file__).resolve().parents[2]
GENERATOR = ROOT / ".venv" / "openapi-client" / "bin" / "openapi-python-client"
PLATFORM_KEY = "tdk_platform_generated_client_0123456789ab"


def _generate(spec_url: str, into: Path) -> Any:
    spec = into / "openapi.json"
    spec.write_bytes(httpx.get(spec_url).content)
    package = into / "tidings_client"
    command = [str(GENERATOR), "generate", "--path", str(spec), "--meta", "none"]
    done = subprocess.run(
        [*command, "--output-path", str(package)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    sys.path.insert(0, str(into))
    try:
        return importlib.import_module("tidings_client")
    finally:
        sys.path.remove(str(into))


def test_a_generated_client_runs_the_walkthrough(
    backend: str,
    fresh_database_url_factory: Callable[..., str],
    serve_process: Any,
    tmp_path: Path,
) -> None:
    assert GENERATOR.exists(), "scripts/bootstrap installs the client generator"
    served = serve_process(
        env=clean_env(
            TIDINGS_DATABASE_URL=fresh_database_url_factory(backend),
            TIDINGS_PLATFORM_KEY=PLATFORM_KEY,
            TIDINGS_ALLOW_PRIVATE_URLS="true",
        )
    )
    for name in [
        m for m in sys.modules if m == "tidings_client" or m.startswith("tidings_client.")
    ]:
        del sys.modules[name]  # the other backend's run generated its own
    client = _generate(served.url + "/openapi.json", tmp_path)
    api = importlib.import_module("tidings_client.api")
    models = importlib.import_module("tidings_client.models")

    def call(group: str, operation: str, **kw: Any) -> Any:
        module = importlib.import_module(f"tidings_client.api.{group}.{operation}")
        answer = module.sync_detailed(**kw)
        assert answer.status_code < 300, answer.content
        return answer.parsed

    assert api is not None
    receiver = Receiver()
    try:
        platform = client.AuthenticatedClient(base_url=served.url, token=PLATFORM_KEY)
        org = call(
            "organizations",
            "create_organization",
            client=platform,
            body=models.OrganizationIn(name="Acme Exports"),
        )
        assert isinstance(org, models.OrganizationOut)
        acme = client.AuthenticatedClient(base_url=served.url, token=org.api_key)
        endpoint = call(
            "endpoints",
            "create_endpoint",
            client=acme,
            body=models.EndpointIn(
                url=f"http://127.0.0.1:{receiver.port}/hooks", event_types=["compliance.*"]
            ),
        )
        assert isinstance(endpoint, models.EndpointCreated) and endpoint.secret
        envelope = {
            "type": "compliance.status_changed",
            "schemaVersion": 1,
            "source": "WEB_APP",
            "organizationUuid": org.organization_uuid,
            "data": {"orderId": "ord_8HJ2K", "previousStatus": "INCOMPLETE", "status": "VALID"},
        }
        body_model = next(getattr(models, n) for n in dir(models) if n.startswith("PublishEvent"))
        event = call(
            "events", "publish_event", client=platform, body=body_model.from_dict(envelope)
        )
        assert isinstance(event, models.EventOut) and event.type_ == "compliance.status_changed"
        deadline = time.monotonic() + 20
        delivery = None
        while time.monotonic() < deadline:
            page = call("deliveries", "list_deliveries", client=acme, event_id=event.id)
            delivery = page.items[0] if page.items else None
            if delivery is not None and delivery.status.value == "succeeded":
                break
            time.sleep(0.2)
        assert delivery is not None and delivery.status.value == "succeeded", served.logs()
        headers, raw = receiver.requests[0]
        verify("novatrade", raw, headers, endpoint.secret)
        assert orjson.loads(raw)["data"]["orderId"] == "ord_8HJ2K"
        one = call("deliveries", "get_delivery", client=acme, delivery_id=delivery.id)
        assert isinstance(one, models.DeliveryWithAttempts)
        assert one.attempts[0].status_code == 200
        with_deliveries = call("deliveries", "get_event", client=acme, event_id=event.id)
        assert [d.id for d in with_deliveries.deliveries] == [delivery.id]
        state = call("state", "order_compliance", client=acme, order_id="ord_8HJ2K")
        assert state.additional_properties["status"] == "VALID"
        secrets = call("endpoints", "get_secret", client=acme, endpoint_id=endpoint.id)
        assert secrets.secret == endpoint.secret
        replayed = call("deliveries", "replay_delivery", client=acme, delivery_id=delivery.id)
        assert isinstance(replayed, models.DeliveryOut) and replayed.series == 2
        # an error answer parses into the error model too
        missing = importlib.import_module("tidings_client.api.endpoints.get_endpoint")
        answer = missing.sync_detailed(client=acme, endpoint_id="ep_none")
        assert answer.status_code == 404 and isinstance(answer.parsed, models.Error)
        assert answer.parsed.error.code == "not_found"
    finally:
        receiver.close()
