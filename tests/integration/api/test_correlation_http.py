"""Self-echo filtering (issue 26 item 7) over HTTP, on both backends: the envelope's optional
`correlationId` is stored, shown in the event and the feed, filters the feed (`correlationId=`,
with its own ETag), is part of what an idempotent repeat must match, and is checked like the
other ids (a 422 naming it)."""

from __future__ import annotations

from typing import Any

from tests.integration.api.conftest import Api, Org


def envelope(org: Org, order: str, correlation: str | None) -> dict[str, Any]:
    env: dict[str, Any] = {
        "id": f"evt-{order}",
        "type": "compliance.status_changed",
        "schemaVersion": 1,
        "source": "WEB_APP",
        "organizationUuid": org.id,
        "data": {"orderId": order, "previousStatus": None, "status": "VALID"},
    }
    if correlation is not None:
        env["correlationId"] = correlation
    return env


async def test_the_correlation_id_is_stored_shown_and_filters_the_feed(api: Api) -> None:
    org, other = await api.org("acme"), await api.org("globex")
    for order, correlation in (("o1", "req-1"), ("o2", None), ("o3", "req-1"), ("o4", "req-2")):
        r = await api.client.post(
            "/v1/events", json=envelope(org, order, correlation), headers=api.platform
        )
        assert r.status_code == 201, r.text
        assert r.json()["correlationId"] == correlation
    r = await api.client.post(
        "/v1/events", json=envelope(other, "x1", "req-1"), headers=api.platform
    )
    assert r.status_code == 201, r.text

    one = (await api.client.get("/v1/events/evt-o1", headers=org.headers)).json()
    assert one["correlationId"] == "req-1"
    feed = (await api.client.get("/v1/events", headers=org.headers)).json()
    assert [e["correlationId"] for e in feed["items"]] == ["req-1", None, "req-1", "req-2"]

    r = await api.client.get("/v1/events", params={"correlationId": "req-1"}, headers=org.headers)
    assert [e["id"] for e in r.json()["items"]] == ["evt-o1", "evt-o3"]  # not the other org's
    etag = r.headers["etag"]
    assert etag != (await api.client.get("/v1/events", headers=org.headers)).headers["etag"]
    same = await api.client.get("/v1/events", params={"correlationId": "req-1"},
                                headers={**org.headers, "If-None-Match": etag})  # fmt: skip
    assert same.status_code == 304
    paged = await api.client.get("/v1/events", params={"correlationId": "req-1", "limit": 1},
                                 headers=org.headers)  # fmt: skip
    rest = await api.client.get(
        "/v1/events",
        params={"correlationId": "req-1", "after": paged.json()["nextCursor"]},
        headers=org.headers,
    )
    assert [e["id"] for e in rest.json()["items"]] == ["evt-o3"]
    typed = await api.client.get("/v1/events", params={"correlationId": "req-2", "types": "kyc.*"},
                                 headers=org.headers)  # fmt: skip
    assert typed.json()["items"] == []
    # a new event with it changes the filtered page's ETag
    r = await api.client.post("/v1/events", json=envelope(org, "o5", "req-1"), headers=api.platform)
    assert r.status_code == 201, r.text
    changed = await api.client.get("/v1/events", params={"correlationId": "req-1"},
                                   headers={**org.headers, "If-None-Match": etag})  # fmt: skip
    assert changed.status_code == 200 and len(changed.json()["items"]) == 3


async def test_bad_correlation_ids_are_named_and_a_repeat_must_match(api: Api) -> None:
    org = await api.org()
    for bad in ("", 42, "x" * 201):
        env = envelope(org, "o1", None) | {"correlationId": bad}
        r = await api.client.post("/v1/events", json=env, headers=api.platform)
        assert r.status_code == 422, r.text
        assert r.json()["error"]["details"][0]["path"] == "$.correlationId"
    r = await api.client.post("/v1/events", json=envelope(org, "o1", "req-1"), headers=api.platform)
    assert r.status_code == 201, r.text
    again = await api.client.post(
        "/v1/events", json=envelope(org, "o1", "req-1"), headers=api.platform
    )
    assert again.status_code == 200, again.text  # an idempotent repeat
    other = await api.client.post(
        "/v1/events", json=envelope(org, "o1", "req-other"), headers=api.platform
    )
    assert other.status_code == 409 and other.json()["error"]["code"] == "idempotency_conflict"
    r = await api.client.get("/v1/events", params={"correlationId": ""}, headers=org.headers)
    assert r.status_code == 422 and "correlationId" in r.text
