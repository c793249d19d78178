"""Registering an endpoint from the console's form, on both backends: the API's own rules beside
each field (a bare `*`, a pattern that matches nothing, the SSRF guard), nothing stored when
refused, the secret shown once when stored, and the read-only and CSRF rules."""

from __future__ import annotations

import re

from .conftest import MakeWeb, Web, csrf_of


async def endpoints_of(web: Web, key: str) -> list[dict[str, object]]:
    async with web.client() as api:
        r = await api.get("/v1/endpoints", headers={"Authorization": f"Bearer {key}"})
    return list(r.json()["items"])


def error_of(html: str, field: str) -> str:
    match = re.search(rf'<ul class="field-errors" id="{field}-error">(.*?)</ul>', html, re.S)
    assert match is not None, f"no error beside {field}"
    return re.sub(r"<[^>]+>", " ", match.group(1))


async def test_the_form_registers_an_endpoint_and_shows_its_secret_once(web: Web) -> None:
    org = await web.org()
    browser = await web.sign_in(org.key)
    form = await browser.get("/console/endpoints/new")
    assert form.status_code == 200 and "kyc.*" in form.text  # the catalog's wildcards offered
    r = await browser.post(
        "/console/endpoints",
        data={
            "csrf_token": csrf_of(form.text),
            "url": "https://127.0.0.1:9/hooks",
            "eventTypes": "compliance.*\nkyc.vies_check_failed\n",
            "sources": ["WEB_APP", "SYSTEM"],
            "headers": "X-Team: payments",
            "rateLimitPerSecond": "5",
            "description": "orders",
        },
    )
    assert r.status_code == 201, r.text
    [stored] = await endpoints_of(web, org.key)
    assert stored["eventTypes"] == ["compliance.*", "kyc.vies_check_failed"]
    assert stored["format"] == "novatrade" and stored["headers"] == {"X-Team": "payments"}
    assert stored["rateLimitPerSecond"] == 5
    async with web.client() as api:
        secret = await api.get(f"/v1/endpoints/{stored['id']}/secret", headers=org.headers)
    assert secret.json()["secret"] in r.text


async def test_a_bare_star_is_refused_beside_its_field(web: Web) -> None:
    org = await web.org()
    browser = await web.sign_in(org.key)
    csrf = csrf_of((await browser.get("/console/endpoints/new")).text)
    r = await browser.post(
        "/console/endpoints",
        data={
            "csrf_token": csrf,
            "url": "https://127.0.0.1:9/hooks",
            "eventTypes": "compliance.*\n*\nnothing.*",
            "sources": ["SYSTEM"],
        },
    )
    assert r.status_code == 422
    types_error = error_of(r.text, "eventTypes")
    assert "line 2:" in types_error and "line 3:" in types_error
    async with web.client() as api:  # the very message the API gives
        body = {"url": "https://127.0.0.1:9/hooks", "eventTypes": ["*"]}
        answer = await api.post("/v1/endpoints", json=body, headers=org.headers)
    api_message = answer.json()["error"]["details"][0]["message"]
    assert api_message.replace("'", "&#39;") in types_error or api_message in types_error
    assert 'value="https://127.0.0.1:9/hooks"' in r.text  # what was typed stays
    assert "compliance.*\n*\nnothing.*</textarea>" in r.text
    # what the form cannot even read is answered the same way, before the service is asked
    r = await browser.post(
        "/console/endpoints",
        data={
            "csrf_token": csrf,
            "url": "https://127.0.0.1:9/h",
            "eventTypes": "kyc.*",
            "rateLimitPerSecond": "fast",
            "headers": "no colon here",
        },
    )
    assert r.status_code == 422
    assert "must be a number" in error_of(r.text, "rateLimitPerSecond")
    assert "Name: value" in error_of(r.text, "headers")
    assert await endpoints_of(web, org.key) == []


async def test_the_ssrf_guard_holds_in_the_console(make_web: MakeWeb) -> None:
    web = await make_web(allow_private_urls=False)
    org = await web.org()
    browser = await web.sign_in(org.key)
    csrf = csrf_of((await browser.get("/console/endpoints/new")).text)
    for url in ("https://127.0.0.1/hooks", "https://169.254.169.254/latest", "http://x.example"):
        r = await browser.post(
            "/console/endpoints",
            data={"csrf_token": csrf, "url": url, "eventTypes": "compliance.*"},
        )
        assert r.status_code == 422, url
        assert error_of(r.text, "url").strip(), url
    assert await endpoints_of(web, org.key) == []


async def test_read_only_and_csrf_rules_hold_for_the_form(web: Web) -> None:
    org = await web.org()
    data = {"url": "https://127.0.0.1:9/hooks", "eventTypes": "compliance.*"}
    browser = await web.sign_in(org.key)
    r = await browser.post("/console/endpoints", data=data)
    assert r.status_code == 403 and "csrf_failed" in r.text
    minted = await web.portal_link(org, readOnly=True)
    viewer = web.client()
    await viewer.get(minted["url"].removeprefix("http://tidings.test"))
    page = await viewer.get("/console/endpoints")
    assert "/console/endpoints/new" not in page.text
    r = await viewer.post("/console/endpoints", data={**data, "csrf_token": csrf_of(page.text)})
    assert r.status_code == 403 and "read_only" in r.text
    assert await endpoints_of(web, org.key) == []


async def test_the_form_takes_a_filter_and_says_what_is_wrong_with_it(web: Web) -> None:
    """Issue 26 item 8 in the console: the filter as JSON, its problems beside the field with
    where in the filter they are, the endpoint page showing it, the edit form prefilled."""
    org = await web.org()
    browser = await web.sign_in(org.key)
    csrf = csrf_of((await browser.get("/console/endpoints/new")).text)
    base = {"csrf_token": csrf, "url": "https://127.0.0.1:9/hooks", "eventTypes": "onboarding.*",
            "sources": ["WEB_APP", "SYSTEM"]}  # fmt: skip
    for given, words in [
        ("{nope", "not JSON"),
        ("[1]", "must be a JSON object"),
        ('{"all": [{"path": "data.x", "like": 1}]}', "all[0].like: unknown key"),
        ('{"path": "attributes.nowhere", "eq": "x"}', "no subscribed event type has"),
    ]:
        r = await browser.post("/console/endpoints", data={**base, "filter": given})
        assert r.status_code == 422, r.text
        assert words in error_of(r.text, "filter"), error_of(r.text, "filter")
    assert await endpoints_of(web, org.key) == []
    spec = '{"all": [{"path": "attributes.owner_type", "eq": "company"}]}'
    r = await browser.post(
        "/console/endpoints", data={**base, "filter": spec, "recordFiltered": "on"}
    )
    assert r.status_code == 201, r.text
    [stored] = await endpoints_of(web, org.key)
    assert stored["filter"] == {"all": [{"path": "attributes.owner_type", "eq": "company"}]}
    assert stored["recordFiltered"] is True
    page = await browser.get(f"/console/endpoints/{stored['id']}")
    assert "attributes.owner_type" in page.text and "recorded as skipped" in page.text
    edit = await browser.get(f"/console/endpoints/{stored['id']}/edit")
    assert "attributes.owner_type" in edit.text and 'name="recordFiltered"' in edit.text


async def test_the_form_takes_an_order_and_the_edit_form_keeps_it(web: Web) -> None:
    """Issue 25 in the console: the order chosen in the form, a value the API refuses named
    beside the field, the endpoint page and the edit form showing it."""
    org = await web.org()
    browser = await web.sign_in(org.key)
    csrf = csrf_of((await browser.get("/console/endpoints/new")).text)
    base = {"csrf_token": csrf, "url": "https://127.0.0.1:9/hooks", "eventTypes": "compliance.*",
            "sources": ["WEB_APP", "SYSTEM"]}  # fmt: skip
    r = await browser.post("/console/endpoints", data={**base, "ordering": "fifo"})
    assert r.status_code == 422, r.text
    assert "must be one of none, subject" in error_of(r.text, "ordering")
    assert await endpoints_of(web, org.key) == []
    r = await browser.post("/console/endpoints", data={**base, "ordering": "subject"})
    assert r.status_code == 201, r.text
    [stored] = await endpoints_of(web, org.key)
    assert stored["ordering"] == "subject"
    page = await browser.get(f"/console/endpoints/{stored['id']}")
    assert "one at a time, in sequence order" in page.text
    edit = await browser.get(f"/console/endpoints/{stored['id']}/edit")
    assert '<option value="subject" selected' in edit.text
