"""API keys with a lifecycle and scopes, on both backends (issue 22 section 1): made with a
name, scope and expiry and shown once; listed with their visible prefix and status, never in
clear; scopes enforced (a read key cannot write, a publish key can only publish) with a 403
naming the scope needed; revoked and expired keys refused; the last platform key kept;
last use written at most once a minute; console sessions end with their key."""

from __future__ import annotations

from typing import Any

from tests.integration.api.conftest import PLATFORM_KEY, Api, MakeApi
from tidings.clock import FakeClock, to_rfc3339

T0 = 1_767_225_600.0


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


async def make_key(api: Api, path: str, **body: Any) -> dict[str, Any]:
    r = await api.client.post(path, json=body, headers=api.platform)
    assert r.status_code == 201, r.text
    return dict(r.json())


def event(org_id: str) -> dict[str, Any]:
    return {
        "type": "compliance.status_changed",
        "schemaVersion": 1,
        "source": "SYSTEM",
        "organizationUuid": org_id,
        "data": {"orderId": "ord_1", "previousStatus": None, "status": "VALID"},
    }


async def test_keys_are_made_listed_and_shown_once(api: Api) -> None:
    org = await api.org()
    made = await make_key(
        api, f"/v1/organizations/{org.id}/api-keys", name="bi export", scope="read"
    )
    assert made["scope"] == "read" and made["name"] == "bi export"
    assert made["apiKey"].startswith(made["prefix"]) and len(made["prefix"]) < 20
    listed = (await api.client.get("/v1/api-keys", headers=bearer(made["apiKey"]))).json()
    assert [k["scope"] for k in listed["items"]] == ["write", "read"]  # the first key, then this
    mine = listed["items"][1]
    assert mine["id"] == made["id"] and mine["status"] == "active"
    assert made["apiKey"] not in str(listed)  # never in clear again
    platform = await make_key(api, "/v1/api-keys", name="publisher", scope="publish")
    keys = (await api.client.get("/v1/api-keys", headers=api.platform)).json()["items"]
    assert [k["kind"] for k in keys] == ["platform", "platform"]
    assert keys[-1]["id"] == platform["id"] and keys[-1]["scope"] == "publish"
    # bad input names its field
    for path, body, field in [
        (f"/v1/organizations/{org.id}/api-keys", {"scope": "admin"}, "$.scope"),
        ("/v1/api-keys", {"scope": "read"}, "$.scope"),
        ("/v1/api-keys", {"expiresAt": "2000-01-01T00:00:00Z"}, "$.expiresAt"),
        ("/v1/api-keys", {"expiresAt": "soon"}, "$.expiresAt"),
    ]:
        r = await api.client.post(path, json=body, headers=api.platform)
        assert r.status_code == 422, (body, r.text)
        assert r.json()["error"]["details"][0]["path"] == field
    # an organization key makes no key
    r = await api.client.post("/v1/api-keys", json={}, headers=org.headers)
    assert r.status_code == 403


async def test_scopes_are_enforced_with_the_scope_needed(api: Api) -> None:
    org = await api.org()
    reader = (await make_key(api, f"/v1/organizations/{org.id}/api-keys", scope="read"))["apiKey"]
    assert (await api.client.get("/v1/endpoints", headers=bearer(reader))).status_code == 200
    r = await api.client.post(
        "/v1/endpoints",
        json={"url": "https://127.0.0.1:9/h", "eventTypes": ["compliance.*"]},
        headers=bearer(reader),
    )
    assert r.status_code == 403 and r.json()["error"]["code"] == "insufficient_scope"
    assert r.json()["error"]["details"] == {"required": ["write"], "scope": "read"}
    made = await api.client.post(
        "/v1/endpoints",
        json={"url": "https://127.0.0.1:9/h", "eventTypes": ["compliance.*"]},
        headers=org.headers,
    )
    endpoint_id = made.json()["id"]
    r = await api.client.get(f"/v1/endpoints/{endpoint_id}", headers=bearer(reader))
    assert r.status_code == 200  # a read key reads the endpoint, not its signing secret
    r = await api.client.get(f"/v1/endpoints/{endpoint_id}/secret", headers=bearer(reader))
    assert r.status_code == 403 and r.json()["error"]["code"] == "insufficient_scope"
    r = await api.client.get(f"/v1/endpoints/{endpoint_id}/secret", headers=org.headers)
    assert r.status_code == 200 and r.json()["secret"]
    publisher = (await make_key(api, "/v1/api-keys", scope="publish"))["apiKey"]
    r = await api.client.post("/v1/events", json=event(org.id), headers=bearer(publisher))
    assert r.status_code == 201, r.text
    r = await api.client.post(
        "/v1/events/batch", json={"events": [event(org.id)]}, headers=bearer(publisher)
    )
    assert r.status_code == 200
    r = await api.client.post("/v1/organizations", json={"name": "x"}, headers=bearer(publisher))
    assert r.status_code == 403 and r.json()["error"]["details"]["required"] == ["admin"]
    assert (await api.client.get("/v1/api-keys", headers=bearer(publisher))).status_code == 403


async def test_revoked_keys_are_refused_and_the_last_platform_key_is_kept(api: Api) -> None:
    org, other = await api.org(), await api.org()
    spare = await make_key(api, f"/v1/organizations/{org.id}/api-keys")
    assert (
        await api.client.get("/v1/endpoints", headers=bearer(spare["apiKey"]))
    ).status_code == 200
    r = await api.client.delete(f"/v1/api-keys/{spare['id']}", headers=other.headers)
    assert r.status_code == 404  # another organization's key
    r = await api.client.delete(f"/v1/api-keys/{spare['id']}", headers=org.headers)
    assert r.status_code == 200 and r.json()["status"] == "revoked" and r.json()["revokedAt"]
    r = await api.client.get("/v1/endpoints", headers=bearer(spare["apiKey"]))
    assert r.status_code == 401  # at once in this process
    again = await api.client.delete(f"/v1/api-keys/{spare['id']}", headers=org.headers)
    assert again.status_code == 200  # revoking twice is no error
    # platform keys: never the last one that works
    [first] = (await api.client.get("/v1/api-keys", headers=api.platform)).json()["items"]
    r = await api.client.delete(f"/v1/api-keys/{first['id']}", headers=api.platform)
    assert r.status_code == 409 and r.json()["error"]["code"] == "last_platform_key"
    second = await make_key(api, "/v1/api-keys", name="new admin")
    r = await api.client.delete(f"/v1/api-keys/{first['id']}", headers=bearer(second["apiKey"]))
    assert r.status_code == 200
    assert (await api.client.get("/v1/api-keys", headers=api.platform)).status_code == 401
    r = await api.client.delete(f"/v1/api-keys/{second['id']}", headers=bearer(second["apiKey"]))
    assert r.status_code == 409


async def test_publish_keys_do_not_stand_in_for_the_last_admin_key(api: Api) -> None:
    """A publish key makes no keys: left with publish keys only, an operator would be locked
    out, so the last admin key is kept while publish keys remain, and publish keys may go."""
    [admin] = (await api.client.get("/v1/api-keys", headers=api.platform)).json()["items"]
    publisher = await make_key(api, "/v1/api-keys", name="publisher", scope="publish")
    r = await api.client.delete(f"/v1/api-keys/{admin['id']}", headers=api.platform)
    assert r.status_code == 409 and r.json()["error"]["code"] == "last_platform_key"
    assert (await api.client.get("/v1/api-keys", headers=api.platform)).status_code == 200
    r = await api.client.delete(f"/v1/api-keys/{publisher['id']}", headers=api.platform)
    assert r.status_code == 200 and r.json()["status"] == "revoked"
    # an expired admin key does not count either
    clock_now = api.app.state.tidings.deps.clock()
    soon = await make_key(api, "/v1/api-keys", name="short", expiresAt=to_rfc3339(clock_now + 3600))
    r = await api.client.delete(f"/v1/api-keys/{admin['id']}", headers=bearer(soon["apiKey"]))
    assert r.status_code == 200  # another admin key works: the first may go
    r = await api.client.delete(f"/v1/api-keys/{soon['id']}", headers=bearer(soon["apiKey"]))
    assert r.status_code == 409


async def test_the_listing_is_keyset_paged(api: Api) -> None:
    org, other = await api.org(), await api.org()
    made = [
        (await make_key(api, f"/v1/organizations/{org.id}/api-keys", name=f"k{i}"))["id"]
        for i in range(4)
    ]
    await make_key(api, f"/v1/organizations/{other.id}/api-keys", name="not theirs")
    seen: list[str] = []
    cursor: str | None = None
    pages = 0
    while True:
        params: dict[str, Any] = {"limit": 2} | ({"cursor": cursor} if cursor else {})
        r = await api.client.get("/v1/api-keys", params=params, headers=org.headers)
        assert r.status_code == 200, r.text
        page = r.json()
        assert len(page["items"]) <= 2
        seen.extend(k["id"] for k in page["items"])
        pages += 1
        cursor = page["nextCursor"]
        if cursor is None:
            break
    assert pages == 3 and len(seen) == 5 and seen[1:] == made  # the first key, then these
    r = await api.client.get("/v1/api-keys", params={"cursor": "nonsense"}, headers=org.headers)
    assert r.status_code == 422 and r.json()["error"]["details"][0]["path"] == "query.cursor"


async def test_expiry_and_last_use(make_api: MakeApi) -> None:
    clock = FakeClock(T0)
    api = await make_api(clock=clock)
    org = await api.org()
    made = await make_key(
        api, f"/v1/organizations/{org.id}/api-keys", expiresAt=to_rfc3339(T0 + 3600)
    )
    key = bearer(made["apiKey"])
    assert (await api.client.get("/v1/endpoints", headers=key)).status_code == 200
    from tidings.services import console_sessions

    deps = api.app.state.tidings.deps
    opened = await console_sessions.sign_in(deps, made["apiKey"])  # an 8 h session
    listed = (await api.client.get("/v1/api-keys", headers=org.headers)).json()["items"]
    used = next(k for k in listed if k["id"] == made["id"])
    assert used["lastUsedAt"] == to_rfc3339(T0) and used["expiresAt"] == to_rfc3339(T0 + 3600)
    assert await console_sessions.resolve_session(deps, opened.token) is not None
    clock.advance(3600)
    r = await api.client.get("/v1/endpoints", headers=key)
    assert r.status_code == 401
    assert await console_sessions.resolve_session(deps, opened.token) is None  # ends with it
    listed = (await api.client.get("/v1/api-keys", headers=org.headers)).json()["items"]
    assert next(k for k in listed if k["id"] == made["id"])["status"] == "expired"


async def test_last_use_is_written_at_most_once_a_minute(make_api: MakeApi) -> None:
    clock = FakeClock(T0)
    api = await make_api(clock=clock)
    org = await api.org()
    [first] = (await api.client.get("/v1/api-keys", headers=org.headers)).json()["items"]
    assert first["lastUsedAt"] == to_rfc3339(T0)
    writes: list[str] = []
    store = api.store
    original = store.touch_api_key

    async def counted(key_id: str, now: float) -> None:
        writes.append(key_id)
        await original(key_id, now)

    store.touch_api_key = counted  # type: ignore[method-assign]
    for _ in range(20):
        clock.advance(1)
        assert (await api.client.get("/v1/endpoints", headers=org.headers)).status_code == 200
    assert writes == []  # within the minute: no write
    clock.advance(60)
    await api.client.get("/v1/endpoints", headers=org.headers)
    assert writes == [first["id"]]


async def test_a_console_session_ends_with_its_key(api: Api) -> None:
    from tidings.services import console_sessions, keys

    org = await api.org()
    spare = await make_key(api, f"/v1/organizations/{org.id}/api-keys")
    deps = api.app.state.tidings.deps
    opened = await console_sessions.sign_in(deps, spare["apiKey"])
    assert await console_sessions.resolve_session(deps, opened.token) is not None
    org_actor = await keys.authenticate(deps, org.key)
    await keys.revoke_key(deps, org_actor, spare["id"])
    assert await console_sessions.resolve_session(deps, opened.token) is None
    reader = await make_key(api, f"/v1/organizations/{org.id}/api-keys", scope="read")
    session = await console_sessions.sign_in(deps, reader["apiKey"])
    assert session.session.read_only  # a read key's session changes nothing
    publisher = await make_key(api, "/v1/api-keys", scope="publish")
    try:
        await console_sessions.sign_in(deps, publisher["apiKey"])
    except Exception as exc:
        assert getattr(exc, "code", None) == "insufficient_scope"
    else:
        raise AssertionError("a publish key signed in to the console")


assert PLATFORM_KEY
