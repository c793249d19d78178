"""`GET /v1/audit-log` over HTTP, on both backends (issue 22 section 3): the entries of the
API's own changes with the caller's key and address; an organization reads its own, the platform
every one; filters by action, target and time; keyset pages; bad input named; a publish key
refused; no secret in any entry."""

from __future__ import annotations

from typing import Any

from tests.integration.api.conftest import Api


async def _log(api: Api, headers: dict[str, str], **params: Any) -> dict[str, Any]:
    r = await api.client.get("/v1/audit-log", params=params, headers=headers)
    assert r.status_code == 200, r.text
    return dict(r.json())


async def test_the_audit_log_shows_who_changed_what_from_where(api: Api) -> None:
    acme = await api.org("acme")
    globex = await api.org("globex")
    r = await api.client.post(
        "/v1/endpoints",
        json={
            "url": "https://hooks.example.com/in",
            "eventTypes": ["compliance.*"],
            "headers": {"X-Token": "header-credential-77"},
        },
        headers=acme.headers,
    )
    assert r.status_code == 201, r.text
    endpoint = r.json()
    secret = (await api.client.get(f"/v1/endpoints/{endpoint['id']}/secret",
                                   headers=acme.headers)).json()  # fmt: skip
    r = await api.client.post(f"/v1/endpoints/{endpoint['id']}/pause", headers=acme.headers)
    assert r.status_code == 200, r.text
    made = await api.client.post(
        f"/v1/organizations/{acme.id}/api-keys", json={"name": "bi", "scope": "read"},
        headers=api.platform,
    )  # fmt: skip
    assert made.status_code == 201, made.text
    r = await api.client.post(
        f"/v1/organizations/{acme.id}/portal-sessions", json={"readOnly": True},
        headers=api.platform,
    )  # fmt: skip
    assert r.status_code == 201, r.text
    portal_url = r.json()["url"]

    own = await _log(api, acme.headers)
    actions = [e["action"] for e in own["items"]]
    assert actions == [
        "organization.create",
        "endpoint.create",
        "endpoint.secret_read",
        "endpoint.pause",
        "key.create",
        "portal_link.mint",
    ]
    assert {e["organizationUuid"] for e in own["items"]} == {acme.id}
    created = own["items"][1]
    assert created["targetId"] == endpoint["id"]
    assert created["changes"]["headers"] == "(changed)"
    assert created["actor"]["clientAddress"] == "127.0.0.1"  # httpx's ASGI client
    assert created["actor"]["sessionId"] is None
    assert created["at"].endswith("Z")
    everything = str(own)
    for hidden in ("header-credential-77", secret["secret"], made.json()["apiKey"],
                   portal_url.rsplit("/", 1)[-1]):  # fmt: skip
        assert hidden not in everything

    # the platform sees both organizations; the organization never sees the other's
    platform = await _log(api, api.platform, limit=500)
    assert {acme.id, globex.id} <= {e["organizationUuid"] for e in platform["items"]}
    assert globex.id not in str(own)
    # filters
    paused = await _log(api, acme.headers, action="endpoint.pause")
    assert [e["targetId"] for e in paused["items"]] == [endpoint["id"]]
    about = await _log(api, acme.headers, targetId=endpoint["id"])
    assert [e["action"] for e in about["items"]] == [
        "endpoint.create",
        "endpoint.secret_read",
        "endpoint.pause",
    ]
    later = await _log(api, acme.headers, since="2999-01-01T00:00:00Z")
    assert later == {"items": [], "nextCursor": None}
    # keyset pages: every entry once, in order
    seen: list[str] = []
    cursor: str | None = None
    while True:
        params: dict[str, Any] = {"limit": 2} | ({"cursor": cursor} if cursor else {})
        page = await _log(api, acme.headers, **params)
        seen += [e["id"] for e in page["items"]]
        cursor = page["nextCursor"]
        if cursor is None:
            break
    assert seen == [e["id"] for e in own["items"]]


async def test_bad_queries_are_named_and_a_publish_key_is_refused(api: Api) -> None:
    acme = await api.org()
    cases: list[tuple[dict[str, str | int], str]] = [
        ({"since": "yesterday"}, "query.since"),
        ({"cursor": "not-ours"}, "query.cursor"),
        ({"limit": 0}, "query.limit"),
    ]
    for params, path in cases:
        r = await api.client.get("/v1/audit-log", params=params, headers=acme.headers)
        assert r.status_code == 422, r.text
        assert path in str(r.json()), r.json()
    made = await api.client.post("/v1/api-keys", json={"scope": "publish"}, headers=api.platform)
    assert made.status_code == 201, made.text
    r = await api.client.get(
        "/v1/audit-log", headers={"Authorization": f"Bearer {made.json()['apiKey']}"}
    )
    assert r.status_code == 403, r.text
    r = await api.client.get("/v1/audit-log")
    assert r.status_code == 401, r.text
