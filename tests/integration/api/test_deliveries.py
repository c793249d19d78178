"""Delivery history over HTTP on both backends (issue 4 item 1): filters, newest first, cursor
pagination, a delivery with its attempts, and one event with its deliveries."""

from __future__ import annotations

from typing import Any

from tests.integration.api.conftest import Api, MakeApi, Org
from tests.integration.api.history_helpers import T0, attempt_all, make_endpoint, publish
from tidings.clock import FakeClock, to_rfc3339
from tidings.models import DeliveryStatus

DELIVERY_FIELDS = {
    "id",
    "eventId",
    "endpointId",
    "status",
    "schemaVersion",
    "attemptCount",
    "nextAttemptAt",
    "lastAttemptAt",
    "createdAt",
    "updatedAt",
    "skipReason",
    "lastStatusCode",
    "lastError",
    "series",
    "sequence",
    "subject",
    "previousEventId",
    "ordered",
}


async def _ids(api: Api, org: Org, **params: Any) -> list[str]:
    r = await api.client.get("/v1/deliveries", params=params, headers=org.headers)
    assert r.status_code == 200, r.text
    assert r.json()["nextCursor"] is None
    return [d["id"] for d in r.json()["items"]]


async def test_filters_by_endpoint_event_status_and_time_newest_first(api: Api) -> None:
    org = await api.org()
    a = await make_endpoint(api, org, eventTypes=["compliance.*"])
    b = await make_endpoint(api, org, eventTypes=["compliance.*", "kyc.*"])
    e1, [d1a, d1b] = await publish(api, org, at=T0)
    e2, [d2a, d2b] = await publish(api, org, at=T0 + 100)
    e3, [d3b] = await publish(api, org, "kyc.verification_completed", at=T0 + 200)
    for dlv in (d1a, d2a):
        got = await api.store.get_delivery(org.id, dlv)
        assert got is not None and got.status == DeliveryStatus.PENDING

    # every delivery succeeds; then a's are replayed and fail for good
    await attempt_all(api, now=T0 + 300, status_code=200)
    for dlv in (d1a, d2a):
        await api.store.replay_delivery(org.id, dlv, T0 + 400)
    await attempt_all(api, now=T0 + 400, status_code=500, final=True)

    assert await _ids(api, org) == [d3b, d2b, d2a, d1b, d1a]
    assert await _ids(api, org, endpointId=a["id"]) == [d2a, d1a]
    assert await _ids(api, org, endpointId=b["id"]) == [d3b, d2b, d1b]
    assert await _ids(api, org, eventId=e1.id) == [d1b, d1a]
    assert await _ids(api, org, status="failed") == [d2a, d1a]
    assert await _ids(api, org, status="succeeded") == [d3b, d2b, d1b]
    assert await _ids(api, org, status="held") == []
    assert await _ids(api, org, endpointId=b["id"], status="succeeded", eventId=e2.id) == [d2b]
    # time range on creation: since inclusive, until exclusive, RFC 3339 with offsets
    assert await _ids(api, org, since=to_rfc3339(T0 + 100)) == [d3b, d2b, d2a]
    assert await _ids(api, org, until=to_rfc3339(T0 + 100)) == [d1b, d1a]
    assert await _ids(api, org, since="2026-01-01T01:01:40+01:00", until=to_rfc3339(T0 + 200)) == [
        d2b,
        d2a,
    ]
    assert e3.id


async def test_bad_filters_are_422_with_their_path(api: Api) -> None:
    org = await api.org()
    for params, path in (
        ({"status": "lost"}, "query.status"),
        ({"since": "yesterday"}, "query.since"),
        ({"until": "2026-13-01T00:00:00Z"}, "query.until"),
        ({"cursor": "%%%"}, "query.cursor"),
        ({"limit": 0}, "query.limit"),
    ):
        r = await api.client.get("/v1/deliveries", params=params, headers=org.headers)
        assert r.status_code == 422, params
        assert r.json()["error"]["details"][0]["path"] == path


async def test_pagination_walks_newest_first_without_gaps(api: Api) -> None:
    org = await api.org()
    await make_endpoint(api, org)
    created: list[str] = []
    for i in range(7):
        _, [dlv] = await publish(api, org, at=T0 + i)
        created.append(dlv)
    seen: list[str] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"limit": 3}
        if cursor is not None:
            params["cursor"] = cursor
        r = await api.client.get("/v1/deliveries", params=params, headers=org.headers)
        page = r.json()
        assert len(page["items"]) <= 3
        seen.extend(d["id"] for d in page["items"])
        cursor = page["nextCursor"]
        if cursor is None:
            break
    assert seen == list(reversed(created))


async def test_delivery_with_its_attempts(make_api: MakeApi) -> None:
    clock = FakeClock(T0)
    api = await make_api(clock=clock)
    org = await api.org()
    ep = await make_endpoint(api, org)
    event, [dlv] = await publish(api, org, at=T0)
    await attempt_all(api, now=T0 + 10, status_code=503, error="HTTP 503")
    await attempt_all(api, now=T0 + 70, status_code=None, error="TimeoutError: no answer in 15 s")
    await attempt_all(api, now=T0 + 130, status_code=200)

    r = await api.client.get(f"/v1/deliveries/{dlv}", headers=org.headers)
    assert r.status_code == 200
    body = r.json()
    assert set(body) == DELIVERY_FIELDS | {"attempts"}
    assert body["id"] == dlv and body["eventId"] == event.id and body["endpointId"] == ep["id"]
    assert body["status"] == "succeeded"
    assert body["attemptCount"] == 3 and body["series"] == 1
    assert body["schemaVersion"] == 2
    assert body["lastStatusCode"] == 200
    assert body["skipReason"] is None
    assert body["createdAt"] == to_rfc3339(event.created_at)
    assert body["attempts"] == [
        {
            "number": 1,
            "series": 1,
            "startedAt": to_rfc3339(T0 + 10),
            "durationMs": 42.5,
            "statusCode": 503,
            "error": "HTTP 503",
            "responseExcerpt": "try later",
        },
        {
            "number": 2,
            "series": 1,
            "startedAt": to_rfc3339(T0 + 70),
            "durationMs": 42.5,
            "statusCode": None,
            "error": "TimeoutError: no answer in 15 s",
            "responseExcerpt": "try later",
        },
        {
            "number": 3,
            "series": 1,
            "startedAt": to_rfc3339(T0 + 130),
            "durationMs": 42.5,
            "statusCode": 200,
            "error": None,
            "responseExcerpt": "accepted",
        },
    ]
    # the list shows the same delivery without attempts
    listed = await api.client.get("/v1/deliveries", headers=org.headers)
    [item] = listed.json()["items"]
    assert item == {k: v for k, v in body.items() if k != "attempts"}
    missing = await api.client.get("/v1/deliveries/dlv_nope", headers=org.headers)
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "not_found"


async def test_pending_and_skipped_deliveries_show_why(api: Api) -> None:
    org = await api.org()
    old_only = await make_endpoint(
        api, org, eventTypes=["compliance.status_changed"], acceptedSchemaVersions=[2]
    )
    event, [dlv] = await publish(api, org, version=1, at=T0)
    r = await api.client.get(f"/v1/deliveries/{dlv}", headers=org.headers)
    body = r.json()
    assert body["endpointId"] == old_only["id"]
    assert body["status"] == "skipped"
    assert body["skipReason"] == "schema_version_not_accepted"
    assert body["schemaVersion"] is None and body["attempts"] == []
    assert await _ids(api, org, status="skipped") == [dlv]
    assert event.schema_version == 1


async def test_event_with_its_deliveries(api: Api) -> None:
    org = await api.org()
    a = await make_endpoint(api, org)
    b = await make_endpoint(api, org)
    event, [da, db] = await publish(api, org, at=T0)
    await publish(api, org, at=T0 + 1)  # another event: not part of the answer
    r = await api.client.get(f"/v1/events/{event.id}", headers=org.headers)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["id"] == event.id and body["type"] == "compliance.status_changed"
    assert body["organizationUuid"] == org.id and body["data"] == event.data
    assert body["createdAt"] == to_rfc3339(event.created_at)
    assert [(d["id"], d["endpointId"]) for d in body["deliveries"]] == [
        (db, b["id"]),
        (da, a["id"]),
    ]
    assert all(set(d) == DELIVERY_FIELDS for d in body["deliveries"])
    # an API-sourced event has no delivery but is readable
    api_event, planned = await publish(api, org, source="API", at=T0 + 2)
    assert planned == []
    r = await api.client.get(f"/v1/events/{api_event.id}", headers=org.headers)
    assert r.status_code == 200 and r.json()["deliveries"] == []
    r = await api.client.get("/v1/events/evt_unknown", headers=org.headers)
    assert r.status_code == 404
