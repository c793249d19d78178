"""Organizations, partners and keys (issue 2 item 3), errors and limits (item 7), over HTTP on
both backends."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator

from tests.integration.api.conftest import PLATFORM_KEY, Api, MakeApi


async def test_platform_key_creates_an_organization_with_its_first_key(api: Api) -> None:
    r = await api.client.post("/v1/organizations", json={"name": "Acme"}, headers=api.platform)
    assert r.status_code == 201
    body = r.json()
    assert set(body) == {"organizationUuid", "name", "apiKey"}
    assert body["name"] == "Acme"
    assert body["apiKey"].startswith("tdk_org_")
    key = await api.store.find_api_key(hashlib.sha256(body["apiKey"].encode()).hexdigest())
    assert key is not None and key.organization_id == body["organizationUuid"]


async def test_organization_uuid_can_be_chosen_and_is_unique(api: Api) -> None:
    payload = {"name": "Acme", "organizationUuid": "3f1c0e7a-0000-4000-8000-000000000001"}
    r = await api.client.post("/v1/organizations", json=payload, headers=api.platform)
    assert r.status_code == 201
    assert r.json()["organizationUuid"] == payload["organizationUuid"]
    again = await api.client.post("/v1/organizations", json=payload, headers=api.platform)
    assert again.status_code == 409
    assert again.json()["error"]["code"] == "conflict"


async def test_platform_key_lists_organizations_oldest_first_in_pages(api: Api) -> None:
    made = []
    for n in range(3):
        r = await api.client.post(
            "/v1/organizations", json={"name": f"Org {n}"}, headers=api.platform
        )
        made.append(r.json()["organizationUuid"])
    seen: list[dict[str, str]] = []
    cursor = None
    while True:
        params = {"limit": 2} | ({"cursor": cursor} if cursor else {})
        r = await api.client.get("/v1/organizations", params=params, headers=api.platform)
        assert r.status_code == 200, r.text
        seen += r.json()["items"]
        cursor = r.json()["nextCursor"]
        if cursor is None:
            break
    assert [o["organizationUuid"] for o in seen] == made
    assert set(seen[0]) == {"organizationUuid", "name", "createdAt"}  # never a key
    assert seen[0]["name"] == "Org 0" and seen[0]["createdAt"].endswith("Z")
    bad = await api.client.get("/v1/organizations?cursor=nope", headers=api.platform)
    assert bad.status_code == 422
    assert bad.json()["error"]["details"][0]["path"] == "query.cursor"
    org = await api.org()
    forbidden = await api.client.get("/v1/organizations", headers=org.headers)
    assert forbidden.status_code == 403


async def test_partners_and_more_keys(api: Api) -> None:
    org = await api.org()
    r = await api.client.post(
        f"/v1/organizations/{org.id}/partners",
        json={"name": "Dealer One", "partnerUuid": "p-1"},
        headers=api.platform,
    )
    assert r.status_code == 201
    assert r.json() == {"partnerUuid": "p-1", "name": "Dealer One"}
    dup = await api.client.post(
        f"/v1/organizations/{org.id}/partners",
        json={"name": "again", "partnerUuid": "p-1"},
        headers=api.platform,
    )
    assert dup.status_code == 409
    listed = await api.client.get(f"/v1/organizations/{org.id}/partners", headers=api.platform)
    assert [p["partnerUuid"] for p in listed.json()["items"]] == ["p-1"]

    r = await api.client.post(f"/v1/organizations/{org.id}/api-keys", headers=api.platform)
    assert r.status_code == 201
    second = r.json()["apiKey"]
    assert second != org.key
    # the new key works for the organization's own routes
    ok = await api.client.get("/v1/endpoints", headers={"Authorization": f"Bearer {second}"})
    assert ok.status_code == 200


async def test_unknown_organization_is_404(api: Api) -> None:
    for path in ("/v1/organizations/nope/partners", "/v1/organizations/nope/api-keys"):
        r = await api.client.post(path, json={"name": "x"}, headers=api.platform)
        assert r.status_code == 404, path
        assert r.json()["error"]["code"] == "not_found"


async def test_missing_or_wrong_key_is_401_wrong_kind_is_403(api: Api) -> None:
    org = await api.org()
    r = await api.client.post("/v1/organizations", json={"name": "x"})
    assert r.status_code == 401
    assert r.json()["error"]["code"] == "unauthorized"
    r = await api.client.post(
        "/v1/organizations", json={"name": "x"}, headers={"Authorization": "Bearer nope"}
    )
    assert r.status_code == 401
    r = await api.client.post(
        "/v1/organizations", json={"name": "x"}, headers={"Authorization": "Basic abc"}
    )
    assert r.status_code == 401
    # an organization key cannot act as the platform
    r = await api.client.post("/v1/organizations", json={"name": "x"}, headers=org.headers)
    assert r.status_code == 403
    assert r.json()["error"]["code"] == "platform_key_required"
    r = await api.client.post(f"/v1/organizations/{org.id}/api-keys", headers=org.headers)
    assert r.status_code == 403
    # the platform key does not manage an organization's endpoints
    r = await api.client.get("/v1/endpoints", headers=api.platform)
    assert r.status_code == 403
    assert r.json()["error"]["code"] == "organization_key_required"


async def test_keys_are_stored_hashed(api: Api) -> None:
    org = await api.org()
    assert await api.store.find_api_key(org.key) is None
    assert await api.store.find_api_key(PLATFORM_KEY) is None
    assert await api.store.find_api_key(hashlib.sha256(PLATFORM_KEY.encode()).hexdigest())


async def test_validation_errors_name_the_failing_path(api: Api) -> None:
    r = await api.client.post("/v1/organizations", json={"name": ""}, headers=api.platform)
    assert r.status_code == 422
    err = r.json()["error"]
    assert err["code"] == "validation_failed"
    assert err["details"][0]["path"] == "$.name"
    assert err["message"].startswith("$.name")
    r = await api.client.post("/v1/organizations", json={"nam": "x"}, headers=api.platform)
    assert r.status_code == 422
    assert {d["path"] for d in r.json()["error"]["details"]} == {"$.name", "$.nam"}


async def test_bad_json_is_400_with_the_error_shape(api: Api) -> None:
    r = await api.client.post(
        "/v1/organizations",
        content=b'{"name": ',
        headers={**api.platform, "Content-Type": "application/json"},
    )
    assert r.status_code == 400
    assert r.json()["error"]["code"] == "invalid_json"


async def test_a_body_that_is_not_utf8_is_the_same_400(api: Api) -> None:
    """Found by schemathesis (issue 23): FastAPI answered these with its own 400
    `bad_request` "There was an error parsing the body", which no operation described."""
    for path in ("/v1/organizations", "/v1/events", "/v1/events/batch"):
        r = await api.client.post(
            path,
            content=b"\xa0K''\xff\xfe",
            headers={**api.platform, "Content-Type": "application/json"},
        )
        assert r.status_code == 400, path
        assert r.json()["error"]["code"] == "invalid_json", path
        assert r.json()["error"]["message"] == "the request body is not valid JSON"


async def test_unknown_path_and_method_keep_the_error_shape(api: Api) -> None:
    r = await api.client.get("/v1/nothing-here")
    assert r.status_code == 404
    assert r.json()["error"]["code"] == "not_found"
    r = await api.client.delete("/v1/organizations", headers=api.platform)
    assert r.status_code == 405
    assert r.json()["error"]["code"] == "method_not_allowed"


async def test_bodies_over_the_limit_get_413(make_api: MakeApi) -> None:
    api = await make_api(max_body_bytes=1024)
    big = {"name": "x" * 2000}
    r = await api.client.post("/v1/organizations", json=big, headers=api.platform)
    assert r.status_code == 413
    assert r.json()["error"]["code"] == "payload_too_large"
    assert r.json()["error"]["details"] == {"maxBytes": 1024}

    # a streamed body with no Content-Length is cut off too
    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(4):
            yield b"x" * 512

    r = await api.client.post(
        "/v1/organizations",
        content=chunks(),
        headers={**api.platform, "Content-Type": "application/json"},
    )
    assert r.status_code == 413
    assert await api.store.list_partners("none") == []


async def test_health_and_readiness_need_no_key(api: Api) -> None:
    r = await api.client.get("/healthz")
    assert r.status_code == 200 and r.json() == {"status": "ok"}
    r = await api.client.get("/readyz")
    assert r.status_code == 200
    assert r.json()["status"] == "ready"


async def test_readyz_reports_an_unreachable_database(api: Api) -> None:
    await api.store.close()
    try:
        r = await api.client.get("/readyz")
        assert r.status_code == 503
        assert r.json()["error"]["code"] == "not_ready"
    finally:
        await api.store.connect()


async def test_openapi_is_served(api: Api) -> None:
    r = await api.client.get("/openapi.json")
    assert r.status_code == 200
    paths = r.json()["paths"]
    assert "/v1/organizations" in paths and "/healthz" in paths
    assert (await api.client.get("/docs")).status_code == 200
