"""Inbound limits over HTTP on both backends (issue 22 section 5): a key past its rate gets 429
with Retry-After and the error body, other keys are unaffected, platform keys are not limited
unless asked, and the key may go on once the bucket refilled."""

from __future__ import annotations

from tests.integration.api.conftest import MakeApi
from tidings.clock import FakeClock


async def test_a_key_past_its_rate_gets_429_and_others_go_on(make_api: MakeApi) -> None:
    clock = FakeClock()
    api = await make_api(clock=clock, api_rate_per_second=2.0, api_rate_burst=3.0)
    org, other = await api.org(), await api.org()
    codes = [
        (await api.client.get("/v1/endpoints", headers=org.headers)).status_code for _ in range(3)
    ]
    assert codes == [200, 200, 200]
    limited = await api.client.get("/v1/endpoints", headers=org.headers)
    assert limited.status_code == 429
    assert limited.headers["retry-after"] == "1"
    body = limited.json()["error"]
    assert body["code"] == "rate_limited" and body["details"]["retryAfterSeconds"] == 0.5
    assert (await api.client.get("/v1/endpoints", headers=other.headers)).status_code == 200
    for _ in range(10):  # the platform's own key is not limited by default
        r = await api.client.get("/v1/organizations", headers=api.platform)
        assert r.status_code == 200
    clock.advance(0.5)
    assert (await api.client.get("/v1/endpoints", headers=org.headers)).status_code == 200


async def test_platform_keys_are_limited_when_asked(make_api: MakeApi) -> None:
    api = await make_api(
        clock=FakeClock(), api_rate_per_second=1.0, api_rate_burst=1.0, api_rate_platform_keys=True
    )
    assert (await api.client.get("/v1/organizations", headers=api.platform)).status_code == 200
    assert (await api.client.get("/v1/organizations", headers=api.platform)).status_code == 429


async def test_no_limit_by_default(make_api: MakeApi) -> None:
    api = await make_api()
    org = await api.org()
    for _ in range(50):
        assert (await api.client.get("/v1/endpoints", headers=org.headers)).status_code == 200
