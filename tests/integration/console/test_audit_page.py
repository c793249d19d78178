"""The audit trail in the console, on both backends: an integrator sees its organization's
entries (what the console itself did, with its session, and what the API did), the operator
every organization's; filters by action, target and time, the last one checked beside its
field; keyset pages; a cursor the console did not make is a 400 page; no secret shown."""

from __future__ import annotations

import html
import re

from .conftest import Web, csrf_of


def actions_in(page: str) -> list[str]:
    return re.findall(r"<td><code>([a-z_]+\.[a-z_]+)</code></td>", page)


async def test_an_organization_and_the_operator_read_the_audit_trail(web: Web) -> None:
    acme, globex = await web.org("acme"), await web.org("globex")
    browser = await web.sign_in(acme.key)
    form = await browser.get("/console/endpoints/new")
    r = await browser.post(
        "/console/endpoints",
        data={
            "csrf_token": csrf_of(form.text),
            "url": "https://127.0.0.1:9/hooks",
            "eventTypes": "compliance.*",
            "sources": ["WEB_APP", "SYSTEM"],
            "headers": "X-Token: header-secret-99",
        },
    )
    assert r.status_code == 201, r.text
    async with web.client() as api:
        made = await api.post(
            "/v1/endpoints",
            headers={"Authorization": f"Bearer {globex.key}"},
            json={"url": "https://127.0.0.1:9/g", "eventTypes": ["kyc.*"]},
        )
        assert made.status_code == 201, made.text

    page = await browser.get("/console/audit")
    assert page.status_code == 200
    assert actions_in(page.text) == ["organization.create", "endpoint.create"]
    assert "header-secret-99" not in page.text and "(changed)" in html.unescape(page.text)
    assert globex.id not in page.text and made.json()["id"] not in page.text
    assert 'aria-current="page">Audit trail' in page.text
    # the console's own change names its session
    session_ids = re.findall(r"<td><code>(cs_[A-Za-z0-9_]+)</code></td>", page.text)
    assert len(session_ids) == 1

    operator = await web.sign_in()
    everything = await operator.get("/console/audit")
    assert everything.status_code == 200
    assert acme.id in everything.text and globex.id in everything.text
    assert actions_in(everything.text).count("endpoint.create") == 2
    only = await operator.get("/console/audit", params={"action": "endpoint.create",
                                                        "target": made.json()["id"]})  # fmt: skip
    assert actions_in(only.text) == ["endpoint.create"] and globex.id in only.text
    later = await operator.get("/console/audit", params={"since": "2999-01-01T00:00:00Z"})
    assert actions_in(later.text) == [] and "Nothing recorded that matches" in later.text
    bad = await operator.get("/console/audit", params={"since": "yesterday"})
    assert bad.status_code == 422 and 'id="since-error"' in bad.text
    # keyset pages: one entry a page, each once
    seen: list[str] = []
    url = "/console/audit?limit=1"
    while url:
        one = await operator.get(url)
        seen += actions_in(one.text)
        found = re.search(r'<a rel="next" href="([^"]+)"', one.text)
        url = html.unescape(found.group(1)) if found else ""
    assert seen == actions_in(everything.text)
    foreign = await operator.get("/console/audit", params={"cursor": "not-ours"})
    assert foreign.status_code == 400
