"""Publishing over HTTP on both backends (issue 2 items 4 and 5): validation with paths and
nothing stored, idempotency, subscription planning, batch; and every catalog example published."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from tests.integration.api.conftest import Api, Org

DLT_ATTRS = {
    "owner_id": "own_1",
    "owner_type": "person",
    "external_id": "ext_1",
    "entitlement_trigger_id": "trg_1",
    "entitlement_id": "ent_1",
}


def status_changed(org: Org, **extra: Any) -> dict[str, Any]:
    return {
        "type": "compliance.status_changed",
        "schemaVersion": 1,
        "source": "WEB_APP",
        "organizationUuid": org.id,
        "data": {"orderId": "ord_1", "previousStatus": "INCOMPLETE", "status": "VALID"},
        **extra,
    }


async def endpoint(api: Api, org: Org, **body: Any) -> dict[str, Any]:
    payload = {"url": "http://127.0.0.1:9/hook", "eventTypes": ["compliance.*"], **body}
    r = await api.client.post("/v1/endpoints", json=payload, headers=org.headers)
    assert r.status_code == 201, r.text
    return dict(r.json())


async def publish(api: Api, envelope: Any, **headers: str) -> Any:
    return await api.client.post("/v1/events", json=envelope, headers={**api.platform, **headers})


async def deliveries_of(api: Api, org: Org, event_id: str) -> list[dict[str, Any]]:
    r = await api.client.get(f"/v1/events/{event_id}", headers=org.headers)
    assert r.status_code == 200, r.text
    return list(r.json()["deliveries"])


async def feed(api: Api, org: Org) -> list[dict[str, Any]]:
    r = await api.client.get("/v1/events?limit=500", headers=org.headers)
    assert r.status_code == 200
    return list(r.json()["items"])


async def test_publish_201_then_200_then_409(api: Api) -> None:
    org = await api.org()
    env = status_changed(org, id="evt_client_1")
    first = await publish(api, env)
    assert first.status_code == 201, first.text
    body = first.json()
    assert body["id"] == "evt_client_1"
    assert body["createdAt"].endswith("Z")  # set by tidings
    again = await publish(api, env)
    assert again.status_code == 200
    assert again.json() == body
    changed = dict(env, data={**env["data"], "status": "INVALID"})
    conflict = await publish(api, changed)
    assert conflict.status_code == 409
    assert conflict.json()["error"]["code"] == "idempotency_conflict"
    assert len(await feed(api, org)) == 1


async def test_idempotency_key_header(api: Api) -> None:
    org = await api.org()
    env = status_changed(org)
    first = await publish(api, env, **{"Idempotency-Key": "k-1"})
    again = await publish(api, env, **{"Idempotency-Key": "k-1"})
    assert (first.status_code, again.status_code) == (201, 200)
    assert first.json()["id"] == again.json()["id"]
    other = await publish(api, dict(env, source="SYSTEM"), **{"Idempotency-Key": "k-1"})
    assert other.status_code == 409
    assert len(await feed(api, org)) == 1


async def test_created_at_given_by_the_publisher_is_kept(api: Api) -> None:
    org = await api.org()
    r = await publish(api, status_changed(org, createdAt="2026-01-02T03:04:05Z"))
    assert r.json()["createdAt"] == "2026-01-02T03:04:05Z"


@pytest.mark.parametrize(
    ("change", "path"),
    [
        ({"data": {"previousStatus": "INCOMPLETE", "status": "VALID"}}, "$.data.orderId"),
        ({"data": {"orderId": 5, "previousStatus": None, "status": "VALID"}}, "$.data.orderId"),
        ({"type": "compliance.nothing"}, "$.type"),
        ({"schemaVersion": 7}, "$.schemaVersion"),
        ({"source": "MOBILE"}, "$.source"),
        ({"organizationUuid": "no-such-org"}, "$.organizationUuid"),
        ({"partnerUuid": "not-authorized"}, "$.partnerUuid"),
        ({"colour": "blue"}, "$.colour"),
        ({"createdAt": "yesterday"}, "$.createdAt"),
    ],
)
async def test_invalid_envelopes_are_422_with_the_path_and_store_nothing(
    api: Api, change: dict[str, Any], path: str
) -> None:
    org = await api.org()
    await endpoint(api, org)
    r = await publish(api, {**status_changed(org), **change})
    assert r.status_code == 422, r.text
    err = r.json()["error"]
    assert err["code"] == "validation_failed"
    assert path in [d["path"] for d in err["details"]]
    assert err["message"].startswith(err["details"][0]["path"])
    assert await feed(api, org) == []
    r = await api.client.get("/v1/deliveries", headers=org.headers)
    assert r.json()["items"] == []


async def test_dlt_attributes_are_required(api: Api) -> None:
    org = await api.org()
    env = {
        "type": "account_locks.applyFundingLock",
        "schemaVersion": 1,
        "source": "SYSTEM",
        "organizationUuid": org.id,
        "attributes": {k: v for k, v in DLT_ATTRS.items() if k != "owner_id"},
        "data": {},
    }
    r = await publish(api, env)
    assert r.status_code == 422
    assert r.json()["error"]["details"][0]["path"] == "$.attributes.owner_id"
    r = await publish(api, dict(env, attributes=DLT_ATTRS))
    assert r.status_code == 201


async def test_not_json_and_not_an_object(api: Api) -> None:
    r = await api.client.post(
        "/v1/events",
        content=b"{nope",
        headers={**api.platform, "Content-Type": "application/json"},
    )
    assert r.status_code == 400 and r.json()["error"]["code"] == "invalid_json"
    r = await publish(api, [1, 2])
    assert r.status_code == 422 and r.json()["error"]["details"][0]["path"] == "$"


async def test_publishing_needs_a_platform_key(api: Api) -> None:
    org = await api.org()
    r = await api.client.post("/v1/events", json=status_changed(org), headers=org.headers)
    assert r.status_code == 403


async def test_subscription_planning(api: Api) -> None:
    org = await api.org()
    partner = await api.partner(org)
    every = await endpoint(api, org)
    kyc_only = await endpoint(api, org, eventTypes=["kyc.*"])
    partner_only = await endpoint(api, org, partnerIds=[partner])
    with_api = await endpoint(api, org, sources=["API", "WEB_APP", "SYSTEM"])
    v1_only = await endpoint(api, org, acceptedSchemaVersions=[1])
    paused = await endpoint(api, org)
    r = await api.client.post(f"/v1/endpoints/{paused['id']}/pause", headers=org.headers)
    assert r.status_code == 200

    v2 = dict(
        status_changed(org),
        schemaVersion=2,
        data={
            "orderId": "ord_1",
            "previousStatus": "INCOMPLETE",
            "status": "VALID",
            "reason": "documents received",
            "changedBy": {"kind": "SYSTEM", "id": None},
            "changedAt": "2026-01-01T00:00:00Z",
        },
    )
    event = (await publish(api, v2)).json()
    got = {d["endpointId"]: d for d in await deliveries_of(api, org, event["id"])}
    assert kyc_only["id"] not in got  # pattern does not match
    assert partner_only["id"] not in got  # no partnerUuid on the event
    assert got[every["id"]]["status"] == "pending"
    assert got[every["id"]]["schemaVersion"] == 2
    assert got[v1_only["id"]]["schemaVersion"] == 1  # converted down
    assert got[paused["id"]]["status"] == "held"
    assert got[with_api["id"]]["status"] == "pending"

    with_partner = (await publish(api, status_changed(org, partnerUuid=partner))).json()
    endpoint_ids = {d["endpointId"] for d in await deliveries_of(api, org, with_partner["id"])}
    assert partner_only["id"] in endpoint_ids

    # source=API: stored and in the feed, but only endpoints that ask for API get it
    echo = (await publish(api, status_changed(org, source="API"))).json()
    endpoint_ids = {d["endpointId"] for d in await deliveries_of(api, org, echo["id"])}
    assert endpoint_ids == {with_api["id"]}
    assert echo["id"] in [e["id"] for e in await feed(api, org)]


async def test_a_version_no_accepted_version_can_serve_is_skipped(api: Api) -> None:
    org = await api.org()
    v2_only = await endpoint(api, org, acceptedSchemaVersions=[2])
    kyc = {
        "type": "kyc.vies_check_failed",
        "schemaVersion": 1,
        "source": "SYSTEM",
        "organizationUuid": org.id,
        "data": api.catalog.get("kyc.vies_check_failed").versions[1].examples[0],  # type: ignore[union-attr]
    }
    r = await api.client.patch(
        f"/v1/endpoints/{v2_only['id']}",
        json={"eventTypes": ["compliance.*", "kyc.*"]},
        headers=org.headers,
    )
    assert r.status_code == 200, r.text
    event = (await publish(api, kyc)).json()
    [delivery] = await deliveries_of(api, org, event["id"])
    assert delivery["status"] == "skipped"
    assert delivery["skipReason"] == "schema_version_not_accepted"


async def test_batch_answers_each_item_in_order(api: Api) -> None:
    org = await api.org()
    await endpoint(api, org)
    good = [status_changed(org, id=f"evt_b{i}") for i in range(3)]
    bad = status_changed(org, id="evt_bad", data={"status": "VALID"})
    r = await api.client.post(
        "/v1/events/batch", json={"events": [good[0], bad, *good[1:]]}, headers=api.platform
    )
    assert r.status_code == 200, r.text
    results = r.json()["results"]
    assert [x.get("id") for x in results] == ["evt_b0", None, "evt_b1", "evt_b2"]
    assert [x.get("status") for x in results] == ["created", None, "created", "created"]
    assert results[1]["error"]["code"] == "validation_failed"
    assert results[1]["error"]["details"][0]["path"] == "$.data.orderId"
    assert len(await feed(api, org)) == 3
    again = await api.client.post(
        "/v1/events/batch", json={"events": good[:1]}, headers=api.platform
    )
    assert again.json()["results"] == [{"id": "evt_b0", "status": "existing"}]
    assert len(await deliveries_of(api, org, "evt_b0")) == 1


async def test_batch_limits(api: Api) -> None:
    org = await api.org()
    r = await api.client.post("/v1/events/batch", json={"events": []}, headers=api.platform)
    assert r.status_code == 422
    many = [status_changed(org) for _ in range(501)]
    r = await api.client.post("/v1/events/batch", json={"events": many}, headers=api.platform)
    assert r.status_code == 422
    assert r.json()["error"]["details"][0]["path"] == "$.events"


async def test_every_catalog_type_is_listed_and_its_examples_publish(api: Api) -> None:
    """Issue 2 done-when: every catalog type of both seeds is listed by GET /v1/event-types
    with an example that validates (proved by publishing it)."""
    org = await api.org()
    r = await api.client.get("/v1/event-types", headers=org.headers)
    assert r.status_code == 200
    items = r.json()["items"]
    names = {t["type"] for t in items}
    catalogs = {t["catalog"] for t in items}
    assert catalogs == {"novatrade", "dlt", "webhook"}
    assert {
        "compliance.status_changed",
        "compliance.decision_made",
        "kyc.vies_check_failed",
        "derivatives.entitlementFailed",
        "rfi.reminder",
        "account_locks.applyFundingLock",
        "account_locks.releaseTradingLock",
        "webhook.endpoint_auto_paused",
        "webhook.delivery_failed_terminal",
    } <= names
    published = 0
    for item in items:
        for version in item["versions"]:
            assert version["examples"], (item["type"], version["schemaVersion"])
            for example in version["examples"]:
                env = {
                    "type": item["type"],
                    "schemaVersion": version["schemaVersion"],
                    "source": "SYSTEM",
                    "organizationUuid": org.id,
                    "data": example,
                }
                if item["catalog"] == "dlt":
                    env["attributes"] = DLT_ATTRS
                r = await publish(api, env)
                assert r.status_code == 201, (item["type"], r.text)
                published += 1
    assert published >= len(items)
    # the platform key may read the catalogs too
    assert (await api.client.get("/v1/event-types", headers=api.platform)).status_code == 200


async def test_concurrent_single_publishes_are_stored_together_each_answered_alone(
    api: Api,
) -> None:
    """Issue 6: singles arriving while a store call is under way are stored by one call (group
    commit); each request still gets its own answer, repeats of one id or one Idempotency-Key
    sent at the same moment are one event (201 then 200), and a conflicting repeat is a 409."""
    org = await api.org()
    await endpoint(api, org)
    calls_before = api.publisher._singles.calls
    envs = [
        status_changed(org, id=f"evt_g_{n}", data={"orderId": f"ord_{n}", "status": "VALID"})
        for n in range(30)
    ]
    for env in envs:
        env["data"]["previousStatus"] = "INCOMPLETE"
    same_id = status_changed(org, id="evt_g_twice")
    keyed = status_changed(org, subject="keyed")
    clash = status_changed(org, id="evt_g_clash")
    clash_other = dict(clash, source="SYSTEM")
    answers = await asyncio.gather(
        *(publish(api, env) for env in envs),
        publish(api, same_id),
        publish(api, same_id),
        publish(api, keyed, **{"Idempotency-Key": "k-together"}),
        publish(api, keyed, **{"Idempotency-Key": "k-together"}),
        publish(api, clash),
        publish(api, clash_other),
    )
    singles, twice, by_key, clashing = answers[:30], answers[30:32], answers[32:34], answers[34:]
    assert [r.status_code for r in singles] == [201] * 30, [r.text for r in singles]
    assert [r.json()["id"] for r in singles] == [f"evt_g_{n}" for n in range(30)]
    assert sorted(r.status_code for r in twice) == [200, 201]
    assert twice[0].json() == twice[1].json()
    assert sorted(r.status_code for r in by_key) == [200, 201]
    assert by_key[0].json()["id"] == by_key[1].json()["id"]
    assert sorted(r.status_code for r in clashing) == [201, 409]
    stored = await feed(api, org)
    assert len(stored) == 30 + 3
    for n in (0, 17, 29):
        assert len(await deliveries_of(api, org, f"evt_g_{n}")) == 1
    calls = api.publisher._singles.calls - calls_before
    assert calls < len(answers), f"{calls} store calls for {len(answers)} requests: none grouped"
