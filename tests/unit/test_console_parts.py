"""The console's pure parts: the SVG chart, the readable schema, form errors by field, the
Content-Security-Policy, pagination links and the session's CSRF token."""

from __future__ import annotations

import re

import pytest

from tidings.catalog import Catalog
from tidings.config import Settings, SettingsError
from tidings.console.charts import bar_chart
from tidings.console.forms import (
    field_errors,
    header_lines,
    lines,
    optional_integers,
    optional_number,
)
from tidings.console.schema_view import schema_tables
from tidings.console.security import content_security_policy
from tidings.console.templating import page_url
from tidings.errors import Issues, ValidationFailed
from tidings.services.console_sessions import csrf_matches, csrf_token, portal_link_url


def test_bar_chart_scales_bars_and_says_every_value() -> None:
    svg = str(bar_chart([("succeeded", 40), ("failed", 10), ("held", 0)], title="By <status>"))
    assert svg.startswith("<svg") and 'role="img"' in svg
    assert "<title>By &lt;status&gt;</title>" in svg
    assert "<desc>succeeded: 40, failed: 10, held: 0</desc>" in svg
    heights = [float(h) for h in re.findall(r'<rect[^>]*height="([0-9.]+)"', svg)]
    assert heights[0] == 4 * heights[1] and heights[2] == 0
    assert "style=" not in svg  # the CSP allows no inline style


def test_bar_chart_escapes_labels_and_draws_empty_data() -> None:
    svg = str(bar_chart([('"><script>', 1)], title="t"))
    assert "<script>" not in svg
    assert "no data" in str(bar_chart([], title="empty"))


def test_schema_tables_flatten_nested_fields_and_one_of_shapes() -> None:
    catalog = Catalog.load_default()
    failed = catalog.get("derivatives.entitlementFailed")
    assert failed is not None
    tables = schema_tables(failed.versions[1].schema)
    assert [t.title for t in tables] == ["Fields", "Shape 1: standard", "Shape 2: blacklist"]
    code = next(r for r in tables[2].rows if r.path == "code")
    assert code.allowed == "retailDerivatives30DaysBlacklist" and code.required
    status = catalog.get("compliance.status_changed")
    assert status is not None
    rows = {r.path: r for r in schema_tables(status.versions[1].schema)[0].rows}
    assert rows["previousStatus"].type == "string or null"
    assert "null" in rows["previousStatus"].allowed
    assert rows["orderId"].constraints == "at least 1 characters"
    nested = schema_tables(
        {
            "type": "object",
            "properties": {
                "messages": {
                    "type": "array",
                    "items": {"type": "object", "properties": {"code": {"type": "integer"}}},
                }
            },
        }
    )[0].rows
    assert [(r.path, r.type) for r in nested] == [
        ("messages", "array of object"),
        ("messages[].code", "integer"),
    ]


def test_field_errors_file_messages_under_their_field() -> None:
    exc = ValidationFailed(
        "bad",
        details=[
            {"path": "$.eventTypes[0]", "message": "a bare * is refused"},
            {"path": "$.ttlSeconds", "message": "too long"},
            {"path": "query.cursor", "message": "not a cursor"},
        ],
    )
    errors = field_errors(exc, ("eventTypes", "ttlSeconds"))
    assert errors.of("eventTypes") == ["line 1: a bare * is refused"]
    assert errors.of("ttlSeconds") == ["too long"]
    assert errors.form_level == ["query.cursor: not a cursor"]
    assert field_errors(ValidationFailed("plain"), ("x",)).form_level == ["$: plain"]


def test_the_content_security_policy_is_strict() -> None:
    csp = content_security_policy("'none'")
    directives = dict(d.split(" ", 1) for d in csp.split("; "))
    assert directives["default-src"] == "'none'"
    assert directives["script-src"] == "'self'" and directives["style-src"] == "'self'"
    assert "unsafe" not in csp
    assert directives["frame-ancestors"] == "'none'"
    assert content_security_policy("https://app.example.com").endswith(
        "frame-ancestors https://app.example.com"
    )


def test_form_fields_that_cannot_be_read_are_issues_at_their_path() -> None:
    issues = Issues()
    assert lines(" a \n\n b\n") == ["a", "b"]
    assert optional_number("", "$.n", issues) is None
    assert optional_number("2.5", "$.n", issues) == 2.5
    assert optional_integers("1, 2 3", "$.v", issues) == [1, 2, 3]
    assert header_lines("X-A: 1\nX-B:two:2", "$.headers", issues) == {"X-A": "1", "X-B": "two:2"}
    assert issues.items == []
    optional_number("fast", "$.n", issues)
    optional_integers("1, two", "$.v", issues)
    header_lines("no colon", "$.headers", issues)
    assert [i["path"] for i in issues.items] == ["$.n", "$.v", "$.headers"]


def test_page_urls_keep_filters_and_encode_them() -> None:
    assert page_url("/console/catalog", {}) == "/console/catalog"
    assert page_url("/x", {"q": "a&b", "empty": ""}, "c=1") == "/x?q=a%26b&cursor=c%3D1"


def test_the_csrf_token_is_bound_to_its_session() -> None:
    token = csrf_token("session-a")
    assert csrf_matches("session-a", token)
    assert not csrf_matches("session-b", token)
    assert not csrf_matches("session-a", None) and not csrf_matches("session-a", "")
    assert "session-a" not in token


def test_portal_link_urls() -> None:
    assert (
        portal_link_url("tok", public_url=None, request_origin="http://h:1")
        == "http://h:1/console/portal/tok"
    )
    assert portal_link_url("tok", public_url="https://x/", request_origin="http://h") == (
        "https://x/console/portal/tok"
    )


def test_console_settings_are_read_and_checked() -> None:
    assert Settings.from_env({}).console_frame_ancestors == "'none'"
    assert Settings.from_env({}).public_url is None
    framed = Settings.from_env({"TIDINGS_CONSOLE_FRAME_ANCESTORS": "'self'  https://a.example"})
    assert framed.console_frame_ancestors == "'self' https://a.example"
    for bad in ("'self'; script-src *", "a,b", "'self'\nx;"):
        with pytest.raises(SettingsError):
            Settings.from_env({"TIDINGS_CONSOLE_FRAME_ANCESTORS": bad})
    assert Settings.from_env({"TIDINGS_PUBLIC_URL": "https://w.example/"}).public_url == (
        "https://w.example"
    )
    with pytest.raises(SettingsError):
        Settings.from_env({"TIDINGS_PUBLIC_URL": "w.example"})
