"""The `tidings` CLI through its entry point against a running `tidings serve` (both backends):
operators create organizations, partners and keys; integrators manage endpoints, publish, read
the feed and the delivery history, and replay; `tidings listen` receives and verifies the real
engine's deliveries. API errors are one line on stderr with a nonzero exit code."""

from __future__ import annotations

import json
import signal
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from tests.integration.cli.conftest import (
    Background,
    Server,
    clean_env,
    free_port,
    run_cli,
    wait_until,
)


def _ok(result: Any) -> Any:
    assert result.code == 0, f"exit {result.code}\nstdout: {result.out}\nstderr: {result.err}"
    return result


def _status_changed(order: str, previous: str | None, status: str) -> dict[str, Any]:
    return {"orderId": order, "previousStatus": previous, "status": status}


def _setup_org(server: Server) -> tuple[str, str]:
    org = _ok(server.cli("orgs", "create", "Acme Exports", "--json")).json()
    assert set(org) >= {"organizationUuid", "name", "apiKey"}
    return org["organizationUuid"], org["apiKey"]


def test_operator_commands(server: Server) -> None:
    human = _ok(server.cli("orgs", "create", "Acme Exports"))
    assert "organization created" in human.out and "apiKey" in human.out
    org_id, _ = _setup_org(server)
    listed_orgs = _ok(server.cli("orgs", "list", "--json")).json()["items"]
    assert [o["name"] for o in listed_orgs] == ["Acme Exports", "Acme Exports"]
    assert listed_orgs[1]["organizationUuid"] == org_id
    assert org_id in _ok(server.cli("orgs", "list")).out
    partner = _ok(server.cli("partners", "add", org_id, "Dealer Nord", "--json")).json()
    assert partner["name"] == "Dealer Nord" and partner["partnerUuid"]
    listed = _ok(server.cli("partners", "list", org_id))
    assert partner["partnerUuid"] in listed.out
    key = _ok(server.cli("keys", "create", org_id, "--json")).json()
    assert key["apiKey"].startswith("tdk_")
    # the new key works for the organization
    assert _ok(server.cli("endpoints", "list", "--json", key=key["apiKey"])).json() == {"items": []}


def test_endpoints_publish_listen_deliveries_replay(
    server: Server, background: Callable[..., Background]
) -> None:
    org_id, org_key = _setup_org(server)
    port = free_port()
    created = _ok(
        server.cli(
            "endpoints",
            "create",
            f"http://127.0.0.1:{port}/hooks",
            "--types",
            "compliance.*",
            "--format",
            "novatrade",
            "-d",
            "dashboard",
            "--json",
            key=org_key,
        )
    ).json()
    endpoint_id, secret = created["id"], created["secret"]
    assert created["status"] == "active" and secret.startswith("ntsec_")

    listener = background(
        "listen", "--port", str(port), "--secret", secret, "--json", env=clean_env()
    )
    wait_until(lambda: _answers(f"http://127.0.0.1:{port}/"), 20, "tidings listen")

    table = _ok(server.cli("endpoints", "list", key=org_key)).out
    assert endpoint_id in table and "novatrade" in table and "dashboard" in table
    got = _ok(server.cli("endpoints", "get", endpoint_id, "--json", key=org_key)).json()
    assert got["eventTypes"] == ["compliance.*"]
    updated = _ok(
        server.cli("endpoints", "update", endpoint_id, "-d", "renamed", "--json", key=org_key)
    ).json()
    assert updated["description"] == "renamed"
    assert "paused" in _ok(server.cli("endpoints", "pause", endpoint_id, key=org_key)).out
    assert "active" in _ok(server.cli("endpoints", "resume", endpoint_id, key=org_key)).out
    shown = _ok(server.cli("endpoints", "secret", endpoint_id, "--json", key=org_key)).json()
    assert shown["secret"] == secret

    data = json.dumps(_status_changed("ord_1", None, "INCOMPLETE"))
    publish = (
        "events", "publish", "--type", "compliance.status_changed", "--data", data,
        "--org", org_id, "--id", "evt_cli_1",
    )  # fmt: skip
    first = _ok(server.cli(*publish))
    assert "published: evt_cli_1" in first.out
    again = _ok(server.cli(*publish))
    assert "already published" in again.out

    # tidings listen received the real engine's delivery and verified it
    wait_until(lambda: listener.json_lines(), 30, "a delivery at tidings listen")
    seen = listener.json_lines()[0]
    assert seen["verified"] is True, seen
    assert seen["status"] == 200 and seen["format"] == "novatrade"
    assert seen["type"] == "compliance.status_changed" and seen["eventId"] == "evt_cli_1"

    def succeeded() -> Any:
        items = server.cli("deliveries", "list", "--json", key=org_key).json()["items"]
        return items if items and items[0]["status"] == "succeeded" else None

    deliveries = wait_until(succeeded, 30, "a succeeded delivery")
    delivery_id = deliveries[0]["id"]
    detail = _ok(server.cli("deliveries", "get", delivery_id, key=org_key)).out
    assert "succeeded" in detail and "200" in detail

    feed = _ok(server.cli("events", "list", "--json", key=org_key)).json()
    assert [e["id"] for e in feed["items"]] == ["evt_cli_1"]
    one = _ok(server.cli("events", "get", "evt_cli_1", "--json", key=org_key)).json()
    assert one["deliveries"][0]["id"] == delivery_id

    # replay one: the listener gets the same event again and says it is a duplicate
    _ok(server.cli("replay", delivery_id, "--json", key=org_key))
    wait_until(lambda: len(listener.json_lines()) >= 2, 30, "the replayed delivery")
    assert listener.json_lines()[1]["duplicate"] is True
    assert listener.json_lines()[1]["eventId"] == "evt_cli_1"

    bulk = _ok(
        server.cli(
            "replay",
            "--endpoint",
            endpoint_id,
            "--since",
            "2000-01-01T00:00:00Z",
            "--status",
            "succeeded",
            "--status",
            "pending",
            "--json",
            key=org_key,
        )
    ).json()
    assert bulk["replayed"] >= 1

    rotated = _ok(
        server.cli("endpoints", "rotate", endpoint_id, "--grace", "60", "--json", key=org_key)
    ).json()
    assert rotated["secret"] != secret
    assert secret in [s["secret"] for s in rotated["secrets"]]
    assert "deleted" in _ok(server.cli("endpoints", "delete", endpoint_id, key=org_key)).out
    assert listener.interrupt() == 0


def test_batch_publish_from_jsonl(server: Server, tmp_path: Path) -> None:
    org_id, org_key = _setup_org(server)
    lines = [
        {
            "type": "compliance.status_changed",
            "schemaVersion": 1,
            "source": "WEB_APP",
            "organizationUuid": org_id,
            "id": f"evt_batch_{n}",
            "data": _status_changed(f"ord_{n}", None, "INCOMPLETE"),
        }
        for n in range(5)
    ]
    bad = dict(lines[0], id="evt_batch_bad", data={"previousStatus": None, "status": "VALID"})
    path = tmp_path / "events.jsonl"
    path.write_text("\n".join(json.dumps(x) for x in [*lines, bad]) + "\n")
    result = server.cli("events", "publish", "--batch", str(path), "--batch-size", "2")
    assert result.code == 1, result
    assert "published 6 events" in result.out
    assert "5 created" in result.out and "1 refused" in result.out
    assert "line 6:" in result.out and "orderId" in result.out
    # the same file again: idempotent repeats, and --json for scripts
    again = server.cli("events", "publish", "--batch", str(path), "--json").json()
    assert again["counts"] == {"existing": 5, "error": 1}, again
    assert [e["line"] for e in again["errors"]] == [6]
    # one envelope from a file (--file) and from stdin (-)
    single = tmp_path / "event.json"
    single.write_text(json.dumps(dict(lines[0], id="evt_file")))
    assert "published: evt_file" in _ok(server.cli("events", "publish", "--file", str(single))).out
    piped = json.dumps(dict(lines[0], id="evt_stdin"))
    assert "published: evt_stdin" in _ok(server.cli("events", "publish", "-", stdin=piped)).out
    feed = _ok(server.cli("events", "list", "--limit", "500", "--json", key=org_key)).json()
    expected = [str(x["id"]) for x in lines] + ["evt_file", "evt_stdin"]
    assert sorted(str(e["id"]) for e in feed["items"]) == sorted(expected)


def test_api_errors_are_one_line(server: Server) -> None:
    org_id, org_key = _setup_org(server)
    invalid = server.cli(
        "events", "publish", "--type", "compliance.status_changed", "--org", org_id,
        "--data", json.dumps({"previousStatus": None, "status": "VALID"}),
    )  # fmt: skip
    assert invalid.code == 1
    assert invalid.out == ""
    line = invalid.err.strip()
    assert "\n" not in line
    assert line.startswith("error 422 validation_failed: ")
    assert "orderId" in line

    missing = server.cli("endpoints", "get", "ep_nope", key=org_key)
    assert missing.code == 1
    assert missing.err.strip().startswith("error 404 not_found:")

    no_key = server.cli("endpoints", "list", key="")
    assert no_key.code == 1
    assert no_key.err.strip().startswith("error 401 ")

    bad_json = server.cli("events", "publish", "--type", "x", "--data", "{nope")
    assert bad_json.code == 2
    assert bad_json.err.strip().startswith("error: --data is not valid JSON")


def test_connection_refused_is_one_line() -> None:
    url = f"http://127.0.0.1:{free_port()}"
    result = run_cli("endpoints", "list", env=clean_env(TIDINGS_URL=url, TIDINGS_KEY="k"))
    assert result.code == 3
    assert result.err.strip() == (
        f"error: cannot connect to {url} (connection refused); is `tidings serve` running?"
    )


def _answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=1.0).status_code == 200
    except httpx.HTTPError:
        return False


def test_events_list_follow_prints_new_events(
    server: Server, background: Callable[..., Background]
) -> None:
    org_id, org_key = _setup_org(server)
    env = clean_env(TIDINGS_URL=server.url, TIDINGS_KEY=org_key)
    # started as a suite run in the background starts it: with SIGINT ignored (issue 23, item 8)
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        follow = background("events", "list", "--follow", "--interval", "0.2", "--json", env=env)
    finally:
        signal.signal(signal.SIGINT, previous)
    for n in range(2):
        data = json.dumps(_status_changed(f"ord_f{n}", None, "INCOMPLETE"))
        _ok(
            server.cli(
                "events",
                "publish",
                "--type",
                "compliance.status_changed",
                "--org",
                org_id,
                "--data",
                data,
                "--id",
                f"evt_follow_{n}",
                "--source",
                "API",
            )
        )
    wait_until(lambda: len(follow.json_lines()) >= 2, 30, "two followed events")
    assert [e["id"] for e in follow.json_lines()] == ["evt_follow_0", "evt_follow_1"]
    assert follow.interrupt() == 0


def test_listen_with_a_key_fetches_the_secrets_of_the_endpoints_pointing_at_it(
    server: Server, background: Callable[..., Background]
) -> None:
    """Issue 23, item 2: the listener verifies from its first delivery, also for an endpoint
    created after it started and after a rotation (it fetches the secrets again)."""
    org_id, org_key = _setup_org(server)
    port = free_port()
    hooks = f"http://127.0.0.1:{port}/hooks"

    def create(endpoint_url: str, types: str) -> str:
        made = server.cli(
            "endpoints", "create", endpoint_url, "--types", types, "--field", "id", key=org_key
        )
        return str(_ok(made).out.strip())

    first = create(hooks, "compliance.*")
    create("http://127.0.0.1:9/x", "kyc.*")  # elsewhere: not the listener's business
    env = clean_env(TIDINGS_URL=server.url)
    listener = background("listen", "--port", str(port), "--key", org_key, "--json", env=env)
    wait_until(lambda: _answers(f"http://127.0.0.1:{port}/"), 20, "tidings listen")
    assert "secrets of 1 endpoint(s) pointing here" in "".join(listener.errors)

    def publish(n: int) -> None:
        data = json.dumps(_status_changed(f"ord_k{n}", None, "INCOMPLETE"))
        _ok(
            server.cli(
                "events", "publish", "--type", "compliance.status_changed", "--org", org_id,
                "--data", data, "--id", f"evt_key_{n}",
            )
        )  # fmt: skip

    publish(0)
    wait_until(lambda: len(listener.json_lines()) >= 1, 30, "the first delivery")
    # a second endpoint on the same listener, made after it started
    create(hooks.replace("/hooks", "/more"), "compliance.*")
    publish(1)
    wait_until(lambda: len(listener.json_lines()) >= 3, 30, "two more deliveries")
    # a rotation without grace: only the new secret signs
    _ok(server.cli("endpoints", "rotate", first, "--grace", "0", key=org_key))
    publish(2)
    wait_until(lambda: len(listener.json_lines()) >= 5, 30, "two deliveries after the rotation")
    seen = listener.json_lines()
    assert [(s["verified"], s["status"]) for s in seen] == [(True, 200)] * 5, seen
    assert listener.interrupt() == 0


def test_listen_refuses_a_key_that_cannot_read_endpoints(server: Server) -> None:
    result = run_cli(
        "listen", "--port", str(free_port()), "--key", server.key,
        env=clean_env(TIDINGS_URL=server.url),
    )  # fmt: skip
    assert result.code == 2
    assert result.err.strip().startswith(
        "error: --key cannot read the endpoints' secrets: error 403 organization_key_required"
    )


def test_keys_create_list_revoke_and_a_platform_key_made_in_the_database(
    server: Server, database_url: str
) -> None:
    """Issue 22: `tidings keys` (scopes, names, the listing without the keys themselves,
    revocation refused at once), and the way back in: `keys create --platform` writes a
    platform key straight into the database the running service uses."""
    org_id, org_key = _setup_org(server)
    reader = _ok(
        server.cli("keys", "create", org_id, "--scope", "read", "--name", "bi", "--json")
    ).json()
    assert reader["scope"] == "read" and reader["name"] == "bi"
    listed = _ok(server.cli("keys", "list", "--json", key=org_key)).json()["items"]
    assert [k["scope"] for k in listed] == ["write", "read"]
    assert reader["apiKey"] not in json.dumps(listed)
    table = _ok(server.cli("keys", "list", key=org_key)).out
    assert reader["prefix"] in table and "bi" in table
    assert _ok(server.cli("endpoints", "list", "--json", key=reader["apiKey"])).json()
    revoked = _ok(server.cli("keys", "revoke", reader["id"], "--json", key=org_key)).json()
    assert revoked["status"] == "revoked"
    refused = server.cli("endpoints", "list", key=reader["apiKey"])
    assert refused.code != 0 and "401" in refused.err
    made = run_cli(
        "keys",
        "create",
        "--platform",
        "--name",
        "recovery",
        "--json",
        env=clean_env(TIDINGS_DATABASE_URL=database_url),
    )
    assert made.code == 0, made.err
    recovery = json.loads(made.out)
    assert recovery["scope"] == "admin" and recovery["apiKey"].startswith("tdk_platform_")
    assert _ok(server.cli("orgs", "list", "--json", key=recovery["apiKey"])).json()["items"]
    usage = run_cli("keys", "create")
    assert usage.code == 2 and "--platform" in usage.err

    # the trail of all this, exported for an auditor (issue 22 section 3)
    exported = _ok(server.cli("audit", "export", "--since", "1h", "--format", "jsonl"))
    lines = [json.loads(line) for line in exported.out.splitlines()]
    assert "audit entries exported" in exported.err
    by_action = {(e["action"], e["targetId"]): e for e in lines}
    assert ("key.create", reader["id"]) in by_action
    assert by_action[("key.revoke", reader["id"])]["organizationUuid"] == org_id
    local = by_action[("key.create", recovery["id"])]  # made on the server's machine
    assert local["actor"] == {"keyId": "local", "sessionId": None, "clientAddress": "local"}
    assert reader["apiKey"] not in exported.out and recovery["apiKey"] not in exported.out
    own = _ok(server.cli("audit", "export", "--action", "key.revoke", key=org_key)).out
    assert [json.loads(line)["targetId"] for line in own.splitlines()] == [reader["id"]]
    bad = server.cli("audit", "export", "--format", "csv")
    assert bad.code == 2 and "--format must be one of jsonl" in bad.err


def test_events_erase_one_event_or_a_subject_and_the_event_shows_it(server: Server) -> None:
    """Issue 22 section 4: `tidings events erase` (platform key), and `events get` / `list`
    showing the erasure to the organization."""
    org_id, org_key = _setup_org(server)
    for n, order in enumerate(["ord_e1", "ord_e2", "ord_e3"]):
        data = json.dumps(_status_changed(order, None, "VALID"))
        _ok(
            server.cli(
                "events", "publish", "--type", "compliance.status_changed", "--org", org_id,
                "--data", data, "--id", f"evt_e{n}", "--subject", order,
            )
        )  # fmt: skip
    shown = _ok(server.cli("events", "erase", "evt_e0", "--org", org_id)).out
    assert "events" in shown and "1" in shown
    got = _ok(server.cli("events", "get", "evt_e0", key=org_key)).out
    assert "data: (erased)" in got and "erasedAt" in got and "VALID" not in got
    as_json = _ok(server.cli("events", "get", "evt_e1", "--json", key=org_key)).json()
    assert as_json["erasedAt"] is None and as_json["data"]["orderId"] == "ord_e2"
    by_subject = _ok(server.cli("events", "erase", "--subject", "ord_e2", "--json")).json()
    assert by_subject["erased"]["events"] == 1 and by_subject["organizations"] == [org_id]
    listed = _ok(server.cli("events", "list", "--json", key=org_key)).json()["items"]
    assert [e["erasedAt"] is not None for e in listed] == [True, True, False]
    table = _ok(server.cli("events", "list", key=org_key)).out
    assert "erased" in table
    usage = server.cli("events", "erase", "evt_e2")
    assert usage.code == 2 and "needs --org" in usage.err
    refused = server.cli("events", "erase", "evt_e2", "--org", org_id, key=org_key)
    assert refused.code == 1 and "platform_key_required" in refused.err


def test_an_ordered_endpoint_and_its_ledger(server: Server) -> None:
    org_id, org_key = _setup_org(server)
    create = (
        "endpoints", "create", "https://hooks.example.com/in", "--types", "compliance.*",
    )  # fmt: skip
    bad = server.cli(*create, "--ordering", "fifo", key=org_key)
    assert bad.code != 0 and "ordering" in bad.err
    created = _ok(server.cli(*create, "--ordering", "subject", "--json", key=org_key)).json()
    assert created["ordering"] == "subject"
    endpoint_id = created["id"]
    shown = _ok(server.cli("endpoints", "get", endpoint_id, key=org_key)).out
    assert "ordering" in shown and "subject" in shown
    # paused, so the first is held and never sent: with the server's short retry schedule an
    # unresolvable host failed it for good within two seconds, and a slow machine's CLI calls
    # then saw the second pending
    _ok(server.cli("endpoints", "pause", endpoint_id, key=org_key))
    for n in (1, 2):
        data = json.dumps(_status_changed("ord_9", None, "VALID"))
        _ok(
            server.cli(
                "events",
                "publish",
                "--type",
                "compliance.status_changed",
                "--data",
                data,
                "--org",
                org_id,
                "--id",
                f"evt_ord_{n}",
                "--subject",
                "ord_9",
            )
        )
    ledger = _ok(server.cli("endpoints", "ledger", endpoint_id, "--json", key=org_key)).json()
    assert [(e["sequence"], e["eventId"], e["subject"]) for e in ledger["items"]] == [
        (1, "evt_ord_1", "ord_9"),
        (2, "evt_ord_2", "ord_9"),
    ]
    assert [e["status"] for e in ledger["items"]] == ["held", "queued"]  # the second behind
    table = _ok(server.cli("endpoints", "ledger", endpoint_id, "--after", "1", key=org_key)).out
    assert "evt_ord_2" in table and "evt_ord_1" not in table
    updated = _ok(
        server.cli("endpoints", "update", endpoint_id, "--ordering", "none", "--json", key=org_key)
    ).json()
    assert updated["ordering"] == "none"
