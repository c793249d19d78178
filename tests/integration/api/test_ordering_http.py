"""Ordered delivery per subject and the ledger (issue 25), over HTTP and the worker's own store
calls (claim_due, record_outcomes), on both backends: an ordered endpoint's deliveries of one
subject are claimable one at a time in sequence order, whatever happens to the one in front
(retried, failed for good, held by a pause, erased, replayed); other subjects and events without
one are not held up; the sequence numbers and previous-event links; the ledger and the digest;
the bad input they refuse."""

from __future__ import annotations

import time
from typing import Any

from tests.integration.api.conftest import Api, Org
from tests.integration.api.history_helpers import make_endpoint, worker_outcome
from tidings.models import ClaimedDelivery, DeliveryStatus
from tidings.receiver.digest import event_ids_digest

WORKER = "wrk_test"


def envelope(org: Org, event_id: str, subject: str | None) -> dict[str, Any]:
    env: dict[str, Any] = {
        "id": event_id,
        "type": "compliance.status_changed",
        "schemaVersion": 1,
        "source": "WEB_APP",
        "organizationUuid": org.id,
        "data": {"orderId": subject or "none", "previousStatus": None, "status": "VALID"},
    }
    if subject is not None:
        env["subject"] = subject
    return env


async def publish(api: Api, org: Org, *pairs: tuple[str, str | None]) -> None:
    for event_id, subject in pairs:
        r = await api.client.post(
            "/v1/events", json=envelope(org, event_id, subject), headers=api.platform
        )
        assert r.status_code == 201, r.text


async def claim(api: Api, now: float) -> dict[str, ClaimedDelivery]:
    """Every delivery a worker can take at `now`, by event id."""
    return {c.event.id: c for c in await api.store.claim_due(WORKER, now, 60.0, 1000)}


async def settle(
    api: Api, claims: list[ClaimedDelivery], now: float, status: DeliveryStatus
) -> None:
    """Record one attempt of each: SUCCEEDED, FAILED (for good) or PENDING (retry in 60 s)."""
    code = 200 if status == DeliveryStatus.SUCCEEDED else 500
    final = status == DeliveryStatus.FAILED
    outcomes = [worker_outcome(c, now, code, final=final) for c in claims]
    await api.store.record_outcomes(WORKER, outcomes, now)


async def statuses(api: Api, org: Org, endpoint_id: str) -> dict[str, str]:
    r = await api.client.get(
        f"/v1/endpoints/{endpoint_id}/ledger", params={"limit": 100}, headers=org.headers
    )
    assert r.status_code == 200, r.text
    return {e["eventId"]: e["status"] for e in r.json()["items"]}


async def test_one_subject_goes_one_at_a_time_under_retries_and_failures(api: Api) -> None:
    org = await api.org()
    ep = await make_endpoint(api, org, ordering="subject")
    assert ep["ordering"] == "subject"
    await publish(
        api, org, ("a1", "A"), ("a2", "A"), ("b1", "B"), ("a3", "A"), ("n1", None), ("b2", "B")
    )
    assert await statuses(api, org, ep["id"]) == {
        "a1": "pending", "a2": "queued", "b1": "pending", "a3": "queued", "n1": "pending",
        "b2": "queued",
    }  # fmt: skip
    now = time.time() + 1
    first = await claim(api, now)
    assert set(first) == {"a1", "b1", "n1"}
    # sequence numbers in publish order, and each subject's previous event
    seqs = {c.event.id: c.delivery.sequence for c in first.values()}
    assert seqs == {"a1": 1, "b1": 3, "n1": 5}
    assert {c.event.id: c.delivery.previous_event_id for c in first.values()} == {
        "a1": None, "b1": None, "n1": None,
    }  # fmt: skip

    # a1 fails and is retried in 60 s: A waits, B goes on
    await settle(api, [first["a1"]], now, DeliveryStatus.PENDING)
    await settle(api, [first["b1"], first["n1"]], now, DeliveryStatus.SUCCEEDED)
    second = await claim(api, now + 1)
    assert set(second) == {"b2"}
    assert second["b2"].delivery.previous_event_id == "b1"
    assert second["b2"].delivery.sequence == 6
    await settle(api, [second["b2"]], now + 1, DeliveryStatus.SUCCEEDED)
    assert await claim(api, now + 30) == {}
    retry = await claim(api, now + 61)
    assert set(retry) == {"a1"}
    # failing for good lets the next one go (the order does not block forever)
    await settle(api, [retry["a1"]], now + 61, DeliveryStatus.FAILED)
    third = await claim(api, now + 62)
    assert set(third) == {"a2"}
    assert third["a2"].delivery.previous_event_id == "a1"
    await settle(api, [third["a2"]], now + 62, DeliveryStatus.SUCCEEDED)
    fourth = await claim(api, now + 63)
    assert set(fourth) == {"a3"} and fourth["a3"].delivery.previous_event_id == "a2"
    await settle(api, [fourth["a3"]], now + 63, DeliveryStatus.SUCCEEDED)
    assert await statuses(api, org, ep["id"]) == {
        "a1": "failed", "a2": "succeeded", "b1": "succeeded", "a3": "succeeded",
        "n1": "succeeded", "b2": "succeeded",
    }  # fmt: skip


async def test_an_unordered_endpoint_sends_a_subject_at_once_with_the_same_links(api: Api) -> None:
    org = await api.org()
    ep = await make_endpoint(api, org)
    assert ep["ordering"] == "none"
    await publish(api, org, ("a1", "A"), ("a2", "A"))
    got = await claim(api, time.time() + 1)
    assert set(got) == {"a1", "a2"}
    assert got["a2"].delivery.previous_event_id == "a1" and got["a2"].delivery.sequence == 2
    assert not got["a2"].delivery.ordered


async def test_pause_holds_the_head_and_resume_sends_it_first(api: Api) -> None:
    org = await api.org()
    ep = await make_endpoint(api, org, ordering="subject")
    await publish(api, org, ("a1", "A"), ("a2", "A"))
    r = await api.client.post(f"/v1/endpoints/{ep['id']}/pause", headers=org.headers)
    assert r.status_code == 200, r.text
    await publish(api, org, ("a3", "A"))  # published while paused: queued behind a2
    assert await statuses(api, org, ep["id"]) == {"a1": "held", "a2": "queued", "a3": "queued"}
    r = await api.client.post(f"/v1/endpoints/{ep['id']}/resume", headers=org.headers)
    assert r.status_code == 200 and r.json()["released"] == 1
    now = time.time() + 1
    got = await claim(api, now)
    assert set(got) == {"a1"}
    # paused while a1 is attempted: its success makes a2 due, but held
    r = await api.client.post(f"/v1/endpoints/{ep['id']}/pause", headers=org.headers)
    await settle(api, [got["a1"]], now, DeliveryStatus.SUCCEEDED)
    assert (await statuses(api, org, ep["id"]))["a2"] == "held"
    await api.client.post(f"/v1/endpoints/{ep['id']}/resume", headers=org.headers)
    assert set(await claim(api, now + 1)) == {"a2"}


async def test_replaying_a_window_sends_each_subject_in_order(api: Api) -> None:
    org = await api.org()
    ep = await make_endpoint(api, org, ordering="subject")
    await publish(api, org, ("a1", "A"), ("b1", "B"), ("a2", "A"), ("a3", "A"))
    now = time.time() + 1
    for step in range(3):
        got = await claim(api, now + step)
        await settle(api, list(got.values()), now + step, DeliveryStatus.SUCCEEDED)
    assert set((await statuses(api, org, ep["id"])).values()) == {"succeeded"}
    r = await api.client.post(
        f"/v1/endpoints/{ep['id']}/replay",
        json={"since": "2000-01-01T00:00:00Z", "status": "succeeded"},
        headers=org.headers,
    )
    assert r.status_code == 202 and r.json()["replayed"] == 4, r.text
    assert await statuses(api, org, ep["id"]) == {
        "a1": "pending", "b1": "pending", "a2": "queued", "a3": "queued",
    }  # fmt: skip
    seen: list[str] = []
    for step in range(4):
        got = await claim(api, now + 10 + step)
        seen += sorted(got)
        await settle(api, list(got.values()), now + 10 + step, DeliveryStatus.SUCCEEDED)
    assert seen == ["a1", "b1", "a2", "a3"]
    # replaying one delivery of a subject behind another one that is open waits its turn
    await publish(api, org, ("a4", "A"))
    r = await api.client.post(
        f"/v1/deliveries/{(await claim_ids(api, org, ep['id']))['a1']}/replay",
        headers=org.headers,
    )
    assert r.status_code == 202 and r.json()["status"] == "queued", r.text
    got = await claim(api, now + 20)
    assert set(got) == {"a4"}
    await settle(api, [got["a4"]], now + 20, DeliveryStatus.SUCCEEDED)
    assert set(await claim(api, now + 21)) == {"a1"}


async def claim_ids(api: Api, org: Org, endpoint_id: str) -> dict[str, str]:
    r = await api.client.get(
        f"/v1/endpoints/{endpoint_id}/ledger", params={"limit": 100}, headers=org.headers
    )
    return {e["eventId"]: e["deliveryId"] for e in r.json()["items"]}


async def test_erasing_the_head_lets_the_next_go(api: Api) -> None:
    org = await api.org()
    ep = await make_endpoint(api, org, ordering="subject")
    await publish(api, org, ("a1", "A"), ("a2", "A"))
    r = await api.client.post(
        "/v1/events/a1/erase", json={"organizationUuid": org.id}, headers=api.platform
    )
    assert r.status_code == 200, r.text
    assert await statuses(api, org, ep["id"]) == {"a1": "skipped", "a2": "pending"}


async def test_switching_ordering_lines_up_or_releases_what_is_open(api: Api) -> None:
    org = await api.org()
    ep = await make_endpoint(api, org)
    await publish(api, org, ("a1", "A"), ("a2", "A"), ("b1", "B"))
    r = await api.client.patch(
        f"/v1/endpoints/{ep['id']}", json={"ordering": "subject"}, headers=org.headers
    )
    assert r.status_code == 200 and r.json()["ordering"] == "subject", r.text
    assert await statuses(api, org, ep["id"]) == {"a1": "pending", "a2": "queued", "b1": "pending"}
    await publish(api, org, ("a3", "A"))
    assert (await statuses(api, org, ep["id"]))["a3"] == "queued"
    r = await api.client.patch(
        f"/v1/endpoints/{ep['id']}", json={"ordering": None}, headers=org.headers
    )
    assert r.status_code == 200 and r.json()["ordering"] == "none", r.text
    assert set((await statuses(api, org, ep["id"])).values()) == {"pending"}
    assert set(await claim(api, time.time() + 1)) == {"a1", "a2", "a3", "b1"}


async def test_deleting_an_endpoint_fails_what_was_queued(api: Api) -> None:
    org = await api.org()
    ep = await make_endpoint(api, org, ordering="subject")
    await publish(api, org, ("a1", "A"), ("a2", "A"))
    r = await api.client.delete(f"/v1/endpoints/{ep['id']}", headers=org.headers)
    assert r.status_code == 204, r.text
    assert await statuses(api, org, ep["id"]) == {"a1": "failed", "a2": "failed"}


async def test_the_ledger_pages_by_sequence_and_the_digest_counts_what_is_owed(api: Api) -> None:
    org, other = await api.org("acme"), await api.org("globex")
    ep = await make_endpoint(api, org, ordering="subject")
    await publish(api, org, *[(f"e{i}", f"s{i % 3}") for i in range(1, 8)])
    url = f"/v1/endpoints/{ep['id']}"
    r = await api.client.get(f"{url}/ledger", params={"limit": 3}, headers=org.headers)
    page = r.json()
    assert [e["sequence"] for e in page["items"]] == [1, 2, 3]
    assert page["items"][0] == {
        "sequence": 1, "eventId": "e1", "type": "compliance.status_changed", "subject": "s1",
        "deliveryId": page["items"][0]["deliveryId"], "status": "pending",
    }  # fmt: skip
    assert page["nextAfter"] == 3 and page["lastSequence"] == 7
    rest = await api.client.get(
        f"{url}/ledger", params={"after": 3, "limit": 10}, headers=org.headers
    )
    assert [e["eventId"] for e in rest.json()["items"]] == ["e4", "e5", "e6", "e7"]
    assert rest.json()["nextAfter"] is None

    r = await api.client.get(f"{url}/digest", params={"from": 2, "to": 5}, headers=org.headers)
    assert r.status_code == 200, r.text
    assert r.json() == {
        "from": 2, "to": 5, "count": 4, "digest": event_ids_digest(["e5", "e3", "e4", "e2"]),
        "lastSequence": 7,
    }  # fmt: skip
    # the digest does not depend on order and does count repeats
    assert event_ids_digest(["a", "b"]) == event_ids_digest(["b", "a"])
    assert event_ids_digest(["a", "a"]) != event_ids_digest(["a"])
    assert event_ids_digest([]) == "0" * 32

    # another organization's endpoint is not found
    for path in ("ledger", "digest"):
        r = await api.client.get(
            f"{url}/{path}", params={"from": 1, "to": 2}, headers=other.headers
        )
        assert r.status_code == 404, r.text


async def test_bad_input_is_named(api: Api) -> None:
    org = await api.org()
    r = await api.client.post(
        "/v1/endpoints",
        json={"url": "https://hooks.example.com/in", "eventTypes": ["compliance.*"],
              "ordering": "fifo"},
        headers=org.headers,
    )  # fmt: skip
    assert r.status_code == 422 and r.json()["error"]["details"][0]["path"] == "$.ordering"
    ep = await make_endpoint(api, org)
    r = await api.client.patch(
        f"/v1/endpoints/{ep['id']}", json={"ordering": 1}, headers=org.headers
    )
    assert r.status_code == 422 and r.json()["error"]["details"][0]["path"] == "$.ordering"
    r = await api.client.post(
        "/v1/events", json=envelope(org, "long", "s" * 201), headers=api.platform
    )
    assert r.status_code == 422 and r.json()["error"]["details"][0]["path"] == "$.subject"
    await publish(api, org, ("ok", "s" * 200))
    url = f"/v1/endpoints/{ep['id']}"
    for params, path in (
        ({"after": "abc"}, "query.after"),
        ({"after": -1}, "query.after"),
        ({"limit": 0}, "query.limit"),
    ):
        r = await api.client.get(f"{url}/ledger", params=params, headers=org.headers)
        assert r.status_code == 422, r.text
        assert r.json()["error"]["details"][0]["path"] == path
    digest_cases: list[tuple[dict[str, str | int], str]] = [
        ({"from": "x", "to": 2}, "query.from"),
        ({"from": 1}, "query.to"),
        ({"from": 5, "to": 2}, "query.to"),
        ({"from": 1, "to": 2_000_000}, "query.to"),
    ]
    for query, path in digest_cases:
        r = await api.client.get(f"{url}/digest", params=query, headers=org.headers)
        assert r.status_code == 422, r.text
        assert r.json()["error"]["details"][0]["path"] == path
