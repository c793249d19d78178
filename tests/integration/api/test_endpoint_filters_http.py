"""Endpoint filters over HTTP, on both backends (issue 26 item 8): corporate owners routed to
one endpoint and persons to another; a filter on data fields with `in`; the events a filter
refuses get no delivery, or a skipped one (reason `filtered`) with `recordFiltered`; a change of
the filter applies to the next publish (batches too); bad filters and paths no subscribed type
declares are answered 422 naming them; the endpoint shows its filter."""

from __future__ import annotations

from typing import Any

from tests.integration.api.conftest import Api, Org

COMPANY = {"path": "attributes.owner_type", "eq": "company"}
PERSON = {"path": "attributes.owner_type", "eq": "person"}


def dlt_event(org: Org, n: int, owner_type: str) -> dict[str, Any]:
    return {
        "id": f"evt-{owner_type}-{n}",
        "type": "onboarding.entitlementFailed",
        "schemaVersion": 1,
        "source": "SYSTEM",
        "organizationUuid": org.id,
        "attributes": {
            "owner_id": f"own-{n}",
            "owner_type": owner_type,
            "external_id": f"ext-{n}",
            "entitlement_trigger_id": "trg-1",
            "entitlement_id": f"ent-{n}",
        },
        "data": {"code": "FL0001", "description": "IDV risk"},
    }


async def endpoint(api: Api, org: Org, **body: Any) -> dict[str, Any]:
    r = await api.client.post(
        "/v1/endpoints",
        json={"url": "https://hooks.example.com/in", "eventTypes": ["onboarding.*"], **body},
        headers=org.headers,
    )
    assert r.status_code == 201, r.text
    return dict(r.json())


async def delivered(api: Api, org: Org, endpoint_id: str) -> dict[str, str | None]:
    """event id -> skip reason (None: to be sent) of the endpoint's deliveries."""
    r = await api.client.get(f"/v1/deliveries?endpointId={endpoint_id}", headers=org.headers)
    assert r.status_code == 200, r.text
    return {d["eventId"]: d["skipReason"] for d in r.json()["items"]}


async def test_corporate_owners_and_persons_go_to_their_own_endpoints(api: Api) -> None:
    org = await api.org()
    companies = await endpoint(api, org, filter={"all": [COMPANY]})
    persons = await endpoint(api, org, filter=PERSON, recordFiltered=True)
    everyone = await endpoint(api, org)
    assert companies["filter"] == {"all": [COMPANY]} and companies["recordFiltered"] is False
    assert persons["filter"] == PERSON and persons["recordFiltered"] is True
    assert everyone["filter"] is None

    for n, kind in enumerate(["company", "person", "company"]):
        r = await api.client.post("/v1/events", json=dlt_event(org, n, kind), headers=api.platform)
        assert r.status_code == 201, r.text
    batch = {"events": [dlt_event(org, 10, "person"), dlt_event(org, 11, "company")]}
    r = await api.client.post("/v1/events/batch", json=batch, headers=api.platform)
    assert r.status_code == 200, r.text

    assert await delivered(api, org, companies["id"]) == {
        "evt-company-0": None,
        "evt-company-2": None,
        "evt-company-11": None,
    }
    assert await delivered(api, org, persons["id"]) == {
        "evt-company-0": "filtered",  # recorded, not sent
        "evt-person-1": None,
        "evt-company-2": "filtered",
        "evt-person-10": None,
        "evt-company-11": "filtered",
    }
    assert len(await delivered(api, org, everyone["id"])) == 5
    skipped = await api.client.get(
        f"/v1/deliveries?endpointId={persons['id']}&status=skipped", headers=org.headers
    )
    assert {d["status"] for d in skipped.json()["items"]} == {"skipped"}

    # a changed filter applies from the next publish on; null removes it
    r = await api.client.patch(
        f"/v1/endpoints/{companies['id']}",
        json={"filter": {"any": [COMPANY, PERSON]}},
        headers=org.headers,
    )
    assert r.status_code == 200 and r.json()["filter"] == {"any": [COMPANY, PERSON]}, r.text
    r = await api.client.post("/v1/events", json=dlt_event(org, 20, "person"), headers=api.platform)
    assert r.status_code == 201, r.text
    assert "evt-person-20" in await delivered(api, org, companies["id"])
    r = await api.client.patch(
        f"/v1/endpoints/{companies['id']}", json={"filter": None}, headers=org.headers
    )
    assert r.status_code == 200 and r.json()["filter"] is None, r.text
    log = await api.client.get(
        f"/v1/audit-log?targetId={companies['id']}&action=endpoint.update", headers=org.headers
    )
    assert [e["changes"].get("filter", "-") for e in log.json()["items"]] == [
        {"any": [COMPANY, PERSON]},
        None,
    ]


async def test_a_filter_on_data_fields(api: Api) -> None:
    org = await api.org()
    r = await api.client.post(
        "/v1/endpoints",
        json={
            "url": "https://hooks.example.com/in",
            "eventTypes": ["compliance.*"],
            "filter": {
                "all": [
                    {"path": "data.status", "in": ["VALID", "INVALID"]},
                    {"path": "data.orderId", "prefix": "ord_"},
                ]
            },
        },
        headers=org.headers,
    )
    assert r.status_code == 201, r.text
    ep = r.json()["id"]
    for n, (order, status) in enumerate(
        [("ord_1", "VALID"), ("ord_2", "INCOMPLETE"), ("x_3", "VALID"), ("ord_4", "INVALID")]
    ):
        env = {
            "id": f"evt-{n}",
            "type": "compliance.status_changed",
            "schemaVersion": 1,
            "source": "SYSTEM",
            "organizationUuid": org.id,
            "data": {"orderId": order, "previousStatus": None, "status": status},
        }
        r = await api.client.post("/v1/events", json=env, headers=api.platform)
        assert r.status_code == 201, r.text
    assert await delivered(api, org, ep) == {"evt-0": None, "evt-3": None}


async def test_bad_filters_are_named(api: Api) -> None:
    org = await api.org()
    cases: list[tuple[Any, str, str]] = [
        ({"all": [{"path": "data.status", "like": "x"}]}, "$.filter.all[0].like", "unknown key"),
        ({"path": "attributes.owner_type", "in": []}, "$.filter.in", "1 to 100"),
        ({"path": "data.nope", "eq": 1}, "$.filter", "'data.nope'"),
        ({"path": "attributes.not_there", "eq": "x"}, "$.filter", "'attributes.not_there'"),
    ]
    for spec, path, words in cases:
        r = await api.client.post(
            "/v1/endpoints",
            json={
                "url": "https://hooks.example.com/in",
                "eventTypes": ["onboarding.*"],
                "filter": spec,
            },
            headers=org.headers,
        )
        assert r.status_code == 422, (spec, r.text)
        details = r.json()["error"]["details"]
        assert any(d["path"] == path and words in d["message"] for d in details), details
    # a compliance endpoint: the dlt attributes are no subscribed type's
    r = await api.client.post(
        "/v1/endpoints",
        json={
            "url": "https://hooks.example.com/in",
            "eventTypes": ["compliance.*"],
            "filter": COMPANY,
        },
        headers=org.headers,
    )
    assert r.status_code == 422 and "attributes.owner_type" in r.text, r.text
    # with another problem, both are named at once
    r = await api.client.post(
        "/v1/endpoints",
        json={"url": "https://hooks.example.com/in", "eventTypes": ["onboarding.*"],
              "filter": {"path": "data.x", "exists": "yes"}, "acceptedSchemaVersions": [9]},
        headers=org.headers,
    )  # fmt: skip
    paths = {d["path"] for d in r.json()["error"]["details"]}
    assert {"$.filter.exists", "$.acceptedSchemaVersions[0]"} <= paths, r.text
