"""A revoked key is refused by every API process within 5 s (issue 22): two `tidings serve`
processes on one PostgreSQL database, the key used on both (each caches it), revoked through
one; the other refuses it once its cache entry goes (KEY_CACHE_SECONDS). The time it took is
printed; the test allows the cache's 5 s plus slack for a loaded machine."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from tests.acceptance.conftest import clean_env
from tidings.auth import KEY_CACHE_SECONDS

PLATFORM_KEY = "tdk_platform_revocation_test_0123456789abc"
SLACK_SECONDS = 3.0

pytestmark = [pytest.mark.slow, pytest.mark.postgres, pytest.mark.timeout(120)]


def test_a_revoked_key_is_refused_by_every_process(
    fresh_database_url_factory: Callable[..., str], serve_process: Any
) -> None:
    url = fresh_database_url_factory("postgres")
    env = clean_env(TIDINGS_DATABASE_URL=url, TIDINGS_PLATFORM_KEY=PLATFORM_KEY)
    one, two = serve_process(env=env), serve_process(env=env)
    platform = {"Authorization": f"Bearer {PLATFORM_KEY}"}
    org = httpx.post(f"{one.url}/v1/organizations", json={"name": "acme"}, headers=platform)
    org_id = org.json()["organizationUuid"]
    made = httpx.post(f"{one.url}/v1/organizations/{org_id}/api-keys", json={}, headers=platform)
    key = made.json()
    headers = {"Authorization": f"Bearer {key['apiKey']}"}
    for served in (one, two):  # both processes know (and cache) the key
        assert httpx.get(f"{served.url}/v1/endpoints", headers=headers).status_code == 200
    revoked_at = time.monotonic()
    r = httpx.delete(f"{one.url}/v1/api-keys/{key['id']}", headers=platform)
    assert r.status_code == 200, r.text
    assert httpx.get(f"{one.url}/v1/endpoints", headers=headers).status_code == 401  # at once
    deadline = revoked_at + KEY_CACHE_SECONDS + SLACK_SECONDS
    refused_after = None
    while time.monotonic() < deadline:
        if httpx.get(f"{two.url}/v1/endpoints", headers=headers).status_code == 401:
            refused_after = time.monotonic() - revoked_at
            break
        time.sleep(0.1)
    assert refused_after is not None, "the other process still took the revoked key"
    print(f"\nthe other process refused the revoked key after {refused_after:.1f} s")
    assert refused_after <= KEY_CACHE_SECONDS + SLACK_SECONDS
