"""Endpoint secrets encrypted at rest (issue 22 section 2), on both backends: a dump of the
database (sqlite3's iterdump, pg_dump) holds no secret, current or in a rotation's grace; the
endpoint id is bound (a ciphertext copied to another row does not open); a database from
before encryption is re-wrapped in place and every endpoint keeps its secret; a key rotation
re-wraps under the new key while the old one still opens what is not re-wrapped yet; a wrong
key stops the process at start-up (assembly.seal_secrets), not at the first delivery."""

from __future__ import annotations

import sqlite3
import subprocess
from dataclasses import replace

import pytest

from tidings.assembly import ServiceError, seal_secrets
from tidings.config import Settings
from tidings.models import EndpointSecret
from tidings.secret_box import SecretBox, SecretKeyError, new_key
from tidings.store.base import Store

from .helpers import T0, endpoint, make_org

ORGS: list[str] = []  # the organization of the endpoints a test made last


def dump(database_url: str) -> str:
    if database_url.startswith("sqlite"):
        path = database_url.removeprefix("sqlite:///")
        with sqlite3.connect(path) as conn:
            return "\n".join(conn.iterdump())
    done = subprocess.run(
        ["pg_dump", "--no-owner", database_url], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


async def make_endpoints(store: Store, n: int = 3) -> list[str]:
    org = await make_org(store)
    ORGS.append(org)
    ids = []
    for i in range(n):
        ep = endpoint(org, secrets=(EndpointSecret(f"ntsec_secret_number_{i}_{new_key()}", T0),))
        await store.create_endpoint(ep)
        ids.append(ep.id)
    return ids


async def secrets_of(store: Store, ids: list[str]) -> list[str]:
    found: list[str] = []
    for endpoint_id in ids:
        ep = await store.get_endpoint(ORGS[-1], endpoint_id)
        assert ep is not None
        found.extend(s.secret for s in ep.secrets)
    return found


async def test_a_dump_holds_no_secret(store: Store, database_url: str) -> None:
    store.use_secret_box(SecretBox.from_texts(new_key()))
    ids = await make_endpoints(store)
    ep = await store.get_endpoint(ORGS[-1], ids[0])
    assert ep is not None
    rotated = (
        EndpointSecret("ntsec_rotated_in_" + new_key(), T0 + 1),
        replace(ep.secrets[0], expires_at=T0 + 86_400),  # the old one, in its grace period
    )
    await store.set_endpoint_secrets(ep.organization_id, ep.id, rotated, T0 + 1)
    plain = await secrets_of(store, ids)
    assert len(plain) == 4 and all(s.startswith("ntsec_") for s in plain)
    text = dump(database_url)
    assert "tdenc1:" in text
    for secret in plain:
        assert secret not in text


async def test_the_endpoint_id_is_bound(store: Store, database_url: str) -> None:
    store.use_secret_box(SecretBox.from_texts(new_key()))
    a, b = await make_endpoints(store, 2)
    # what copying one row's stored value into another row does
    rows = await store._db.fetch("endpoint_secrets_page", after_seq=None, limit=2)
    await store._db.execute(
        "rewrap_endpoint_secrets", id=b, old=rows[1]["secrets"], secrets=rows[0]["secrets"]
    )
    with pytest.raises(SecretKeyError, match=b):
        await store.get_endpoint(ORGS[-1], b)
    assert await store.get_endpoint(ORGS[-1], a) is not None


async def test_a_database_from_before_encryption_is_rewrapped(
    store: Store, database_url: str
) -> None:
    ids = await make_endpoints(store)  # no box: stored as they are, as before encryption
    before = await secrets_of(store, ids)
    assert before[0] in dump(database_url)
    store.use_secret_box(SecretBox.from_texts(new_key()))
    assert await store.rewrap_secrets() == 3
    assert await store.rewrap_secrets() == 0  # idempotent
    assert await secrets_of(store, ids) == before  # every endpoint keeps its secret
    text = dump(database_url)
    assert not any(s in text for s in before)


async def test_a_rotation_rewraps_under_the_new_key(store: Store, database_url: str) -> None:
    old, new = new_key(), new_key()
    store.use_secret_box(SecretBox.from_texts(old))
    ids = await make_endpoints(store)
    before = await secrets_of(store, ids)
    store.use_secret_box(SecretBox.from_texts(new, [old]))  # both configured meanwhile
    assert await secrets_of(store, ids) == before  # the old key still opens them
    assert await store.rewrap_secrets() == 3
    store.use_secret_box(SecretBox.from_texts(new))  # the old key retired
    assert await secrets_of(store, ids) == before
    store.use_secret_box(SecretBox.from_texts(old))
    with pytest.raises(SecretKeyError):
        await secrets_of(store, ids)


async def test_a_wrong_key_stops_the_process_at_start_up(store: Store, database_url: str) -> None:
    right, wrong = new_key(), new_key()
    await seal_secrets(store, Settings(database_url=database_url, encryption_key=right))
    await make_endpoints(store, 1)
    with pytest.raises(ServiceError, match="cannot read the endpoint secrets"):
        await seal_secrets(store, Settings(database_url=database_url, encryption_key=wrong))
    with pytest.raises(ServiceError, match="TIDINGS_ENCRYPTION_KEY"):
        await seal_secrets(store, Settings(database_url=database_url, encryption_key="short"))


async def test_postgresql_needs_the_key(store: Store, database_url: str) -> None:
    if not database_url.startswith("postgres"):
        pytest.skip("SQLite generates its key beside the database")
    with pytest.raises(ServiceError, match="TIDINGS_ENCRYPTION_KEY must be set"):
        await seal_secrets(store, Settings(database_url=database_url))


async def test_a_secret_is_decrypted_once_and_then_kept_in_memory(
    store: Store, database_url: str
) -> None:
    """What the worker's claims rely on: reading an endpoint again does not decrypt again. Once
    read, the plain secret is served from memory even after the box lost its keys (which would
    make any new decryption fail)."""
    box = SecretBox.from_texts(new_key())
    store.use_secret_box(box)
    ids = await make_endpoints(store, 2)
    first = await secrets_of(store, ids[:1])
    box._keys.clear()  # from here on a decryption cannot succeed
    for _ in range(3):
        assert await secrets_of(store, ids[:1]) == first
    with pytest.raises(SecretKeyError):  # the endpoint not read yet needs a decryption
        await secrets_of(store, ids[1:])
