"""The seeds' look-ups over HTTP on both backends (issue 26 items 1-6): the error-code reference,
unknown codes flagged, open reminder types, owners with their locks and entitlements, owners by
external id, entitlements by owner, trigger and state, the derivatives blacklist as state, and
compliance rollups changed since a time; ETag/304, cursors, bad input, tenant isolation."""

from __future__ import annotations

from typing import Any

from tests.integration.api.conftest import Api, MakeApi, Org
from tidings.clock import FakeClock, to_rfc3339

T0 = 1_767_225_600.0  # 2026-01-01T00:00:00Z


def attrs(owner: str, entitlement: str, trigger: str = "trg_1", **more: str) -> dict[str, str]:
    return {
        "owner_id": owner,
        "owner_type": more.get("owner_type", "person"),
        "external_id": more.get("external_id", f"ext_{owner}"),
        "entitlement_trigger_id": trigger,
        "entitlement_id": entitlement,
    }


async def publish(
    api: Api, org: Org, type_: str, data: dict[str, Any], **extra: Any
) -> dict[str, Any]:
    env = {
        "type": type_,
        "schemaVersion": 1,
        "source": "SYSTEM",
        "organizationUuid": org.id,
        "data": data,
        **extra,
    }
    r = await api.client.post("/v1/events", json=env, headers=api.platform)
    assert r.status_code == 201, r.text
    return dict(r.json())


async def get(api: Api, org: Org, path: str, status: int = 200) -> Any:
    r = await api.client.get(path, headers=org.headers)
    assert r.status_code == status, r.text
    return r.json()


async def etagged(api: Api, org: Org, path: str) -> tuple[Any, str]:
    r = await api.client.get(path, headers=org.headers)
    assert r.status_code == 200, r.text
    etag = r.headers["etag"]
    cached = await api.client.get(path, headers={**org.headers, "If-None-Match": etag})
    assert cached.status_code == 304 and cached.content == b""
    return r.json(), etag


def problem(body: Any) -> tuple[str, str]:
    first = body["error"]["details"][0]
    return body["error"]["code"], first["path"]


# ---- item 1: error codes --------------------------------------------------------------------


async def test_the_error_code_reference_is_served(api: Api) -> None:
    org = await api.org()
    listed = await get(api, org, "/v1/error-codes")
    codes = {c["code"]: c for c in listed["items"]}
    assert {"FL0001", "R0003", "retailDerivatives30DaysBlacklist"} <= set(codes)
    assert codes["R0003"]["workflows"] == ["derivatives"]
    assert codes["FL0001"]["meaning"].startswith("Unacceptable IDV risk")
    one_type = await get(api, org, "/v1/error-codes?type=derivatives.entitlementFailed")
    assert [c["code"] for c in one_type["items"]] == ["R0003", "retailDerivatives30DaysBlacklist"]
    assert problem(await get(api, org, "/v1/error-codes?type=no.such", 422)) == (
        "validation_failed",
        "query.type",
    )
    # next to the schema, for the types that carry codes; a platform key reads it too
    r = await api.client.get("/v1/event-types/onboarding.entitlementFailed", headers=api.platform)
    item = r.json()
    assert r.status_code == 200 and item["versions"][0]["schemaVersion"] == 1
    assert [c["code"] for c in item["errorCodes"]] == ["FL0001"]
    assert "errorCodes" not in await get(api, org, "/v1/event-types/compliance.status_changed")
    await get(api, org, "/v1/event-types/no.such", 404)


async def test_an_unknown_error_code_is_accepted_and_flagged(api: Api) -> None:
    org = await api.org()
    known = await publish(
        api,
        org,
        "onboarding.entitlementFailed",
        {"code": "FL0001", "description": "Unacceptable IDV risk"},
        attributes=attrs("own_1", "ent_1"),
    )
    assert known["warnings"] == []
    unknown = await publish(
        api,
        org,
        "onboarding.entitlementFailed",
        {"code": "retailOnboarding90DaysBlacklist", "description": "new upstream code"},
        attributes=attrs("own_2", "ent_2"),
    )
    assert [(w["code"], w["path"]) for w in unknown["warnings"]] == [
        ("unknown_error_code", "$.data.code")
    ]
    stored = await get(api, org, f"/v1/events/{unknown['id']}")
    assert stored["warnings"] == unknown["warnings"]
    assert stored["data"]["code"] == "retailOnboarding90DaysBlacklist"  # as published
    feed = await get(api, org, "/v1/events")
    assert [len(e["warnings"]) for e in feed["items"]] == [0, 1]


async def test_a_new_reminder_type_is_accepted(api: Api) -> None:
    """Item 5: the reminder type is open; the known ones are documented in the schema."""
    org = await api.org()
    event = await publish(
        api,
        org,
        "rfi.reminder",
        {"type": "rfi_6_week_reminder"},
        attributes=attrs("own_1", "ent_1"),
    )
    assert event["data"] == {"type": "rfi_6_week_reminder"}
    schema = (await get(api, org, "/v1/event-types/rfi.reminder"))["versions"][0]["schema"]
    assert "rfi_2_week_reminder" in schema["properties"]["type"]["description"]
    r = await api.client.post(
        "/v1/events",
        json={
            "type": "rfi.reminder",
            "schemaVersion": 1,
            "source": "SYSTEM",
            "organizationUuid": org.id,
            "data": {"type": ""},
            "attributes": attrs("own_1", "ent_1"),
        },
        headers=api.platform,
    )
    assert r.status_code == 422 and problem(r.json())[1] == "$.data.type"


# ---- items 2-4: owners, entitlements, the blacklist -------------------------------------------


async def test_an_owner_with_its_locks_and_entitlements(api: Api) -> None:
    org = await api.org()
    a = attrs("own_1", "ent_rfi", trigger="trg_rfi", external_id="client_42")
    await publish(api, org, "rfi.entitlementStarted", {"description": "RFI started"}, attributes=a)
    b = attrs("own_1", "ent_edd", trigger="trg_edd", external_id="client_42")
    await publish(
        api,
        org,
        "adhoc_edd.entitlementFailed",
        {"outcome": "failed", "funding_locked": True, "trading_locked": False},
        attributes=b,
    )
    owner, etag = await etagged(api, org, "/v1/owners/own_1")
    assert (owner["ownerId"], owner["owner_type"], owner["external_id"]) == (
        "own_1",
        "person",
        "client_42",
    )
    assert owner["locks"]["funding_locked"] is True and owner["locks"]["trading_locked"] is False
    shown = {e["entitlementId"]: e for e in owner["entitlements"]}
    assert set(shown) == {"ent_rfi", "ent_edd"}
    assert (shown["ent_rfi"]["workflow"], shown["ent_rfi"]["status"]) == ("rfi", "started")
    assert shown["ent_edd"]["triggerId"] == "trg_edd" and shown["ent_edd"]["status"] == "failed"
    assert owner["entitlementsCursor"] is None
    # a new event moves the ETag
    await publish(api, org, "account_locks.releaseFundingLock", {}, attributes=b)
    owner, etag2 = await etagged(api, org, "/v1/owners/own_1")
    assert owner["locks"]["funding_locked"] is False and etag2 != etag
    # found by the integrator's own id
    found = await get(api, org, "/v1/owners?externalId=client_42")
    assert [o["ownerId"] for o in found["items"]] == ["own_1"]
    assert (await get(api, org, "/v1/owners?externalId=nobody"))["items"] == []
    await get(api, org, "/v1/owners/own_none", 404)
    # another organization sees none of it
    other = await api.org()
    await get(api, other, "/v1/owners/own_1", 404)
    assert (await get(api, other, "/v1/owners?externalId=client_42"))["items"] == []


async def test_entitlements_by_owner_trigger_and_state(api: Api) -> None:
    org = await api.org()
    for owner, entitlement, trigger in [
        ("own_1", "ent_1", "trg_a"),
        ("own_1", "ent_2", "trg_b"),
        ("own_2", "ent_3", "trg_a"),
    ]:
        await publish(
            api,
            org,
            "rfi.entitlementStarted",
            {"description": "started"},
            attributes=attrs(owner, entitlement, trigger=trigger),
        )
    await publish(
        api,
        org,
        "rfi.entitlementCompleted",
        {"outcome": "passed", "funding_locked": False, "trading_locked": False},
        attributes=attrs("own_1", "ent_1", trigger="trg_a"),
    )

    async def ids(query: str) -> list[str]:
        body, _ = await etagged(api, org, f"/v1/entitlements?{query}")
        return sorted(e["entitlementId"] for e in body["items"])

    assert await ids("ownerId=own_1") == ["ent_1", "ent_2"]
    assert await ids("triggerId=trg_a") == ["ent_1", "ent_3"]
    assert await ids("ownerId=own_1&triggerId=trg_a") == ["ent_1"]
    assert await ids("state=completed") == ["ent_1"]
    assert await ids("triggerId=trg_a&state=started") == ["ent_3"]
    assert await ids("ownerId=own_1&state=started") == ["ent_2"]
    assert await ids("") == ["ent_1", "ent_2", "ent_3"]
    # pages by cursor, in change order: ent_1 changed last
    first = await get(api, org, "/v1/entitlements?limit=2")
    rest = await get(api, org, f"/v1/entitlements?limit=2&cursor={first['nextCursor']}")
    order = [e["entitlementId"] for e in first["items"] + rest["items"]]
    assert order[-1] == "ent_1" and sorted(order) == ["ent_1", "ent_2", "ent_3"]
    assert rest["nextCursor"] is None
    assert problem(await get(api, org, "/v1/entitlements?state=done", 422))[1] == "query.state"
    assert problem(await get(api, org, "/v1/entitlements?cursor=zz", 422))[1] == "query.cursor"
    other = await api.org()
    assert (await get(api, other, "/v1/entitlements?triggerId=trg_a"))["items"] == []


async def test_the_derivatives_blacklist_is_state_until_its_release_date(
    make_api: MakeApi,
) -> None:
    released = 1_732_752_000.0  # 2024-11-28T00:00:00Z, the seed's lock_release_date
    clock = FakeClock(released - 86_400)
    api = await make_api(clock=clock)
    org = await api.org()
    await publish(
        api,
        org,
        "derivatives.entitlementFailed",
        {
            "code": "retailDerivatives30DaysBlacklist",
            "description": "User failed Appropriateness test. Locking from entitlement for 30 days",
            "lock_date": "2024-10-29",
            "lock_release_date": "2024-11-28",
        },
        attributes=attrs("own_1", "ent_der", trigger="trg_der"),
        createdAt="2024-10-29T12:00:00Z",
    )
    state, etag = await etagged(api, org, "/v1/entitlements/ent_der")
    assert state["locked_until"] == "2024-11-28" and state["locked"] is True
    owner = await get(api, org, "/v1/owners/own_1")
    assert owner["entitlements"][0]["locked"] is True
    clock.advance(86_400)  # the release date has begun: released, with no event
    state, etag2 = await etagged(api, org, "/v1/entitlements/ent_der")
    assert state["locked_until"] == "2024-11-28" and state["locked"] is False
    assert etag2 != etag  # a client holding the locked state is told it changed
    assert (await get(api, org, "/v1/owners/own_1"))["entitlements"][0]["locked"] is False


# ---- item 6: compliance rollups changed since ------------------------------------------------


def status(order: str, previous: str | None, new: str) -> dict[str, Any]:
    return {"orderId": order, "previousStatus": previous, "status": new}


async def test_rollups_changed_since_in_change_order(make_api: MakeApi) -> None:
    clock = FakeClock(T0)
    api = await make_api(clock=clock)
    org = await api.org()
    await publish(api, org, "compliance.status_changed", status("o1", None, "VALID"))
    clock.advance(60)
    await publish(api, org, "compliance.status_changed", status("o2", None, "INVALID"))
    clock.advance(60)
    await publish(api, org, "compliance.status_changed", status("o3", None, "INCOMPLETE"))
    clock.advance(60)
    await publish(
        api, org, "compliance.decision_made", {"orderId": "o1", "decision": "VALID_EXPORT"}
    )

    async def orders(query: str) -> list[str]:
        body, _ = await etagged(api, org, f"/v1/orders?{query}")
        return [o["orderId"] for o in body["items"]]

    assert await orders("") == ["o2", "o3", "o1"]  # o1 changed last
    assert await orders(f"changedSince={to_rfc3339(T0 + 60)}") == ["o2", "o3", "o1"]
    assert await orders(f"changedSince={to_rfc3339(T0 + 61)}") == ["o3", "o1"]
    assert await orders("status=INVALID") == ["o2"]
    assert await orders("decision=VALID_EXPORT") == ["o1"]
    assert await orders("status=VALID&decision=VALID_EXPORT") == ["o1"]
    body = await get(api, org, "/v1/orders")
    assert body["items"][-1]["decision"] == "VALID_EXPORT"
    assert body["items"][-1]["updatedAt"] is not None
    # pages resume from their cursor; a change after the cursor shows up on the next page
    first = await get(api, org, "/v1/orders?limit=2")
    assert [o["orderId"] for o in first["items"]] == ["o2", "o3"]
    cursor = first["nextCursor"]
    clock.advance(60)
    await publish(api, org, "compliance.status_changed", status("o2", "INVALID", "VALID"))
    rest = await get(api, org, f"/v1/orders?limit=2&cursor={cursor}")
    assert [o["orderId"] for o in rest["items"]] == ["o1", "o2"]
    # the ETag follows the content
    _, etag = await etagged(api, org, "/v1/orders")
    clock.advance(60)
    await publish(api, org, "compliance.status_changed", status("o4", None, "VALID"))
    _, etag2 = await etagged(api, org, "/v1/orders")
    assert etag2 != etag
    # bad input
    for query, path in [
        ("status=DONE", "query.status"),
        ("decision=MAYBE", "query.decision"),
        ("changedSince=yesterday", "query.changedSince"),
        ("cursor=abc", "query.cursor"),
        ("limit=0", "query.limit"),
    ]:
        assert problem(await get(api, org, f"/v1/orders?{query}", 422))[1] == path, query
    other = await api.org()
    assert (await get(api, other, "/v1/orders"))["items"] == []
