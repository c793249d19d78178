"""Schemathesis against the served `/openapi.json` of a real `tidings serve`, on SQLite and on
PostgreSQL (issue 23): every operation, with a platform key and with an organization key,
a few generated requests each (bounded: MAX_EXAMPLES), and no answer may be a 5xx or break
the description (status code, content type, body schema, headers). The counts are printed
(`-s`) for the closing note."""

from __future__ import annotations

import collections
from collections.abc import Callable
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.acceptance.conftest import clean_env

PLATFORM_KEY = "tdk_platform_schemathesis_0123456789abcdef"
MAX_EXAMPLES = 12
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    response_headers_conformance,
]


def _seed(url: str) -> str:
    """An organization with an endpoint and an event, so that some generated ids exist; its
    key."""
    platform = {"Authorization": f"Bearer {PLATFORM_KEY}"}
    org = httpx.post(f"{url}/v1/organizations", json={"name": "acme"}, headers=platform).json()
    key = str(org["apiKey"])
    headers = {"Authorization": f"Bearer {key}"}
    r = httpx.post(
        f"{url}/v1/endpoints",
        json={"url": "http://127.0.0.1:9/hooks", "eventTypes": ["compliance.*"]},
        headers=headers,
    )
    assert r.status_code == 201, r.text
    event = {
        "type": "compliance.status_changed",
        "schemaVersion": 1,
        "source": "SYSTEM",
        "organizationUuid": org["organizationUuid"],
        "data": {"orderId": "ord_1", "previousStatus": None, "status": "VALID"},
    }
    assert httpx.post(f"{url}/v1/events", json=event, headers=platform).status_code == 201
    return key


def _explore(
    operation: Any,
    base_url: str,
    kind: str,
    key: str,
    calls: collections.Counter[str],
    statuses: collections.Counter[int],
) -> None:
    @settings(
        max_examples=MAX_EXAMPLES,
        deadline=None,
        database=None,
        derandomize=True,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(case=operation.as_strategy())
    def run(case: Any) -> None:
        response = case.call_and_validate(
            base_url=base_url, headers={"Authorization": f"Bearer {key}"}, checks=CHECKS
        )
        calls[kind] += 1
        statuses[response.status_code] += 1

    run()


def test_no_5xx_and_no_answer_off_the_description(
    backend: str, fresh_database_url_factory: Callable[..., str], serve_process: Any
) -> None:
    served = serve_process(
        env=clean_env(
            TIDINGS_DATABASE_URL=fresh_database_url_factory(backend),
            TIDINGS_PLATFORM_KEY=PLATFORM_KEY,
            TIDINGS_ALLOW_PRIVATE_URLS="true",
        )
    )
    org_key = _seed(served.url)
    schema = schemathesis.openapi.from_url(served.url + "/openapi.json")
    calls: collections.Counter[str] = collections.Counter()
    statuses: collections.Counter[int] = collections.Counter()
    operations = 0
    for result in schema.get_all_operations():
        operation = result.ok()  # type: ignore[union-attr]
        operations += 1
        for kind, key in (("platform", PLATFORM_KEY), ("organization", org_key)):
            _explore(operation, served.url, kind, key, calls, statuses)
    print(
        f"\nschemathesis ({backend}): {operations} operations, "
        f"{sum(calls.values())} calls ({dict(calls)}), statuses {dict(sorted(statuses.items()))}"
    )
    assert operations >= 30 and calls["platform"] and calls["organization"]
    assert not [s for s in statuses if s >= 500]


pytestmark = pytest.mark.timeout(600)
