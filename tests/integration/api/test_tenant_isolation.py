"""Tenant isolation over HTTP on both backends (issue 2 items 3 and 8, issue 4 item 6): an
organization key never sees or changes another organization's endpoints, deliveries or events
(404 for foreign ids, absent from lists); the wrong kind of key is 403, a missing or unknown key
401."""

from __future__ import annotations

from typing import Any

from tests.integration.api.conftest import Api, Org
from tests.integration.api.history_helpers import T0, attempt_all, make_endpoint, publish
from tidings.clock import to_rfc3339


async def _two_orgs(api: Api) -> tuple[Org, Org, dict[str, Any], dict[str, Any]]:
    a = await api.org("a")
    b = await api.org("b")
    ep_a = await make_endpoint(api, a)
    ep_b = await make_endpoint(api, b)
    return a, b, ep_a, ep_b


async def test_foreign_endpoint_ids_are_404_and_unchanged(api: Api) -> None:
    a, b, ep_a, _ = await _two_orgs(api)
    base = f"/v1/endpoints/{ep_a['id']}"
    calls: list[tuple[str, str, dict[str, Any] | None]] = [
        ("GET", base, None),
        ("PATCH", base, {"description": "mine now"}),
        ("DELETE", base, None),
        ("POST", f"{base}/pause", None),
        ("POST", f"{base}/resume", None),
        ("GET", f"{base}/secret", None),
        ("POST", f"{base}/secret/rotate", {"graceSeconds": 0}),
        ("POST", f"{base}/replay", {"since": to_rfc3339(T0), "missing": True}),
    ]
    for method, path, body in calls:
        r = await api.client.request(method, path, json=body, headers=b.headers)
        assert r.status_code == 404, (method, path, r.text)
        assert r.json()["error"]["code"] == "not_found"
    stored = await api.store.get_endpoint(a.id, ep_a["id"])
    assert stored is not None
    assert stored.status == "active" and stored.description is None
    assert [s.secret for s in stored.secrets] == [ep_a["secret"]]
    r = await api.client.get(base, headers=a.headers)
    assert r.status_code == 200 and r.json()["description"] is None


async def test_lists_hold_only_the_organizations_own_rows(api: Api) -> None:
    a, b, ep_a, ep_b = await _two_orgs(api)
    ev_a, [dlv_a] = await publish(api, a, at=T0)
    ev_b, [dlv_b] = await publish(api, b, at=T0 + 1)
    await attempt_all(api, now=T0 + 2, status_code=200)

    r = await api.client.get("/v1/endpoints", headers=b.headers)
    assert [e["id"] for e in r.json()["items"]] == [ep_b["id"]]
    r = await api.client.get("/v1/deliveries", headers=b.headers)
    assert [d["id"] for d in r.json()["items"]] == [dlv_b]
    for params in ({"endpointId": ep_a["id"]}, {"eventId": ev_a.id}, {"status": "succeeded"}):
        r = await api.client.get("/v1/deliveries", params=params, headers=b.headers)
        assert dlv_a not in [d["id"] for d in r.json()["items"]], params
    r = await api.client.get("/v1/deliveries", headers=a.headers)
    assert [d["id"] for d in r.json()["items"]] == [dlv_a]
    assert ev_b.id != ev_a.id


async def test_foreign_deliveries_and_events_are_404(api: Api) -> None:
    a, b, _, _ = await _two_orgs(api)
    ev_a, [dlv_a] = await publish(api, a, at=T0)
    await attempt_all(api, now=T0 + 1, status_code=500, final=True)
    for method, path in (
        ("GET", f"/v1/deliveries/{dlv_a}"),
        ("POST", f"/v1/deliveries/{dlv_a}/replay"),
        ("GET", f"/v1/events/{ev_a.id}"),
    ):
        r = await api.client.request(method, path, headers=b.headers)
        assert r.status_code == 404, path
    got = await api.store.get_delivery(a.id, dlv_a)
    assert got is not None and str(got.status) == "failed" and got.series == 1


async def test_the_same_event_id_in_two_organizations_stays_apart(api: Api) -> None:
    a, b, ep_a, ep_b = await _two_orgs(api)
    ev_a, [dlv_a] = await publish(api, a, at=T0, event_id="order-42-approved")
    ev_b, [dlv_b] = await publish(api, b, at=T0, event_id="order-42-approved")
    for org, dlv, ep in ((a, dlv_a, ep_a), (b, dlv_b, ep_b)):
        r = await api.client.get("/v1/events/order-42-approved", headers=org.headers)
        assert r.status_code == 200
        body = r.json()
        assert body["organizationUuid"] == org.id
        assert [(d["id"], d["endpointId"]) for d in body["deliveries"]] == [(dlv, ep["id"])]
    assert ev_a.organization_id != ev_b.organization_id


async def test_missing_replay_never_reaches_into_another_organization(api: Api) -> None:
    a = await api.org("a")
    b = await api.org("b")
    ev_a, _ = await publish(api, a, at=T0)  # before any endpoint: no delivery
    ep_b = await make_endpoint(api, b)
    r = await api.client.post(
        f"/v1/endpoints/{ep_b['id']}/replay",
        json={"since": to_rfc3339(T0 - 10), "missing": True},
        headers=b.headers,
    )
    assert r.status_code == 202 and r.json()["replayed"] == 0
    r = await api.client.get("/v1/deliveries", headers=b.headers)
    assert r.json()["items"] == []
    r = await api.client.get(f"/v1/events/{ev_a.id}", headers=a.headers)
    assert r.json()["deliveries"] == []


async def test_another_organizations_partner_cannot_be_subscribed(api: Api) -> None:
    a = await api.org("a")
    b = await api.org("b")
    partner_a = await api.partner(a)
    r = await api.client.post(
        "/v1/endpoints",
        json={
            "url": "https://hooks.example.com/x",
            "eventTypes": ["kyc.*"],
            "partnerIds": [partner_a],
        },
        headers=b.headers,
    )
    assert r.status_code == 422
    assert r.json()["error"]["details"][0]["path"] == "$.partnerIds[0]"


ORG_ROUTES: list[tuple[str, str, dict[str, Any] | None]] = [
    ("GET", "/v1/endpoints", None),
    ("POST", "/v1/endpoints", {"url": "https://hooks.example.com/x", "eventTypes": ["kyc.*"]}),
    ("GET", "/v1/endpoints/ep_x", None),
    ("PATCH", "/v1/endpoints/ep_x", {"description": "x"}),
    ("DELETE", "/v1/endpoints/ep_x", None),
    ("POST", "/v1/endpoints/ep_x/pause", None),
    ("POST", "/v1/endpoints/ep_x/resume", None),
    ("GET", "/v1/endpoints/ep_x/secret", None),
    ("POST", "/v1/endpoints/ep_x/secret/rotate", None),
    ("POST", "/v1/endpoints/ep_x/replay", {"since": "2026-01-01T00:00:00Z"}),
    ("GET", "/v1/deliveries", None),
    ("GET", "/v1/deliveries/dlv_x", None),
    ("POST", "/v1/deliveries/dlv_x/replay", None),
    ("GET", "/v1/events/evt_x", None),
]


async def test_platform_key_on_organization_routes_is_403(api: Api) -> None:
    for method, path, body in ORG_ROUTES:
        r = await api.client.request(method, path, json=body, headers=api.platform)
        assert r.status_code == 403, (method, path)
        assert r.json()["error"]["code"] == "organization_key_required"


async def test_missing_or_unknown_key_is_401(api: Api) -> None:
    for headers in ({}, {"Authorization": "Bearer tdk_org_unknown"}, {"Authorization": "x"}):
        for method, path, body in ORG_ROUTES:
            r = await api.client.request(method, path, json=body, headers=headers)
            assert r.status_code == 401, (method, path, headers)
            assert r.json()["error"]["code"] == "unauthorized"


async def test_organization_key_on_platform_routes_is_403(api: Api) -> None:
    a = await api.org("a")
    for path, body in (
        ("/v1/organizations", {"name": "x"}),
        (f"/v1/organizations/{a.id}/partners", {"name": "x"}),
        (f"/v1/organizations/{a.id}/api-keys", None),
    ):
        r = await api.client.post(path, json=body, headers=a.headers)
        assert r.status_code == 403, path
        assert r.json()["error"]["code"] == "platform_key_required"
