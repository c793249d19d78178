"""Rendering a page: the Jinja2 environment (templates shipped in the package, autoescaped),
what every template gets (the viewer, its CSRF token, the flash message, `static_url`), and the
filters pages share (times, durations)."""

from __future__ import annotations

from collections.abc import Mapping
from functools import cache
from typing import Any
from urllib.parse import urlencode

import jinja2
from fastapi import Request, Response
from fastapi.responses import HTMLResponse

from tidings.clock import to_rfc3339
from tidings.console import charts
from tidings.console.cookies import clear_cookie, set_cookie
from tidings.console.security import static_url
from tidings.endpoint_health import bucket_label

FLASH_COOKIE = "tidings_flash"
# Flash messages travel as a code (and at most a count), never as text from a request:
# nothing to inject.
FLASH_MESSAGES = {
    "signed_in": "You are signed in.",
    "signed_out": "You are signed out.",
    "portal_opened": "Welcome: this console was opened from a portal link.",
    "paused": "The endpoint is paused: its deliveries are held until you resume it.",
    "resumed": "The endpoint is active again: {count} held {deliveries} will go out now.",
    "replayed": "Replay started: the delivery is on its way again (a new attempt series).",
    "replay_started": "Replay started: {count} {deliveries} on {their} way again.",
    "updated": "The endpoint is changed: deliveries from now on follow its new settings.",
    "deleted": "The endpoint is deleted: its history stays, its waiting deliveries failed.",
}


def flash(request: Request, response: Response, code: str, count: int | None = None) -> Response:
    """A message for the next page the browser shows (after a redirect)."""
    value = code if count is None else f"{code}.{count}"
    set_cookie(request, response, FLASH_COOKIE, value)
    return response


def flash_message(value: str | None) -> str | None:
    code, _, count = (value or "").partition(".")
    template = FLASH_MESSAGES.get(code)
    if template is None or (count and not count.isdigit()):
        return None
    n = int(count or 0)
    return template.format(
        count=n,
        deliveries="delivery" if n == 1 else "deliveries",
        their="its" if n == 1 else "their",
    )


def _when(ts: float | None) -> str:
    return "never" if ts is None else to_rfc3339(ts).replace("T", " ").replace("Z", " UTC")


def _minute_points(series: list[tuple[float, int]]) -> list[tuple[str, float]]:
    """(minute start, count) pairs labelled HH:MM UTC, for a chart's axis."""
    return [(to_rfc3339(ts)[11:16], float(n)) for ts, n in series]


def _duration(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.0f} s"
    if seconds < 3600:
        return f"{seconds / 60:.0f} min"
    if seconds < 86400:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} days"


def page_url(base: str, params: Mapping[str, Any], cursor: str | None = None) -> str:
    """`base` with the page's non-empty filters (and the cursor), encoded; a list value is
    repeated (`status=failed&status=held`)."""
    query = {k: v for k, v in params.items() if v not in (None, "", [], ())}
    if cursor is not None:
        query["cursor"] = cursor
    return f"{base}?{urlencode(query, doseq=True)}" if query else base


@cache
def environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("tidings.console", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.globals["static_url"] = static_url
    env.globals["bar_chart"] = charts.bar_chart
    env.globals["series_chart"] = charts.series_chart
    env.globals["minute_points"] = _minute_points
    env.globals["page_url"] = page_url
    env.filters["when"] = _when
    env.filters["duration"] = _duration
    env.filters["bucket"] = bucket_label
    return env


def render(
    request: Request,
    template: str,
    context: dict[str, Any] | None = None,
    *,
    status_code: int = 200,
) -> HTMLResponse:
    viewer = getattr(request.state, "viewer", None)
    flash_code = request.cookies.get(FLASH_COOKIE)
    values: dict[str, Any] = {
        "viewer": viewer,
        "csrf": None if viewer is None else viewer.csrf,
        "flash": flash_message(flash_code),
        "section": None,  # which navigation entry is current; a page passes its own
    }
    values.update(context or {})
    html = environment().get_template(template).render(values)
    response = HTMLResponse(html, status_code=status_code)
    if flash_code is not None:
        clear_cookie(request, response, FLASH_COOKIE)
    return response
