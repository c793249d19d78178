"""Schemathesis against the served `/openapi.json` of a real `tidings serve`, on SQLite and on
PostgreSQL (issue 23). Every operation, with a platform key and with an organization key:

- with a key of a kind the operation takes (`x-tidings-keys`): MAX_EXAMPLES generated requests,
  as many again with the path's ids pinned to ones that exist (an organization, its endpoints,
  an event and its delivery, states made by the catalogs' own publish examples, taken from the
  description), so the success answers are checked too and not only 404s, and NEGATIVE_EXAMPLES
  requests that break the description (the answer must still be one it describes: a 4xx in the
  error model, or a success where the break is one HTTP lets a server ignore, like an unknown
  query parameter or header; schemathesis' `negative_data_rejection` would call those failures);
- with a key of the other kind: WRONG_KIND_EXAMPLES requests (each a 403 in the error model).

No answer may be a 5xx or break the description (status code, content type, body schema,
headers), and every operation must have answered a 2xx at least once. A second run with a
rate nothing keeps up with checks that every operation taking a key answers 429 as described.
The counts are printed (`-s`) for the closing note."""

from __future__ import annotations

import collections
import copy
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.core import NOT_SET
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.acceptance.conftest import clean_env

PLATFORM_KEY = "tdk_platform_schemathesis_0123456789abcdef"
MAX_EXAMPLES = 12
NEGATIVE_EXAMPLES = 6
WRONG_KIND_EXAMPLES = 3
LIMITED_EXAMPLES = 3
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    response_headers_conformance,
]
# What a generated DELETE may remove, by path parameter (the seed's other ids stay for the
# operations after it): an endpoint of its own, an organization key of its own.
DOOMED = {"endpoint_id": "doomed endpoint_id", "key_id": "doomed key_id"}
# Bodies that succeed, by operation, for those whose generated bodies cannot (an event must be
# of a catalog type with data valid for its schema; an endpoint's URL must be one it accepts):
# the catalogs' publish examples from the description, and the seed's endpoint.
BODIES: dict[str, list[Any]] = collections.defaultdict(list)
BODY_EXAMPLES = 2


@dataclass
class Tally:
    calls: collections.Counter[str] = field(default_factory=collections.Counter)
    statuses: collections.Counter[int] = field(default_factory=collections.Counter)
    succeeded: set[str] = field(default_factory=set)


def _ok(r: httpx.Response, status: int = 200) -> dict[str, Any]:
    assert r.status_code == status, (r.request.url, r.text)
    return dict(r.json())


def _seed(url: str, spec: dict[str, Any]) -> tuple[str, dict[str, str]]:
    """An organization with two endpoints, an event delivered to one, a partner, and the
    states the catalogs' publish examples (from the description) make; its key and the ids
    that exist, by path parameter name."""
    platform = {"Authorization": f"Bearer {PLATFORM_KEY}"}
    org = _ok(httpx.post(f"{url}/v1/organizations", json={"name": "acme"}, headers=platform), 201)
    uuid = str(org["organizationUuid"])
    headers = {"Authorization": f"Bearer {org['apiKey']}"}

    def endpoint() -> str:
        body: dict[str, Any] = {
            "url": "http://127.0.0.1:9/hooks",
            "eventTypes": ["compliance.*", "account_locks.*"],
            "format": "standard",
        }
        BODIES["POST /v1/endpoints"] = [body]
        return str(_ok(httpx.post(f"{url}/v1/endpoints", json=body, headers=headers), 201)["id"])

    kept, doomed = endpoint(), endpoint()
    _ok(
        httpx.post(
            f"{url}/v1/organizations/{uuid}/partners",
            json={"name": "dealer"},
            headers=platform,
        ),
        201,
    )
    publish = spec["paths"]["/v1/events"]["post"]["requestBody"]["content"]["application/json"]
    event_ids = []
    for example in publish["examples"].values():
        envelope = copy.deepcopy(example["value"])
        envelope["organizationUuid"] = uuid
        BODIES["POST /v1/events"].append(envelope)
        r = httpx.post(f"{url}/v1/events", json=envelope, headers=platform)
        event_ids.append(str(_ok(r, 201)["id"]))
    # an entitlement too: the dlt example's envelope as an entitlement's start
    dlt = copy.deepcopy(publish["examples"]["dlt"]["value"])
    dlt.update(organizationUuid=uuid, type="rfi.entitlementStarted", data={"description": "rfi"})
    _ok(httpx.post(f"{url}/v1/events", json=dlt, headers=platform), 201)
    doomed_key = httpx.post(f"{url}/v1/organizations/{uuid}/api-keys", json={}, headers=platform)
    ids = {"organization_uuid": uuid, "endpoint_id": kept, DOOMED["endpoint_id"]: doomed}
    ids[DOOMED["key_id"]] = str(_ok(doomed_key, 201)["id"])
    ids["event_id"] = event_ids[0]
    # the erasures (explored last, as their routes come last): of the seeded organization
    BODIES["POST /v1/events/{event_id}/erase"] = [{"organizationUuid": uuid}]
    BODIES["POST /v1/subjects/{subject}/erase"] = [{"organizationUuid": uuid}]
    deadline = time.monotonic() + 20
    while "delivery_id" not in ids and time.monotonic() < deadline:
        page = _ok(httpx.get(f"{url}/v1/deliveries?endpointId={kept}", headers=headers))
        if page["items"]:
            ids["delivery_id"] = str(page["items"][0]["id"])
        time.sleep(0.1)
    types = _ok(httpx.get(f"{url}/v1/event-types", headers=headers))
    ids["type_name"] = str(types["items"][0]["type"])
    for path, name, key in (
        ("/v1/orders", "order_id", "orderId"),
        ("/v1/owners", "owner_id", "ownerId"),
        ("/v1/entitlements", "entitlement_id", "entitlementId"),
    ):
        items = _ok(httpx.get(url + path, headers=headers))["items"]
        if items:
            ids[name] = str(items[0][key])
    return str(org["apiKey"]), ids


def _explore(
    operation: Any,
    base_url: str,
    kind: str,
    key: str,
    tally: Tally,
    *,
    examples: int,
    mode: GenerationMode = GenerationMode.POSITIVE,
    path_parameters: dict[str, str] | None = None,
    body: Any = NOT_SET,
) -> None:
    @settings(
        max_examples=examples,
        deadline=None,
        database=None,
        derandomize=True,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(case=operation.as_strategy(mode, path_parameters=path_parameters, body=body))
    def run(case: Any) -> None:
        response = case.call_and_validate(
            base_url=base_url, headers={"Authorization": f"Bearer {key}"}, checks=CHECKS
        )
        tally.calls[f"{kind} {mode.value}"] += 1
        tally.statuses[response.status_code] += 1
        if response.status_code < 300:
            tally.succeeded.add(operation.label)

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
    spec = httpx.get(served.url + "/openapi.json").json()
    BODIES.clear()
    org_key, ids = _seed(served.url, spec)
    assert {"delivery_id", "order_id", "owner_id", "entitlement_id"} <= set(ids), ids
    schema = schemathesis.openapi.from_url(served.url + "/openapi.json")
    tally = Tally()
    labels = []
    for result in schema.get_all_operations():
        operation = result.ok()  # type: ignore[union-attr]
        labels.append(operation.label)
        takes = spec["paths"][operation.path][operation.method.lower()].get("x-tidings-keys")
        names = [p.name for p in operation.path_parameters]
        inputs = names or len(operation.query) or len(operation.headers) or len(operation.body)
        if operation.method.upper() == "DELETE":
            pinned = {n: ids[DOOMED[n]] for n in names if n in DOOMED}
        else:
            pinned = {n: ids[n] for n in names if n in ids}
        for kind, key in (("platform", PLATFORM_KEY), ("organization", org_key)):
            if takes is not None and kind not in takes:
                _explore(operation, served.url, kind, key, tally, examples=WRONG_KIND_EXAMPLES)
                continue
            _explore(operation, served.url, kind, key, tally, examples=MAX_EXAMPLES)
            if names and len(pinned) == len(names):
                _explore(
                    operation,
                    served.url,
                    kind,
                    key,
                    tally,
                    examples=MAX_EXAMPLES,
                    path_parameters=pinned,
                )
            for body in BODIES.get(operation.label, []):
                _explore(
                    operation,
                    served.url,
                    kind,
                    key,
                    tally,
                    examples=BODY_EXAMPLES,
                    body=body,
                    path_parameters=pinned or None,
                )
            if inputs:
                _explore(
                    operation,
                    served.url,
                    kind,
                    key,
                    tally,
                    examples=NEGATIVE_EXAMPLES,
                    mode=GenerationMode.NEGATIVE,
                )
    print(
        f"\nschemathesis ({backend}): {len(labels)} operations, "
        f"{sum(tally.calls.values())} calls ({dict(sorted(tally.calls.items()))}), "
        f"statuses {dict(sorted(tally.statuses.items()))}, "
        f"operations with a 2xx: {len(tally.succeeded)}"
    )
    assert len(labels) >= 30
    assert not [s for s in tally.statuses if s >= 500]
    assert sorted(set(labels) - tally.succeeded) == [], sorted(set(labels) - tally.succeeded)


pytestmark = pytest.mark.timeout(600)


def test_the_429_of_a_key_past_its_rate_is_as_described(
    backend: str, fresh_database_url_factory: Callable[..., str], serve_process: Any
) -> None:
    """With a rate nothing keeps up with, on both key kinds (platform keys limited when
    asked): every operation that takes a key answers 429, and each 429 is one the description
    gives it (the error model, `Retry-After`)."""
    served = serve_process(
        env=clean_env(
            TIDINGS_DATABASE_URL=fresh_database_url_factory(backend),
            TIDINGS_PLATFORM_KEY=PLATFORM_KEY,
            TIDINGS_API_RATE_PER_SECOND="0.001",
            TIDINGS_API_RATE_BURST="1",
            TIDINGS_API_RATE_PLATFORM_KEYS="true",
        )
    )
    platform = {"Authorization": f"Bearer {PLATFORM_KEY}"}
    org = _ok(
        httpx.post(f"{served.url}/v1/organizations", json={"name": "a"}, headers=platform), 201
    )
    spec = httpx.get(served.url + "/openapi.json").json()
    schema = schemathesis.openapi.from_url(served.url + "/openapi.json")
    tally = Tally()
    limited: set[str] = set()
    keyed = set()
    for result in schema.get_all_operations():
        operation = result.ok()  # type: ignore[union-attr]
        described = spec["paths"][operation.path][operation.method.lower()]
        if described.get("x-tidings-keys") is None:
            continue
        keyed.add(operation.label)
        assert "Retry-After" in described["responses"]["429"]["headers"], operation.label
        for kind, key in (("platform", PLATFORM_KEY), ("organization", str(org["apiKey"]))):
            before = tally.statuses[429]
            _explore(operation, served.url, kind, key, tally, examples=LIMITED_EXAMPLES)
            if tally.statuses[429] > before:
                limited.add(operation.label)
    retry = httpx.get(
        f"{served.url}/v1/endpoints", headers={"Authorization": f"Bearer {org['apiKey']}"}
    )
    assert retry.status_code == 429 and int(retry.headers["Retry-After"]) >= 1
    print(
        f"\nschemathesis 429 ({backend}): {len(keyed)} operations, statuses {dict(tally.statuses)}"
    )
    assert sorted(keyed - limited) == []
