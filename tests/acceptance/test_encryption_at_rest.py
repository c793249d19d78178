"""Endpoint secrets at rest through the real processes (issue 22 section 2), on both backends.

A database made before encryption (its endpoints written with their secrets in plain text, as
the store wrote them before: a store without a SecretBox) is opened by `tidings serve`: the
start re-wraps every secret, a dump holds none of them, and deliveries still verify with the
secrets the receivers always had (a rotation's grace secret included); the API still reveals
them. Then the key-encryption key is rotated while the service runs (`tidings serve` restarted
with the new key and the old one in TIDINGS_ENCRYPTION_KEYS_OLD, `tidings encryption rotate`
beside it), the old key is dropped, and deliveries still verify; a process started with the old
key alone stops at once with one line. No secret and no key is ever in the logs."""

from __future__ import annotations

import asyncio
import sqlite3
import subprocess
import sys
import uuid
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from tests.acceptance.conftest import Served, clean_env, free_port
from tests.integration.delivery.helpers import Receiver, running_receiver
from tidings.auth import hash_key
from tidings.clock import system_clock
from tidings.ids import new_id
from tidings.models import (
    ApiKey,
    Endpoint,
    EndpointSecret,
    EndpointStatus,
    KeyKind,
    Organization,
)
from tidings.receiver import Verifier, WebhookVerificationError
from tidings.secret_box import PREFIX, SecretBox, new_key
from tidings.signing import generate_secret
from tidings.store.connect import open_store

PLATFORM_KEY = "tdk_platform_encryption_test_0123456789abc"
ORG_KEY = "tdk_org_encryption_test_0123456789abcdefgh"

pytestmark = [pytest.mark.slow, pytest.mark.timeout(180)]


def dump(database_url: str) -> str:
    if database_url.startswith("sqlite"):
        with sqlite3.connect(database_url.removeprefix("sqlite:///")) as conn:
            return "\n".join(conn.iterdump())
    done = subprocess.run(
        ["pg_dump", "--no-owner", database_url], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


async def make_database_from_before(
    database_url: str, rx: Receiver
) -> tuple[str, dict[str, tuple[str, list[str]]]]:
    """An organization and two endpoints written with plain secrets, as tidings wrote them
    before encryption: {endpoint id: (format, its secrets)}."""
    store = open_store(database_url)  # no SecretBox: the rows as they were before
    await store.connect()
    try:
        now = system_clock()
        org = str(uuid.uuid4())
        await store.create_organization(
            Organization(org, "before encryption", now),
            ApiKey(new_id("key"), KeyKind.ORGANIZATION, org, now),
            hash_key(ORG_KEY),
        )
        made: dict[str, tuple[str, list[str]]] = {}
        for fmt, secrets in (
            ("novatrade", (EndpointSecret(generate_secret("novatrade"), now),)),
            (  # mid-rotation: the new secret and the old one in its grace period
                "standard",
                (
                    EndpointSecret(generate_secret("standard"), now - 1),
                    EndpointSecret(generate_secret("standard"), now - 100, now + 3600),
                ),
            ),
        ):
            ep = Endpoint(
                id=new_id("ep"),
                organization_id=org,
                url=rx.url(f"/{fmt}"),
                event_types=("compliance.*",),
                format=fmt,
                secrets=secrets,
                status=EndpointStatus.ACTIVE,
                created_at=now,
                updated_at=now,
            )
            await store.create_endpoint(ep)
            made[ep.id] = (fmt, [s.secret for s in secrets])
        return org, made
    finally:
        await store.close()


async def publish_and_verify(
    served: Served, rx: Receiver, org: str, made: dict[str, tuple[str, list[str]]], n: int
) -> None:
    """Publish one event; each endpoint receives it, signed so that each of its secrets alone
    verifies it (and a stranger's does not)."""
    before = len(rx.received)
    r = httpx.post(
        f"{served.url}/v1/events",
        headers={"Authorization": f"Bearer {PLATFORM_KEY}"},
        json={
            "type": "compliance.status_changed",
            "schemaVersion": 1,
            "source": "WEB_APP",
            "organizationUuid": org,
            "data": {"orderId": f"o-{n}", "previousStatus": "INCOMPLETE", "status": "VALID"},
        },
    )
    assert r.status_code == 201, r.text
    order = f'"o-{n}"'.encode()
    await rx.wait_for(lambda: len(rx.received) >= before + len(made), what="the deliveries")
    for fmt, secrets in made.values():
        [request] = [q for q in rx.at(f"/{fmt}") if order in q.body]
        for secret in secrets:
            event = Verifier(fmt, [secret]).verify_and_parse(request.body, request.headers)
            assert event.data["orderId"] == f"o-{n}"
        with pytest.raises(WebhookVerificationError):
            Verifier(fmt, [generate_secret(fmt)]).verify_and_parse(request.body, request.headers)


def revealed(served: Served, endpoint_id: str) -> list[str]:
    r = httpx.get(
        f"{served.url}/v1/endpoints/{endpoint_id}/secret",
        headers={"Authorization": f"Bearer {ORG_KEY}"},
    )
    assert r.status_code == 200, r.text
    return [s["secret"] for s in r.json()["secrets"]]


def key_ids_in(text: str) -> set[str]:
    """The key ids named by the encrypted values in a dump."""
    found = set()
    for part in text.split(PREFIX)[1:]:
        found.add(part.split(":", 1)[0])
    return found


async def test_an_old_database_is_encrypted_at_start_and_its_key_rotated_while_serving(
    database_url: str, serve_process: Callable[..., Served], tmp_path: Path
) -> None:
    first, second = new_key(), new_key()
    first_id, second_id = (
        SecretBox.from_texts(first).current_id,
        SecretBox.from_texts(second).current_id,
    )
    base = {
        "TIDINGS_DATABASE_URL": database_url,
        "TIDINGS_PLATFORM_KEY": PLATFORM_KEY,
        "TIDINGS_ALLOW_PRIVATE_URLS": "true",
    }
    logs: list[Served] = []
    async with running_receiver() as rx:
        org, made = await make_database_from_before(database_url, rx)
        plain = [s for _, secrets in made.values() for s in secrets]
        assert len(plain) == 3 and all(s in dump(database_url) for s in plain)

        # 1. the upgrade: the first start re-wraps every plain secret under the key
        served = serve_process(env=clean_env(**base, TIDINGS_ENCRYPTION_KEY=first))
        logs.append(served)
        text = dump(database_url)
        assert not any(s in text for s in plain)
        assert key_ids_in(text) == {first_id}
        await publish_and_verify(served, rx, org, made, 1)
        for endpoint_id, (_, secrets) in made.items():
            assert revealed(served, endpoint_id) == secrets  # shown as today, decrypted on read

        # 2. the rotation: restart with the new key and the old one beside it ...
        served.stop()
        served = serve_process(
            env=clean_env(**base, TIDINGS_ENCRYPTION_KEY=second, TIDINGS_ENCRYPTION_KEYS_OLD=first)
        )
        logs.append(served)
        # ... `tidings encryption rotate` while it serves (the start re-wrapped them already,
        # so the command finds them done: it is idempotent and can be run any time) ...
        rotate_env = clean_env(
            **base, TIDINGS_ENCRYPTION_KEY=second, TIDINGS_ENCRYPTION_KEYS_OLD=first
        )
        done = await asyncio.to_thread(
            subprocess.run,
            [sys.executable, "-m", "tidings", "encryption", "rotate"],
            env=rotate_env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert done.returncode == 0, done.stderr
        assert "re-wrapped under the current key: 0 endpoints" in done.stdout
        assert key_ids_in(dump(database_url)) == {second_id}
        await publish_and_verify(served, rx, org, made, 2)

        # ... then the old key dropped: everything still opens with the new key alone
        served.stop()
        served = serve_process(env=clean_env(**base, TIDINGS_ENCRYPTION_KEY=second))
        logs.append(served)
        await publish_and_verify(served, rx, org, made, 3)
        served.stop()

        # 3. the old key alone cannot open them: the start stops with one line, at once
        wrong = await asyncio.to_thread(
            subprocess.run,
            [sys.executable, "-m", "tidings", "serve", "--port", str(free_port())],
            cwd=tmp_path,
            env=clean_env(**base, TIDINGS_ENCRYPTION_KEY=first),
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert wrong.returncode == 1, wrong
        lines = wrong.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: cannot read the endpoint secrets")
        assert "Traceback" not in wrong.stdout + wrong.stderr

    for text in [s.logs() for s in logs] + [done.stdout + done.stderr, wrong.stderr]:
        assert not any(s in text for s in plain), "a secret was logged"
        assert first not in text and second not in text, "a key was logged"


async def test_rotate_rewraps_what_a_process_with_the_old_key_wrote_meanwhile(
    database_url: str, serve_process: Callable[..., Served]
) -> None:
    """The rolling part of a rotation: one process still runs with the old key (not restarted
    yet) and writes a secret under it; `tidings encryption rotate` re-wraps it under the new
    key, and the process restarted with the new key alone serves it."""
    old, new = new_key(), new_key()
    old_id, new_id_ = SecretBox.from_texts(old).current_id, SecretBox.from_texts(new).current_id
    base = {
        "TIDINGS_DATABASE_URL": database_url,
        "TIDINGS_PLATFORM_KEY": PLATFORM_KEY,
        "TIDINGS_ALLOW_PRIVATE_URLS": "true",
    }
    async with running_receiver() as rx:
        org, made = await make_database_from_before(database_url, rx)
        served = serve_process(env=clean_env(**base, TIDINGS_ENCRYPTION_KEY=old))
        # the endpoint's secret rotated through the API by the process with the old key
        endpoint_id = next(iter(made))
        r = httpx.post(
            f"{served.url}/v1/endpoints/{endpoint_id}/secret/rotate",
            headers={"Authorization": f"Bearer {ORG_KEY}"},
            json={},
        )
        assert r.status_code == 200, r.text
        fmt, _ = made[endpoint_id]
        made[endpoint_id] = (fmt, revealed(served, endpoint_id))
        assert len(made[endpoint_id][1]) == 2  # the new one and the old one in its grace
        assert key_ids_in(dump(database_url)) == {old_id}
        plain = [s for _, secrets in made.values() for s in secrets]

        done = await asyncio.to_thread(
            subprocess.run,
            [sys.executable, "-m", "tidings", "encryption", "rotate"],
            env=clean_env(**base, TIDINGS_ENCRYPTION_KEY=new, TIDINGS_ENCRYPTION_KEYS_OLD=old),
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert done.returncode == 0, done.stderr
        assert "re-wrapped under the current key: 2 endpoints" in done.stdout
        text = dump(database_url)
        assert key_ids_in(text) == {new_id_}
        assert not any(s in text for s in plain)
        served.stop()

        served = serve_process(env=clean_env(**base, TIDINGS_ENCRYPTION_KEY=new))
        await publish_and_verify(served, rx, org, made, 1)
        served.stop()


def test_postgresql_without_a_key_stops_with_one_line(
    fresh_database_url_factory: Callable[..., str], tmp_path: Path
) -> None:
    url = fresh_database_url_factory("postgres")
    result = subprocess.run(
        [sys.executable, "-m", "tidings", "serve", "--port", str(free_port())],
        cwd=tmp_path,
        env=clean_env(
            TIDINGS_DATABASE_URL=url, TIDINGS_PLATFORM_KEY=PLATFORM_KEY, TIDINGS_ENCRYPTION_KEY=""
        ),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1, result
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "TIDINGS_ENCRYPTION_KEY must be set" in lines[0], result.stderr


def test_sqlite_makes_its_key_beside_the_database(
    serve_process: Callable[..., Served], tmp_path: Path
) -> None:
    """Unset on SQLite: one key generated into tidings-data/encryption-key, mode 0600, and the
    next start uses the same one (the secrets written before still open)."""
    env = clean_env(TIDINGS_ENCRYPTION_KEY="", TIDINGS_ALLOW_PRIVATE_URLS="true")
    served = serve_process(env=env)
    key_file = tmp_path / "tidings-data" / "encryption-key"
    assert key_file.stat().st_mode & 0o777 == 0o600
    key = key_file.read_text().strip()
    assert SecretBox.from_texts(key).current is not None
    platform_key = (tmp_path / "tidings-data" / "platform-key").read_text().strip()
    headers = {"Authorization": f"Bearer {platform_key}"}
    org = httpx.post(f"{served.url}/v1/organizations", json={"name": "acme"}, headers=headers)
    assert org.status_code == 201, org.text
    made = httpx.post(
        f"{served.url}/v1/organizations/{org.json()['organizationUuid']}/api-keys",
        json={},
        headers=headers,
    ).json()
    org_headers = {"Authorization": f"Bearer {made['apiKey']}"}
    ep = httpx.post(
        f"{served.url}/v1/endpoints",
        json={"url": "http://127.0.0.1:9/hook", "eventTypes": ["compliance.*"]},
        headers=org_headers,
    )
    assert ep.status_code == 201, ep.text
    secret = ep.json()["secret"]
    db = tmp_path / "tidings-data" / "tidings.db"
    assert secret not in dump(f"sqlite:///{db}")
    served.stop()
    served = serve_process(env=env)  # the same key file: the secret still opens
    assert key_file.read_text().strip() == key
    got = httpx.get(f"{served.url}/v1/endpoints/{ep.json()['id']}/secret", headers=org_headers)
    assert got.status_code == 200 and got.json()["secret"] == secret, got.text
    served.stop()
