"""The served description is exact and the docs UI needs no internet (issue 23): the bearer
scheme and the key kinds of each operation (read from the routes' own key dependencies), the
error model on every error status (no FastAPI `{"detail"}` left), typed answers, the batch
request's schema, the conditional-read headers, catalog examples; `/docs` loads only files
the package ships."""

from __future__ import annotations

import json
import re
from typing import Any

from tests.integration.api.conftest import Api


async def spec_of(api: Api) -> dict[str, Any]:
    r = await api.client.get("/openapi.json")
    assert r.status_code == 200
    return dict(r.json())


def operations(spec: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [(m, p, op) for p, item in spec["paths"].items() for m, op in item.items()]


async def test_every_operation_says_its_keys_and_answers_the_error_model(api: Api) -> None:
    spec = await spec_of(api)
    assert spec["components"]["securitySchemes"]["bearerAuth"]["scheme"] == "bearer"
    text = json.dumps(spec)
    assert "HTTPValidationError" not in text and '"detail"' not in text
    keys = {(m, p): op.get("x-tidings-keys") for m, p, op in operations(spec)}
    assert keys[("post", "/v1/organizations")] == ["platform"]
    assert keys[("post", "/v1/events")] == ["platform"]
    assert keys[("get", "/v1/endpoints")] == ["organization"]
    assert keys[("get", "/v1/event-types")] == ["platform", "organization"]
    assert keys[("get", "/healthz")] is None
    for method, path, op in operations(spec):
        responses = op["responses"]
        if keys[(method, path)] is not None:
            assert op["security"] == [{"bearerAuth": []}], (method, path)
            assert "401" in responses, (method, path)
        for status, answer in responses.items():
            if status.startswith(("4", "5")):
                schema = answer["content"]["application/json"]["schema"]
                assert schema == {"$ref": "#/components/schemas/Error"}, (method, path, status)
            elif status.startswith("2") and status != "204":
                content = answer["content"]
                schema = next(iter(content.values()))["schema"]
                assert schema not in ({}, None) and (
                    "$ref" in schema or schema.get("type") == "string"
                ), (method, path, status)
    assert "409" in spec["paths"]["/v1/events"]["post"]["responses"]
    assert "413" in spec["paths"]["/v1/endpoints"]["post"]["responses"]
    assert "404" in spec["paths"]["/v1/endpoints/{endpoint_id}"]["get"]["responses"]


async def test_headers_batch_schema_and_examples(api: Api) -> None:
    spec = await spec_of(api)
    publish = spec["paths"]["/v1/events"]["post"]
    assert any(p["name"] == "Idempotency-Key" for p in publish["parameters"])
    examples = publish["requestBody"]["content"]["application/json"]["examples"]
    assert {"novatrade", "dlt"} <= set(examples)
    assert examples["dlt"]["value"]["attributes"]["owner_type"] == "person"
    batch = spec["paths"]["/v1/events/batch"]["post"]["requestBody"]
    ref = batch["content"]["application/json"]["schema"]["$ref"]
    assert spec["components"]["schemas"][ref.rsplit("/", 1)[1]]["properties"]["events"]["maxItems"]
    feed = spec["paths"]["/v1/events"]["get"]
    assert any(p["name"] == "If-None-Match" for p in feed["parameters"])
    assert "ETag" in feed["responses"]["200"]["headers"] and "304" in feed["responses"]


async def test_bodies_may_be_400_and_times_are_date_time(api: Api) -> None:
    """Both found by schemathesis: a body that is not UTF-8 is a 400 on every operation with a
    body, not only the raw-JSON publish routes; the RFC 3339 inputs say `date-time`, so a
    generated request sends a time and not any string."""
    spec = await spec_of(api)
    for method, path, op in operations(spec):
        if "requestBody" in op:
            assert "400" in op["responses"], (method, path)
    replay = spec["paths"]["/v1/endpoints/{endpoint_id}/replay"]["post"]["requestBody"]
    ref = replay["content"]["application/json"]["schema"]["$ref"].rsplit("/", 1)[1]
    since = spec["components"]["schemas"][ref]["properties"]["since"]
    assert since["format"] == "date-time"
    params = spec["paths"]["/v1/deliveries"]["get"]["parameters"]
    until = next(p for p in params if p["name"] == "until")["schema"]["anyOf"][0]
    assert until == {"type": "string", "format": "date-time"}
    params = spec["paths"]["/v1/orders"]["get"]["parameters"]
    changed = next(p for p in params if p["name"] == "changedSince")["schema"]["anyOf"][0]
    assert changed["format"] == "date-time"


async def test_the_docs_load_only_what_the_package_ships(api: Api) -> None:
    page = await api.client.get("/docs")
    assert page.status_code == 200
    assert "script-src 'self'" in page.headers["content-security-policy"]
    urls = re.findall(r'(?:src|href)="([^"]+)"', page.text)
    assert urls and all(u.startswith("/docs/static/") for u in urls), urls
    assert not re.search(r"<script(?![^>]*\bsrc=)", page.text)  # no inline script
    for url in urls:
        r = await api.client.get(url)
        assert r.status_code == 200 and r.content, url
    init = (await api.client.get("/docs/static/init.js")).text
    assert '"/openapi.json"' in init
    assert (await api.client.get("/redoc")).status_code == 404  # no CDN-backed page left
