"""Endpoint management over HTTP on both backends (issue 2 item 6): every CRUD row, cursor
pagination, each validation rule of contract sections 5 and 6 with its JSON path, secrets and
their rotation, pause and resume holding and releasing deliveries."""

from __future__ import annotations

import base64
from typing import Any

from tests.integration.api.conftest import Api, MakeApi
from tests.integration.api.history_helpers import T0, make_endpoint, publish
from tidings.clock import FakeClock, to_rfc3339
from tidings.models import DeliveryStatus
from tidings.store.base import DeliveryFilter

FIELDS = {
    "id",
    "url",
    "status",
    "pauseReason",
    "eventTypes",
    "format",
    "partnerIds",
    "acceptedSchemaVersions",
    "sources",
    "description",
    "headers",
    "rateLimitPerSecond",
    "traceContext",
    "filter",
    "recordFiltered",
    "ordering",
    "failureStreak",
    "failingSince",
    "lastSuccessAt",
    "createdAt",
    "updatedAt",
}


async def test_create_answers_201_with_id_status_secret_and_every_field(api: Api) -> None:
    org = await api.org()
    partner = await api.partner(org)
    body = {
        "url": "https://hooks.example.com/tidings",
        "eventTypes": ["compliance.*", "kyc.verification_completed"],
        "partnerIds": [partner],
        "acceptedSchemaVersions": [1],
        "sources": ["API", "WEB_APP"],
        "description": "compliance desk",
        "headers": {"X-Team": "desk"},
        "rateLimitPerSecond": 5,
        "traceContext": True,
    }
    r = await api.client.post("/v1/endpoints", json=body, headers=org.headers)
    assert r.status_code == 201, r.text
    created = r.json()
    assert set(created) == FIELDS | {"secret"}
    assert created["id"].startswith("ep_")
    assert created["status"] == "active"
    assert created["format"] == "novatrade"  # native format of the subscribed catalog
    assert created["secret"].startswith("ntsec_") and len(created["secret"]) == 6 + 64
    for name in ("url", "eventTypes", "partnerIds", "acceptedSchemaVersions", "sources"):
        assert created[name] == body[name], name
    assert created["headers"] == {"X-Team": "desk"}
    assert created["rateLimitPerSecond"] == 5
    assert created["traceContext"] is True

    r = await api.client.get(f"/v1/endpoints/{created['id']}", headers=org.headers)
    assert r.status_code == 200
    read = r.json()
    assert "secret" not in read
    assert read == {k: v for k, v in created.items() if k != "secret"}


async def test_defaults_and_secret_forms_per_format(api: Api) -> None:
    org = await api.org()
    nova = await make_endpoint(api, org)
    assert nova["sources"] == ["WEB_APP", "SYSTEM"]
    assert nova["partnerIds"] is None and nova["acceptedSchemaVersions"] is None
    dlt = await make_endpoint(api, org, eventTypes=["onboarding.*"])
    assert dlt["format"] == "dlt" and dlt["secret"].startswith("dltsec_")
    std = await make_endpoint(api, org, eventTypes=["onboarding.*", "kyc.*"], format="standard")
    assert std["format"] == "standard"
    assert std["secret"].startswith("whsec_")
    assert len(base64.b64decode(std["secret"][6:], validate=True)) == 32
    meta = await make_endpoint(api, org, eventTypes=["webhook.*"])
    assert meta["format"] == "standard"
    secrets = {nova["secret"], dlt["secret"], std["secret"], meta["secret"]}
    assert len(secrets) == 4


async def test_list_is_paginated_by_cursor_oldest_first(make_api: MakeApi) -> None:
    clock = FakeClock(T0)
    api = await make_api(clock=clock)
    org = await api.org()
    ids = []
    for _ in range(5):
        ids.append((await make_endpoint(api, org))["id"])
        clock.advance(1)
    seen: list[str] = []
    cursor = None
    pages = 0
    while True:
        params: dict[str, Any] = {"limit": 2}
        if cursor:
            params["cursor"] = cursor
        r = await api.client.get("/v1/endpoints", params=params, headers=org.headers)
        assert r.status_code == 200
        page = r.json()
        assert set(page) == {"items", "nextCursor"}
        assert len(page["items"]) <= 2
        seen.extend(e["id"] for e in page["items"])
        pages += 1
        cursor = page["nextCursor"]
        if cursor is None:
            break
    assert seen == ids
    assert pages == 3
    r = await api.client.get("/v1/endpoints", params={"cursor": "garbage!"}, headers=org.headers)
    assert r.status_code == 422
    assert r.json()["error"]["details"][0]["path"] == "query.cursor"
    r = await api.client.get("/v1/endpoints", params={"limit": 501}, headers=org.headers)
    assert r.status_code == 422


async def test_patch_changes_only_given_fields_and_null_resets(api: Api) -> None:
    org = await api.org()
    partner = await api.partner(org)
    ep = await make_endpoint(api, org, description="first", partnerIds=[partner])
    r = await api.client.patch(
        f"/v1/endpoints/{ep['id']}",
        json={
            "url": "https://other.example.com/x",
            "eventTypes": ["kyc.*"],
            "description": None,
            "partnerIds": None,
        },
        headers=org.headers,
    )
    assert r.status_code == 200, r.text
    changed = r.json()
    assert changed["url"] == "https://other.example.com/x"
    assert changed["eventTypes"] == ["kyc.*"]
    assert changed["description"] is None and changed["partnerIds"] is None
    assert changed["sources"] == ep["sources"] and changed["format"] == "novatrade"
    assert "secret" not in changed  # same format, same secret
    secret = await api.client.get(f"/v1/endpoints/{ep['id']}/secret", headers=org.headers)
    assert secret.json()["secret"] == ep["secret"]
    r = await api.client.get(f"/v1/endpoints/{ep['id']}", headers=org.headers)
    assert r.json() == changed

    r = await api.client.patch(f"/v1/endpoints/{ep['id']}", json={"url": None}, headers=org.headers)
    assert r.status_code == 422
    assert r.json()["error"]["details"][0]["path"] == "$.url"
    # the current format cannot carry dlt types: the caller must choose
    r = await api.client.patch(
        f"/v1/endpoints/{ep['id']}", json={"eventTypes": ["onboarding.*"]}, headers=org.headers
    )
    assert r.status_code == 422
    assert r.json()["error"]["details"][0]["path"] == "$.format"


async def test_patch_to_standard_issues_a_whsec_secret(api: Api) -> None:
    org = await api.org()
    ep = await make_endpoint(api, org)
    r = await api.client.patch(
        f"/v1/endpoints/{ep['id']}",
        json={"format": "standard", "eventTypes": ["compliance.*", "onboarding.*"]},
        headers=org.headers,
    )
    assert r.status_code == 200, r.text
    assert r.json()["format"] == "standard"
    new_secret = r.json()["secret"]
    assert new_secret.startswith("whsec_")
    stored = await api.store.get_endpoint(org.id, ep["id"])
    assert stored is not None
    assert [s.secret for s in stored.secrets] == [new_secret]


async def test_delete_keeps_history_and_answers_404_after(api: Api) -> None:
    org = await api.org()
    ep = await make_endpoint(api, org)
    keep = await make_endpoint(api, org)
    _, [dlv, _] = await publish(api, org)
    r = await api.client.delete(f"/v1/endpoints/{ep['id']}", headers=org.headers)
    assert r.status_code == 204
    assert (
        await api.client.get(f"/v1/endpoints/{ep['id']}", headers=org.headers)
    ).status_code == 404
    again = await api.client.delete(f"/v1/endpoints/{ep['id']}", headers=org.headers)
    assert again.status_code == 404
    listed = await api.client.get("/v1/endpoints", headers=org.headers)
    assert [e["id"] for e in listed.json()["items"]] == [keep["id"]]
    # its delivery is still in the history, failed because the endpoint is gone
    r = await api.client.get(f"/v1/deliveries/{dlv}", headers=org.headers)
    assert r.status_code == 200
    assert r.json()["status"] == "failed"
    for path in ("pause", "resume", "secret"):
        method = "GET" if path == "secret" else "POST"
        r = await api.client.request(
            method, f"/v1/endpoints/{ep['id']}/{path}", headers=org.headers
        )
        assert r.status_code == 404, path


def _path(r: Any) -> str:
    assert r.status_code == 422, r.text
    body = r.json()["error"]
    assert body["code"] == "validation_failed"
    return str(body["details"][0]["path"])


VALIDATION_CASES: list[tuple[dict[str, Any], str]] = [
    ({"eventTypes": []}, "$.eventTypes"),
    ({"eventTypes": ["*"]}, "$.eventTypes[0]"),
    ({"eventTypes": ["compliance.*", "**"]}, "$.eventTypes[1]"),
    ({"eventTypes": ["compliance.*", "nope.*"]}, "$.eventTypes[1]"),
    ({"eventTypes": ["compliance"]}, "$.eventTypes[0]"),
    ({"eventTypes": ["compliance.*", "onboarding.*"]}, "$.eventTypes"),
    ({"eventTypes": ["onboarding.*"], "format": "novatrade"}, "$.format"),
    ({"eventTypes": ["compliance.*"], "format": "dlt"}, "$.format"),
    ({"format": "xml"}, "$.format"),
    ({"partnerIds": ["not-a-partner"]}, "$.partnerIds[0]"),
    ({"partnerIds": []}, "$.partnerIds"),
    ({"acceptedSchemaVersions": [0]}, "$.acceptedSchemaVersions[0]"),
    ({"acceptedSchemaVersions": [1, -2]}, "$.acceptedSchemaVersions[1]"),
    ({"acceptedSchemaVersions": ["1"]}, "$.acceptedSchemaVersions[0]"),
    ({"acceptedSchemaVersions": [1, 9]}, "$.acceptedSchemaVersions[1]"),
    ({"sources": ["WEB_APP", "EMAIL"]}, "$.sources[1]"),
    ({"sources": []}, "$.sources"),
    ({"headers": {"X-Tidings-Attempt": "9"}}, "$.headers.X-Tidings-Attempt"),
    ({"headers": {"X-Novatrade-Signature": "forged"}}, "$.headers.X-Novatrade-Signature"),
    ({"headers": {"Bad Name": "x"}}, "$.headers.Bad Name"),
    ({"headers": {"X-Ok": "a\r\nInjected: 1"}}, "$.headers.X-Ok"),
    ({"rateLimitPerSecond": 0}, "$.rateLimitPerSecond"),
    ({"rateLimitPerSecond": -1}, "$.rateLimitPerSecond"),
    ({"url": "ftp://hooks.example.com/x"}, "$.url"),
    ({"url": "https://user:pw@hooks.example.com/x"}, "$.url"),
    ({"unknownField": 1}, "$.unknownField"),
]


async def test_each_validation_rule_names_its_path(api: Api) -> None:
    """One case per rule (one database for all of them, to keep the suite fast)."""
    org = await api.org()
    for fields, path in VALIDATION_CASES:
        body = {"url": "https://hooks.example.com/in", "eventTypes": ["compliance.*"], **fields}
        r = await api.client.post("/v1/endpoints", json=body, headers=org.headers)
        assert _path(r) == path, fields
    # nothing was stored
    listed = await api.client.get("/v1/endpoints", headers=org.headers)
    assert listed.json()["items"] == []


async def test_missing_required_fields_are_named(api: Api) -> None:
    org = await api.org()
    r = await api.client.post(
        "/v1/endpoints", json={"url": "https://a.example.com"}, headers=org.headers
    )
    assert _path(r) == "$.eventTypes"
    r = await api.client.post("/v1/endpoints", json={"eventTypes": ["kyc.*"]}, headers=org.headers)
    assert _path(r) == "$.url"


async def test_patch_is_validated_like_create(api: Api) -> None:
    org = await api.org()
    ep = await make_endpoint(api, org)
    for fields, path in (
        ({"eventTypes": ["*"]}, "$.eventTypes[0]"),
        ({"partnerIds": ["nope"]}, "$.partnerIds[0]"),
        ({"headers": {"Content-Type": "text/plain"}}, "$.headers.Content-Type"),
        ({"rateLimitPerSecond": 0}, "$.rateLimitPerSecond"),
    ):
        r = await api.client.patch(f"/v1/endpoints/{ep['id']}", json=fields, headers=org.headers)
        assert _path(r) == path, fields
    unchanged = await api.client.get(f"/v1/endpoints/{ep['id']}", headers=org.headers)
    assert unchanged.json()["eventTypes"] == ["compliance.*"]


REFUSED_URLS = [
    "https://127.0.0.1/hook",
    "https://10.1.2.3/hook",
    "https://169.254.169.254/latest/meta-data",
    "https://[::1]/hook",
    "https://localhost/hook",
    "https://metadata.google.internal/x",
    "https://2130706433/hook",
    "http://hooks.example.com/hook",
]


async def test_private_addresses_and_http_are_refused_by_default(make_api: MakeApi) -> None:
    api = await make_api(allow_private_urls=False)
    org = await api.org()
    for url in REFUSED_URLS:
        r = await api.client.post(
            "/v1/endpoints", json={"url": url, "eventTypes": ["kyc.*"]}, headers=org.headers
        )
        assert _path(r) == "$.url", url


async def test_host_names_resolving_to_private_addresses_are_refused(make_api: MakeApi) -> None:
    answers = {
        "rebind.example.com": ["93.184.216.34", "10.0.0.7"],
        "ok.example.com": ["93.184.216.34"],
    }

    async def resolver(host: str, port: int) -> list[str]:
        if host not in answers:
            raise OSError("no such host")
        return answers[host]

    api = await make_api(allow_private_urls=False, resolver=resolver)
    org = await api.org()
    r = await api.client.post(
        "/v1/endpoints",
        json={"url": "https://rebind.example.com/x", "eventTypes": ["kyc.*"]},
        headers=org.headers,
    )
    assert _path(r) == "$.url"
    assert "10.0.0.7" in r.json()["error"]["message"]
    # over http:// too, the refusal names the setting that allows it, not TIDINGS_ALLOW_HTTP
    r = await api.client.post(
        "/v1/endpoints",
        json={"url": "http://rebind.example.com/x", "eventTypes": ["kyc.*"]},
        headers=org.headers,
    )
    assert _path(r) == "$.url"
    assert "TIDINGS_ALLOW_PRIVATE_URLS=true" in r.json()["error"]["message"]
    assert "TIDINGS_ALLOW_HTTP" not in r.json()["error"]["message"]
    ok = await api.client.post(
        "/v1/endpoints",
        json={"url": "https://ok.example.com/x", "eventTypes": ["kyc.*"]},
        headers=org.headers,
    )
    assert ok.status_code == 201
    # a host that does not resolve yet is accepted; the sender checks again at connect time
    later = await api.client.post(
        "/v1/endpoints",
        json={"url": "https://not-yet.example.com/x", "eventTypes": ["kyc.*"]},
        headers=org.headers,
    )
    assert later.status_code == 201


async def test_http_and_private_urls_are_accepted_when_allowed(make_api: MakeApi) -> None:
    api = await make_api(allow_private_urls=False, allow_http=True)
    org = await api.org()
    r = await api.client.post(
        "/v1/endpoints",
        json={"url": "http://hooks.example.com/in", "eventTypes": ["kyc.*"]},
        headers=org.headers,
    )
    assert r.status_code == 201
    r = await api.client.post(
        "/v1/endpoints",
        json={"url": "http://127.0.0.1:9/in", "eventTypes": ["kyc.*"]},
        headers=org.headers,
    )
    assert _path(r) == "$.url"
    private = await make_api(allow_private_urls=True)
    porg = await private.org()
    r = await private.client.post(
        "/v1/endpoints",
        json={"url": "http://127.0.0.1:9/in", "eventTypes": ["kyc.*"]},
        headers=porg.headers,
    )
    assert r.status_code == 201


async def test_secret_rotation_keeps_the_old_secret_for_the_grace_period(
    make_api: MakeApi,
) -> None:
    clock = FakeClock(T0)
    api = await make_api(clock=clock)
    org = await api.org()
    ep = await make_endpoint(api, org)
    url = f"/v1/endpoints/{ep['id']}/secret"
    r = await api.client.get(url, headers=org.headers)
    assert r.status_code == 200
    assert r.json() == {
        "secret": ep["secret"],
        "secrets": [{"secret": ep["secret"], "createdAt": to_rfc3339(T0), "expiresAt": None}],
    }

    clock.advance(10)
    r = await api.client.post(f"{url}/rotate", json={"graceSeconds": 3600}, headers=org.headers)
    assert r.status_code == 200, r.text
    rotated = r.json()
    new = rotated["secret"]
    assert new != ep["secret"] and new.startswith("ntsec_")
    assert rotated["secrets"] == [
        {"secret": new, "createdAt": to_rfc3339(T0 + 10), "expiresAt": None},
        {"secret": ep["secret"], "createdAt": to_rfc3339(T0), "expiresAt": to_rfc3339(T0 + 3610)},
    ]
    stored = await api.store.get_endpoint(org.id, ep["id"])
    assert stored is not None
    assert stored.valid_secrets(clock()) == (new, ep["secret"])  # both sign
    assert (await api.client.get(url, headers=org.headers)).json() == rotated

    clock.advance(3601)
    after = (await api.client.get(url, headers=org.headers)).json()
    assert after["secret"] == new and [s["secret"] for s in after["secrets"]] == [new]
    stored = await api.store.get_endpoint(org.id, ep["id"])
    assert stored is not None and stored.valid_secrets(clock()) == (new,)


async def test_rotation_grace_defaults_to_24_hours(make_api: MakeApi) -> None:
    clock = FakeClock(T0)
    api = await make_api(clock=clock)
    org = await api.org()
    ep = await make_endpoint(api, org, eventTypes=["kyc.*", "onboarding.*"], format="standard")
    r = await api.client.post(f"/v1/endpoints/{ep['id']}/secret/rotate", headers=org.headers)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["secret"].startswith("whsec_")
    assert body["secrets"][1] == {
        "secret": ep["secret"],
        "createdAt": to_rfc3339(T0),
        "expiresAt": to_rfc3339(T0 + 86400),
    }
    bad = await api.client.post(
        f"/v1/endpoints/{ep['id']}/secret/rotate", json={"graceSeconds": -1}, headers=org.headers
    )
    assert _path(bad) == "$.graceSeconds"


async def test_pause_holds_deliveries_and_resume_releases_them(make_api: MakeApi) -> None:
    clock = FakeClock(T0)
    api = await make_api(clock=clock)
    org = await api.org()
    ep = await make_endpoint(api, org)
    _, [first] = await publish(api, org, at=T0)

    r = await api.client.post(f"/v1/endpoints/{ep['id']}/pause", headers=org.headers)
    assert r.status_code == 200
    assert r.json()["status"] == "paused" and r.json()["pauseReason"]
    _, [second] = await publish(api, org, at=T0 + 1)
    for dlv in (first, second):
        got = await api.store.get_delivery(org.id, dlv)
        assert got is not None and got.status == DeliveryStatus.HELD
    # a paused endpoint gets no attempts
    assert await api.store.claim_due("wrk_x", T0 + 100, 60, 100) == []

    clock.advance(120)
    r = await api.client.post(f"/v1/endpoints/{ep['id']}/resume", headers=org.headers)
    assert r.status_code == 200
    assert r.json()["status"] == "active" and r.json()["released"] == 2
    page = await api.store.list_deliveries(
        org.id, DeliveryFilter(endpoint_id=ep["id"]), limit=10, cursor=None
    )
    assert {d.status for d in page.items} == {DeliveryStatus.PENDING}
    claimed = await api.store.claim_due("wrk_x", clock(), 60, 100)
    assert {c.delivery.id for c in claimed} == {first, second}
    again = await api.client.post(f"/v1/endpoints/{ep['id']}/resume", headers=org.headers)
    assert again.json()["released"] == 0


async def test_repeated_entries_are_dropped_and_paths_index_the_request(api: Api) -> None:
    org = await api.org()
    partner = await api.partner(org)
    r = await api.client.post(
        "/v1/endpoints",
        json={
            "url": "https://hooks.example.com/in",
            "eventTypes": ["compliance.*", "compliance.*", "kyc.*"],
            "partnerIds": [partner, partner],
            "acceptedSchemaVersions": [2, 1, 2],
            "sources": ["SYSTEM", "SYSTEM"],
        },
        headers=org.headers,
    )
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["eventTypes"] == ["compliance.*", "kyc.*"]
    assert body["partnerIds"] == [partner]
    assert body["acceptedSchemaVersions"] == [1, 2]
    assert body["sources"] == ["SYSTEM"]
    for fields, path in (
        ({"partnerIds": [partner, partner, "bad"]}, "$.partnerIds[2]"),
        ({"acceptedSchemaVersions": [9, 1]}, "$.acceptedSchemaVersions[0]"),
        ({"eventTypes": ["kyc.*", "kyc.*", "nope.x"]}, "$.eventTypes[2]"),
    ):
        r = await api.client.post(
            "/v1/endpoints",
            json={"url": "https://hooks.example.com/in", "eventTypes": ["kyc.*"], **fields},
            headers=org.headers,
        )
        assert _path(r) == path, fields
