"""Erasure over HTTP, on both backends (issue 22 section 4): `POST /v1/events/{id}/erase` and
`POST /v1/subjects/{subject}/erase` with a platform key; the event shows `erasedAt` and no data
in `GET /v1/events/{id}` and in the feed (whose ETag changes), replaying its delivery answers 409
`event_erased`, the audit log has the erasure; bad input is named, other keys refused."""

from __future__ import annotations

from typing import Any

from tests.integration.api.conftest import Api, Org

MARKER = "Jane Roe, passport X1234567"


async def publish(api: Api, org: Org, event_id: str, subject: str) -> None:
    env = {
        "id": event_id,
        "type": "onboarding.entitlementFailed",
        "schemaVersion": 1,
        "source": "SYSTEM",
        "organizationUuid": org.id,
        "subject": subject,
        "attributes": {
            "owner_id": subject,
            "owner_type": "person",
            "external_id": f"ext-{subject}",
            "entitlement_trigger_id": "trg-1",
            "entitlement_id": f"ent-{event_id}",
        },
        "data": {"code": "FL0001", "description": "IDV risk", "note": MARKER},
    }
    r = await api.client.post("/v1/events", json=env, headers=api.platform)
    assert r.status_code == 201, r.text


async def endpoint(api: Api, org: Org) -> str:
    r = await api.client.post(
        "/v1/endpoints",
        json={"url": "https://hooks.example.com/in", "eventTypes": ["onboarding.*"]},
        headers=org.headers,
    )
    assert r.status_code == 201, r.text
    return str(r.json()["id"])


async def test_an_event_is_erased_and_shows_as_erased(api: Api) -> None:
    org = await api.org()
    await endpoint(api, org)
    await publish(api, org, "evt-1", "ord-1")
    await publish(api, org, "evt-2", "ord-2")
    feed = await api.client.get("/v1/events", headers=org.headers)
    etag = feed.headers["etag"]
    assert MARKER in feed.text

    r = await api.client.post(
        "/v1/events/evt-1/erase", json={"organizationUuid": org.id}, headers=api.platform
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["erased"] == {
        "events": 1,
        "deliveriesStopped": 1,
        "responsesCleared": 0,
        "projections": 1,  # the entitlement's details
    }
    assert body["organizations"] == [org.id] and body["erasedAt"].endswith("Z")

    one = (await api.client.get("/v1/events/evt-1", headers=org.headers)).json()
    assert one["data"] is None and one["erasedAt"] == body["erasedAt"]
    assert one["type"] == "onboarding.entitlementFailed" and one["subject"] == "ord-1"
    state = (await api.client.get("/v1/entitlements/ent-evt-1", headers=org.headers)).json()
    assert state["status"] == "failed" and state["details"] is None
    (delivery,) = one["deliveries"]
    assert delivery["status"] == "skipped" and delivery["skipReason"] == "erased"
    cached = await api.client.get("/v1/events", headers={**org.headers, "If-None-Match": etag})
    assert cached.status_code == 200  # the page changed
    items = {e["id"]: e for e in cached.json()["items"]}
    assert items["evt-1"]["data"] is None and items["evt-2"]["erasedAt"] is None
    r = await api.client.post(f"/v1/deliveries/{delivery['id']}/replay", headers=org.headers)
    assert r.status_code == 409 and r.json()["error"]["code"] == "event_erased", r.text
    log = (await api.client.get("/v1/audit-log?action=event.erase", headers=org.headers)).json()
    assert [e["targetId"] for e in log["items"]] == ["evt-1"]

    r = await api.client.post(
        "/v1/subjects/ord-2/erase", json={"organizationUuid": org.id}, headers=api.platform
    )
    assert r.status_code == 200 and r.json()["erased"]["events"] == 1, r.text
    r = await api.client.post("/v1/subjects/ord-2/erase", headers=api.platform)  # no body
    assert r.status_code == 200 and r.json()["erased"]["events"] == 0, r.text
    assert MARKER not in (await api.client.get("/v1/events", headers=org.headers)).text


async def test_bad_erasures_are_named_and_refused(api: Api) -> None:
    org = await api.org()
    await publish(api, org, "evt-1", "ord-1")

    async def erase(path: str, body: Any, headers: dict[str, str]) -> tuple[int, Any]:
        r = await api.client.post(path, json=body, headers=headers)
        return r.status_code, r.json()

    status, body = await erase("/v1/events/evt-1/erase", {}, api.platform)
    assert status == 422 and "organizationUuid" in str(body["error"]["details"])
    status, body = await erase("/v1/events/evt-1/erase", {"organizationUuid": org.id,
                                                          "extra": 1}, api.platform)  # fmt: skip
    assert status == 422
    status, body = await erase("/v1/events/evt-9/erase", {"organizationUuid": org.id}, api.platform)
    assert status == 404
    status, body = await erase("/v1/events/evt-1/erase", {"organizationUuid": org.id}, org.headers)
    assert status == 403 and body["error"]["code"] == "platform_key_required"
    made = await api.client.post("/v1/api-keys", json={"scope": "publish"}, headers=api.platform)
    publisher = {"Authorization": f"Bearer {made.json()['apiKey']}"}
    status, body = await erase("/v1/subjects/ord-1/erase", {}, publisher)
    assert status == 403 and body["error"]["code"] == "insufficient_scope"
    one = (await api.client.get("/v1/events/evt-1", headers=org.headers)).json()
    assert one["erasedAt"] is None and one["data"]["note"] == MARKER
