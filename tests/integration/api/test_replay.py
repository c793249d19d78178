"""Replay over HTTP on both backends (issue 4 item 3): one delivery, many deliveries of an
endpoint by window and status, `missing: true`, and the 409s for paused and deleted endpoints."""

from __future__ import annotations

from typing import Any

from tests.integration.api.conftest import Api, MakeApi, Org
from tests.integration.api.history_helpers import T0, attempt_all, make_endpoint, publish
from tidings.clock import FakeClock, to_rfc3339
from tidings.models import DeliveryStatus
from tidings.store.base import DeliveryFilter


async def _statuses(api: Api, org: Org, endpoint_id: str) -> dict[str, str]:
    page = await api.store.list_deliveries(
        org.id, DeliveryFilter(endpoint_id=endpoint_id), limit=500, cursor=None
    )
    return {d.event_id: str(d.status) for d in page.items}


async def test_single_replay_starts_a_new_series_for_the_same_event(make_api: MakeApi) -> None:
    clock = FakeClock(T0)
    api = await make_api(clock=clock)
    org = await api.org()
    ep = await make_endpoint(api, org)
    event, [dlv] = await publish(api, org, at=T0)
    await attempt_all(api, now=T0 + 1, status_code=500, final=True)
    before = (await api.client.get(f"/v1/deliveries/{dlv}", headers=org.headers)).json()
    assert before["status"] == "failed" and before["attemptCount"] == 1

    clock.advance(3600)
    r = await api.client.post(f"/v1/deliveries/{dlv}/replay", headers=org.headers)
    assert r.status_code == 202, r.text
    replayed = r.json()
    assert replayed["id"] == dlv and replayed["eventId"] == event.id
    assert replayed["endpointId"] == ep["id"]
    assert replayed["status"] == "pending" and replayed["attemptCount"] == 0
    assert replayed["series"] == 2
    assert replayed["nextAttemptAt"] == to_rfc3339(clock())

    # the worker picks it up with the same event (same id, so the receiver deduplicates)
    [claimed] = await api.store.claim_due("wrk_test", clock(), 60, 10)
    assert claimed.delivery.id == dlv and claimed.event.id == event.id
    assert claimed.event.data == event.data
    await api.store.release("wrk_test", [dlv], clock(), now=clock())
    await attempt_all(api, now=clock(), status_code=200)
    after = (await api.client.get(f"/v1/deliveries/{dlv}", headers=org.headers)).json()
    assert after["status"] == "succeeded"
    # the history keeps the first series' attempt next to the new one
    assert [a["series"] for a in after["attempts"]] == [1, 2]
    assert [a["statusCode"] for a in after["attempts"]] == [500, 200]


async def test_bulk_replay_by_window_and_status(make_api: MakeApi) -> None:
    clock = FakeClock(T0 + 10_000)
    api = await make_api(clock=clock)
    org = await api.org()
    ep = await make_endpoint(api, org)
    other = await make_endpoint(api, org)
    early, _ = await publish(api, org, at=T0)
    in_window = [(await publish(api, org, at=T0 + 100 + i))[0] for i in range(3)]
    late, _ = await publish(api, org, at=T0 + 1000)
    await attempt_all(api, now=T0 + 5000, status_code=500, final=True)
    ok, _ = await publish(api, org, at=T0 + 150)
    await attempt_all(api, now=T0 + 5001, status_code=200)

    base = f"/v1/endpoints/{ep['id']}/replay"
    window = {"since": to_rfc3339(T0 + 100), "until": to_rfc3339(T0 + 1000)}
    r = await api.client.post(base, json=window, headers=org.headers)
    assert r.status_code == 202, r.text
    assert r.json() == {"replayed": 3, "missing": 0, "skipped": 0}
    statuses = await _statuses(api, org, ep["id"])
    assert [statuses[e.id] for e in in_window] == ["pending"] * 3
    assert statuses[early.id] == "failed" and statuses[late.id] == "failed"
    assert statuses[ok.id] == "succeeded"
    # the other endpoint's deliveries are untouched
    assert set((await _statuses(api, org, other["id"])).values()) == {"failed", "succeeded"}

    r = await api.client.post(base, json={**window, "status": "succeeded"}, headers=org.headers)
    assert r.json()["replayed"] == 1
    # without until: everything since; a list of statuses
    r = await api.client.post(
        base,
        json={"since": to_rfc3339(T0), "status": ["failed", "pending"]},
        headers=org.headers,
    )
    assert r.json()["replayed"] == 6
    assert set((await _statuses(api, org, ep["id"])).values()) == {"pending"}


async def test_missing_true_sends_what_the_endpoint_never_received(api: Api) -> None:
    org = await api.org()
    partner = await api.partner(org)
    # events published before the endpoint existed: no delivery for it
    c1, _ = await publish(api, org, at=T0)
    c2, _ = await publish(api, org, at=T0 + 1, partner=partner)
    echo, _ = await publish(api, org, at=T0 + 2, source="API")  # no webhook for API events
    kyc, _ = await publish(api, org, "kyc.verification_completed", at=T0 + 3)
    before, _ = await publish(api, org, at=T0 - 100)
    ep = await make_endpoint(api, org, eventTypes=["compliance.*"])
    after, [after_dlv] = await publish(api, org, at=T0 + 4)  # has its delivery already

    r = await api.client.post(
        f"/v1/endpoints/{ep['id']}/replay",
        json={"since": to_rfc3339(T0), "missing": True},
        headers=org.headers,
    )
    assert r.status_code == 202, r.text
    assert r.json() == {"replayed": 2, "missing": 2, "skipped": 0}
    statuses = await _statuses(api, org, ep["id"])
    assert statuses == {c1.id: "pending", c2.id: "pending", after.id: "pending"}
    assert echo.id not in statuses and kyc.id not in statuses and before.id not in statuses
    # the new deliveries are for the same stored events
    r = await api.client.get(f"/v1/events/{c1.id}", headers=org.headers)
    assert [d["endpointId"] for d in r.json()["deliveries"]] == [ep["id"]]
    # running it again creates nothing new
    again = await api.client.post(
        f"/v1/endpoints/{ep['id']}/replay",
        json={"since": to_rfc3339(T0), "missing": True},
        headers=org.headers,
    )
    assert again.json() == {"replayed": 0, "missing": 0, "skipped": 0}
    assert after_dlv


async def test_missing_respects_partner_filter_and_records_skips(api: Api) -> None:
    org = await api.org()
    p1 = await api.partner(org, "one")
    p2 = await api.partner(org, "two")
    mine, _ = await publish(api, org, at=T0, partner=p1)
    theirs, _ = await publish(api, org, at=T0 + 1, partner=p2)
    old_version, _ = await publish(api, org, at=T0 + 2, partner=p1, version=1)
    ep = await make_endpoint(
        api,
        org,
        eventTypes=["compliance.status_changed"],
        partnerIds=[p1],
        acceptedSchemaVersions=[2],
    )
    r = await api.client.post(
        f"/v1/endpoints/{ep['id']}/replay",
        json={"since": to_rfc3339(T0), "missing": True},
        headers=org.headers,
    )
    assert r.json() == {"replayed": 1, "missing": 1, "skipped": 1}
    statuses = await _statuses(api, org, ep["id"])
    assert statuses == {mine.id: "pending", old_version.id: "skipped"}
    assert theirs.id not in statuses


async def test_replay_to_a_paused_endpoint_is_409(api: Api) -> None:
    org = await api.org()
    ep = await make_endpoint(api, org)
    _, [dlv] = await publish(api, org, at=T0)
    await attempt_all(api, now=T0 + 1, status_code=500, final=True)
    await api.client.post(f"/v1/endpoints/{ep['id']}/pause", headers=org.headers)

    r = await api.client.post(f"/v1/deliveries/{dlv}/replay", headers=org.headers)
    assert r.status_code == 409
    error = r.json()["error"]
    assert error["code"] == "endpoint_paused"
    assert "paused" in error["message"] and "resume" in error["message"]
    r = await api.client.post(
        f"/v1/endpoints/{ep['id']}/replay", json={"since": to_rfc3339(T0)}, headers=org.headers
    )
    assert r.status_code == 409 and r.json()["error"]["code"] == "endpoint_paused"
    got = await api.store.get_delivery(org.id, dlv)
    assert got is not None and got.status == DeliveryStatus.FAILED and got.series == 1

    await api.client.post(f"/v1/endpoints/{ep['id']}/resume", headers=org.headers)
    r = await api.client.post(f"/v1/deliveries/{dlv}/replay", headers=org.headers)
    assert r.status_code == 202


async def test_replay_to_a_deleted_endpoint_is_409(api: Api) -> None:
    org = await api.org()
    ep = await make_endpoint(api, org)
    _, [dlv] = await publish(api, org, at=T0)
    await api.client.delete(f"/v1/endpoints/{ep['id']}", headers=org.headers)
    r = await api.client.post(f"/v1/deliveries/{dlv}/replay", headers=org.headers)
    assert r.status_code == 409
    error = r.json()["error"]
    assert error["code"] == "endpoint_deleted" and "deleted" in error["message"]
    r = await api.client.post(
        f"/v1/endpoints/{ep['id']}/replay", json={"since": to_rfc3339(T0)}, headers=org.headers
    )
    assert r.status_code == 409 and r.json()["error"]["code"] == "endpoint_deleted"


async def test_skipped_delivery_cannot_be_replayed(api: Api) -> None:
    org = await api.org()
    await make_endpoint(
        api, org, eventTypes=["compliance.status_changed"], acceptedSchemaVersions=[2]
    )
    _, [dlv] = await publish(api, org, at=T0, version=1)
    r = await api.client.post(f"/v1/deliveries/{dlv}/replay", headers=org.headers)
    assert r.status_code == 409 and r.json()["error"]["code"] == "delivery_skipped"


async def test_replay_input_is_validated(api: Api) -> None:
    org = await api.org()
    ep = await make_endpoint(api, org)
    url = f"/v1/endpoints/{ep['id']}/replay"
    cases: list[tuple[dict[str, Any], str]] = [
        ({}, "$.since"),
        ({"since": "last week"}, "$.since"),
        ({"since": to_rfc3339(T0), "until": "soon"}, "$.until"),
        ({"since": to_rfc3339(T0), "until": to_rfc3339(T0)}, "$.until"),
        ({"since": to_rfc3339(T0), "status": "skipped"}, "$.status"),
        ({"since": to_rfc3339(T0), "status": "lost"}, "$.status"),
        ({"since": to_rfc3339(T0), "status": ["failed", "nope"]}, "$.status[1]"),
        ({"since": to_rfc3339(T0), "status": []}, "$.status"),
        ({"since": to_rfc3339(T0), "missing": "maybe"}, "$.missing"),
    ]
    for body, path in cases:
        r = await api.client.post(url, json=body, headers=org.headers)
        assert r.status_code == 422, body
        assert r.json()["error"]["details"][0]["path"] == path, body
    r = await api.client.post(
        "/v1/endpoints/ep_nope/replay", json={"since": to_rfc3339(T0)}, headers=org.headers
    )
    assert r.status_code == 404
    r = await api.client.post("/v1/deliveries/dlv_nope/replay", headers=org.headers)
    assert r.status_code == 404


async def test_missing_true_sends_skipped_deliveries_the_endpoint_accepts_now(api: Api) -> None:
    org = await api.org()
    ep = await make_endpoint(
        api, org, eventTypes=["compliance.status_changed"], acceptedSchemaVersions=[2]
    )
    old, [skipped] = await publish(api, org, at=T0, version=1)
    current, [sent] = await publish(api, org, at=T0 + 1, version=2)
    got = await api.store.get_delivery(org.id, skipped)
    assert got is not None and got.status == DeliveryStatus.SKIPPED
    url = f"/v1/endpoints/{ep['id']}/replay"
    window = {"since": to_rfc3339(T0), "missing": True}

    # still not acceptable: stays skipped
    r = await api.client.post(url, json=window, headers=org.headers)
    assert r.json() == {"replayed": 0, "missing": 0, "skipped": 0}
    # the endpoint now accepts version 1 too: the skipped delivery goes out in version 1
    r = await api.client.patch(
        f"/v1/endpoints/{ep['id']}", json={"acceptedSchemaVersions": [1, 2]}, headers=org.headers
    )
    assert r.status_code == 200
    r = await api.client.post(url, json={**window, "missing": False}, headers=org.headers)
    assert r.json()["replayed"] == 0  # without missing, skipped ones stay as they are
    r = await api.client.post(url, json=window, headers=org.headers)
    assert r.status_code == 202
    assert r.json() == {"replayed": 1, "missing": 1, "skipped": 0}
    body = (await api.client.get(f"/v1/deliveries/{skipped}", headers=org.headers)).json()
    assert body["status"] == "pending" and body["schemaVersion"] == 1
    assert body["skipReason"] is None and body["series"] == 2 and body["eventId"] == old.id
    claimed = await api.store.claim_due("wrk_test", T0 + 10**9, 60, 10)
    assert {c.delivery.id for c in claimed} == {skipped, sent}
    assert current.id
