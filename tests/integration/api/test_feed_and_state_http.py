"""The events feed and the state projections over HTTP on both backends (issue 4 items 4-6):
order, cursors, type patterns, strong ETags with 304, out-of-order events, tenant isolation."""

from __future__ import annotations

from typing import Any

from tests.integration.api.conftest import Api, Org

ATTRS = {
    "owner_id": "own_1",
    "owner_type": "person",
    "external_id": "ext_1",
    "entitlement_trigger_id": "trg_1",
    "entitlement_id": "ent_1",
}


async def publish(api: Api, org: Org, type_: str, data: dict[str, Any], **extra: Any) -> str:
    env = {
        "type": type_,
        "schemaVersion": 1,
        "source": "SYSTEM",
        "organizationUuid": org.id,
        "data": data,
        **extra,
    }
    if not type_.startswith(("compliance.", "kyc.", "webhook.")) and "attributes" not in extra:
        env["attributes"] = ATTRS
    r = await api.client.post("/v1/events", json=env, headers=api.platform)
    assert r.status_code == 201, r.text
    return str(r.json()["id"])


def status(order: str, previous: str | None, new: str) -> dict[str, Any]:
    return {"orderId": order, "previousStatus": previous, "status": new}


async def test_feed_is_oldest_first_and_resumes_from_its_cursor(api: Api) -> None:
    org = await api.org()
    ids = [
        await publish(api, org, "compliance.status_changed", status(f"o{i}", None, "VALID"))
        for i in range(5)
    ]
    r = await api.client.get("/v1/events?limit=2", headers=org.headers)
    page = r.json()
    assert [e["id"] for e in page["items"]] == ids[:2]
    seen = [e["id"] for e in page["items"]]
    cursor = page["nextCursor"]
    while True:
        r = await api.client.get(f"/v1/events?limit=2&after={cursor}", headers=org.headers)
        page = r.json()
        if not page["items"]:
            break
        seen += [e["id"] for e in page["items"]]
        cursor = page["nextCursor"]
    assert seen == ids
    # the cursor at the end stays usable: a later event shows up after it
    late = await publish(api, org, "compliance.status_changed", status("o9", None, "VALID"))
    r = await api.client.get(f"/v1/events?after={cursor}", headers=org.headers)
    assert [e["id"] for e in r.json()["items"]] == [late]


async def test_feed_filters_by_type_patterns(api: Api) -> None:
    org = await api.org()
    a = await publish(api, org, "compliance.status_changed", status("o1", None, "VALID"))
    await publish(api, org, "account_locks.applyFundingLock", {})
    c = await publish(
        api, org, "compliance.decision_made", {"orderId": "o1", "decision": "VALID_EXPORT"}
    )
    r = await api.client.get("/v1/events?types=compliance.*", headers=org.headers)
    assert [e["id"] for e in r.json()["items"]] == [a, c]
    r = await api.client.get(
        "/v1/events?types=compliance.decision_made,account_locks.*", headers=org.headers
    )
    assert len(r.json()["items"]) == 2
    r = await api.client.get("/v1/events?types=*", headers=org.headers)
    assert r.status_code == 422
    assert r.json()["error"]["details"][0]["path"] == "query.types"


async def test_feed_etag_and_304(api: Api) -> None:
    org = await api.org()
    await publish(api, org, "compliance.status_changed", status("o1", None, "VALID"))
    r = await api.client.get("/v1/events", headers=org.headers)
    etag = r.headers["etag"]
    assert etag.startswith('"') and etag.endswith('"')  # strong
    r = await api.client.get("/v1/events", headers={**org.headers, "If-None-Match": etag})
    assert r.status_code == 304
    assert r.content == b""
    assert r.headers["etag"] == etag
    await publish(api, org, "compliance.status_changed", status("o2", None, "VALID"))
    r = await api.client.get("/v1/events", headers={**org.headers, "If-None-Match": etag})
    assert r.status_code == 200
    assert r.headers["etag"] != etag
    assert len(r.json()["items"]) == 2
    # another organization's events do not change this organization's ETag
    other = await api.org("other")
    await publish(api, other, "compliance.status_changed", status("o3", None, "VALID"))
    again = await api.client.get(
        "/v1/events", headers={**org.headers, "If-None-Match": r.headers["etag"]}
    )
    assert again.status_code == 304


async def test_feed_never_shows_another_organizations_events(api: Api) -> None:
    org, other = await api.org("a"), await api.org("b")
    mine = await publish(api, org, "compliance.status_changed", status("o1", None, "VALID"))
    theirs = await publish(api, other, "compliance.status_changed", status("o1", None, "VALID"))
    r = await api.client.get("/v1/events", headers=org.headers)
    assert [e["id"] for e in r.json()["items"]] == [mine]
    assert (await api.client.get(f"/v1/events/{theirs}", headers=org.headers)).status_code == 404


async def _etagged(api: Api, org: Org, path: str) -> tuple[dict[str, Any], str]:
    r = await api.client.get(path, headers=org.headers)
    assert r.status_code == 200, r.text
    etag = r.headers["etag"]
    cached = await api.client.get(path, headers={**org.headers, "If-None-Match": etag})
    assert cached.status_code == 304 and cached.content == b""
    return dict(r.json()), etag


async def test_compliance_rollup(api: Api) -> None:
    org = await api.org()
    path = "/v1/orders/ord_1/compliance"
    assert (await api.client.get(path, headers=org.headers)).status_code == 404
    await publish(
        api,
        org,
        "compliance.status_changed",
        status("ord_1", None, "INCOMPLETE"),
        createdAt="2026-01-01T10:00:00Z",
    )
    state, etag1 = await _etagged(api, org, path)
    assert state["status"] == "INCOMPLETE" and state["decision"] is None
    valid = await publish(
        api,
        org,
        "compliance.status_changed",
        status("ord_1", "INCOMPLETE", "VALID"),
        createdAt="2026-01-01T11:00:00Z",
    )
    state, etag2 = await _etagged(api, org, path)
    assert etag2 != etag1
    assert state["status"] == "VALID" and state["lastEventId"] == valid
    assert state["updatedAt"] == "2026-01-01T11:00:00Z"
    decided = await publish(
        api,
        org,
        "compliance.decision_made",
        {"orderId": "ord_1", "decision": "VALID_EXPORT"},
        createdAt="2026-01-01T12:00:00Z",
    )
    state, etag3 = await _etagged(api, org, path)
    assert state["decision"] == "VALID_EXPORT" and state["lastEventId"] == decided
    # an event that arrives late (older createdAt) does not move the status back
    await publish(
        api,
        org,
        "compliance.status_changed",
        status("ord_1", None, "INCOMPLETE"),
        createdAt="2026-01-01T10:30:00Z",
    )
    state, etag4 = await _etagged(api, org, path)
    assert state["status"] == "VALID"
    assert etag4 == etag3
    # another organization cannot read it
    other = await api.org("other")
    assert (await api.client.get(path, headers=other.headers)).status_code == 404


async def test_account_locks(api: Api) -> None:
    org = await api.org()
    path = "/v1/owners/own_1/locks"
    await publish(api, org, "account_locks.applyFundingLock", {}, createdAt="2026-01-01T10:00:00Z")
    state, etag = await _etagged(api, org, path)
    assert (state["funding_locked"], state["trading_locked"]) == (True, False)
    await publish(
        api,
        org,
        "adhoc_edd.entitlementFailed",
        {"outcome": "failed", "funding_locked": True, "trading_locked": True},
        createdAt="2026-01-01T11:00:00Z",
    )
    state, etag2 = await _etagged(api, org, path)
    assert (state["funding_locked"], state["trading_locked"]) == (True, True)
    assert etag2 != etag
    await publish(
        api, org, "account_locks.releaseFundingLock", {}, createdAt="2026-01-01T12:00:00Z"
    )
    await publish(
        api,
        org,
        "rfi.entitlementCompleted",
        {"outcome": "passed", "funding_locked": False, "trading_locked": False},
        createdAt="2026-01-01T13:00:00Z",
    )
    state, _ = await _etagged(api, org, path)
    assert (state["funding_locked"], state["trading_locked"]) == (False, False)
    # out of order: an apply older than the release does not lock again
    await publish(api, org, "account_locks.applyFundingLock", {}, createdAt="2026-01-01T09:00:00Z")
    state, _ = await _etagged(api, org, path)
    assert state["funding_locked"] is False
    other = await api.org("other")
    assert (await api.client.get(path, headers=other.headers)).status_code == 404


async def test_entitlement_state(api: Api) -> None:
    org = await api.org()
    path = "/v1/entitlements/ent_1"
    await publish(
        api,
        org,
        "rfi.entitlementStarted",
        {"description": "RFI started"},
        createdAt="2026-01-01T10:00:00Z",
    )
    state, _ = await _etagged(api, org, path)
    assert state["status"] == "started" and state["workflow"] == "rfi"
    await publish(
        api,
        org,
        "rfi.requirementsQuestionnaire",
        {"pending_questionnaire_ids": ["q1"], "reason": "request_for_information"},
        createdAt="2026-01-01T11:00:00Z",
    )
    state, _ = await _etagged(api, org, path)
    assert state["status"] == "pending_requirements"
    assert state["details"]["pending_questionnaire_ids"] == ["q1"]
    await publish(
        api,
        org,
        "rfi.entitlementCompleted",
        {"outcome": "passed", "funding_locked": False, "trading_locked": False},
        createdAt="2026-01-01T12:00:00Z",
    )
    state, etag = await _etagged(api, org, path)
    assert state["status"] == "completed"
    # a late reminder from before completion changes nothing
    await publish(
        api,
        org,
        "rfi.reminder",
        {"type": "rfi_2_week_reminder"},
        createdAt="2026-01-01T10:30:00Z",
    )
    state, etag2 = await _etagged(api, org, path)
    assert state["status"] == "completed" and etag2 == etag
    assert (await api.client.get("/v1/entitlements/none", headers=org.headers)).status_code == 404


async def test_feed_includes_api_sourced_events(api: Api) -> None:
    """Endpoints skip `source=API` events by default; the feed (for reconciling) shows them."""
    org = await api.org()
    from_api = await publish(
        api, org, "compliance.status_changed", status("o1", None, "VALID"), source="API"
    )
    r = await api.client.get("/v1/events", headers=org.headers)
    [item] = r.json()["items"]
    assert item["id"] == from_api and item["source"] == "API"


async def test_304_is_answered_without_loading_the_page(api: Api) -> None:
    org = await api.org()
    await publish(api, org, "compliance.status_changed", status("o1", None, "VALID"))
    loads = 0
    original = api.store.list_events

    async def counting(*args: Any, **kwargs: Any) -> Any:
        nonlocal loads
        loads += 1
        return await original(*args, **kwargs)

    api.store.list_events = counting  # type: ignore[method-assign]
    r = await api.client.get("/v1/events", headers=org.headers)
    assert r.status_code == 200 and loads == 1
    etag = r.headers["etag"]
    for _ in range(3):
        r = await api.client.get("/v1/events", headers={**org.headers, "If-None-Match": etag})
        assert r.status_code == 304
    assert loads == 1  # the fingerprint answered; no page was read or serialized


async def test_a_feed_cursor_not_made_by_the_api_is_a_422(api: Api) -> None:
    """Found by schemathesis (issue 23): a made-up `after` was a 500, with or without an ETag."""
    org = await api.org()
    for headers in ({}, {"If-None-Match": "*"}):
        for after in ("abc", "%F0%94%BB%8C", "MTIzNDU2Nzg5MDEyMzQ1Njc4OTAxMjM"):
            r = await api.client.get(
                f"/v1/events?after={after}", headers={**org.headers, **headers}
            )
            assert r.status_code == 422, (after, r.text)
            assert r.json()["error"]["details"][0]["path"] == "query.after"
