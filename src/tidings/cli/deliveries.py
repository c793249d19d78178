"""Delivery history and what follows from it (organization key): `tidings deliveries list/get`,
`tidings replay` and `tidings state compliance/locks/entitlement`."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Annotated, Any

import typer

from tidings.cli import app
from tidings.cli.apiclient import DEFAULT_URL, ApiClient
from tidings.cli.options import (
    FieldOpt,
    JsonOpt,
    KeyOpt,
    LimitOpt,
    SinceOpt,
    UntilOpt,
    UrlOpt,
    WideOpt,
    call,
    fail,
    fetch_all,
    show_items,
    shown,
    time_option,
)
from tidings.cli.output import cell, err, key_values, out, short_time, show_table, styled_status

deliveries_app = typer.Typer(help="Delivery history with attempts (org key).", no_args_is_help=True)
state_app = typer.Typer(
    help="State built from events: compliance, locks, entitlements.", no_args_is_help=True
)
app.add_typer(deliveries_app, name="deliveries")
app.add_typer(state_app, name="state")

STATUSES = "pending | succeeded | failed | held | skipped"
DELIVERY_COLUMNS = ["id", "status", "attempts", "last", "event", "endpoint", "created"]
DELIVERY_ID_COLUMNS = (0, 4, 5)


def delivery_row(d: dict[str, Any]) -> list[str]:
    """One row of a deliveries table (DELIVERY_COLUMNS, ids in DELIVERY_ID_COLUMNS)."""
    last = d.get("lastStatusCode") or d.get("lastError") or d.get("skipReason")
    return [
        cell(d.get("id")),
        styled_status(d.get("status")),
        cell(d.get("attemptCount")),
        cell(last),
        cell(d.get("eventId")),
        cell(d.get("endpointId")),
        short_time(d.get("createdAt")),
    ]


def milliseconds(value: Any) -> str:
    return f"{value:.0f}" if isinstance(value, int | float) else cell(value)


def attempts_rows(attempts: list[dict[str, Any]]) -> list[list[str]]:
    rows = []
    for a in attempts:
        code = a.get("statusCode")
        style = "green" if isinstance(code, int) and 200 <= code < 300 else "red"
        excerpt = " ".join(str(a.get("responseExcerpt") or "").split())[:40]
        rows.append(
            [
                cell(a.get("number")),
                cell(a.get("series")),
                short_time(a.get("startedAt")),
                milliseconds(a.get("durationMs")),
                f"[{style}]{cell(code)}[/{style}]",
                cell(a.get("error") or excerpt),
            ]
        )
    return rows


@deliveries_app.command("list")
def deliveries_list(
    endpoint: Annotated[
        str | None, typer.Option("--endpoint", metavar="ENDPOINT_ID", help="Of this endpoint.")
    ] = None,
    event: Annotated[
        str | None, typer.Option("--event", metavar="EVENT_ID", help="Of this event.")
    ] = None,
    status: Annotated[str | None, typer.Option("--status", metavar="STATUS", help=STATUSES)] = None,
    since: SinceOpt = None,
    until: UntilOpt = None,
    limit: LimitOpt = 50,
    url: UrlOpt = DEFAULT_URL,
    key: KeyOpt = None,
    as_json: JsonOpt = False,
    wide: WideOpt = False,
) -> None:
    """Delivery history, newest first."""
    now = time.time()
    params = {
        "endpointId": endpoint,
        "eventId": event,
        "status": status,
        "since": time_option(since, now),
        "until": time_option(until, now),
    }
    items = fetch_all(url, key, "/v1/deliveries", limit, params)
    show_items(
        items,
        delivery_row,
        DELIVERY_COLUMNS,
        empty="no deliveries",
        as_json=as_json,
        wide=wide,
        ids=DELIVERY_ID_COLUMNS,
    )


@deliveries_app.command("get")
def deliveries_get(
    delivery_id: Annotated[str, typer.Argument(metavar="DELIVERY_ID", help="The delivery id.")],
    url: UrlOpt = DEFAULT_URL,
    key: KeyOpt = None,
    as_json: JsonOpt = False,
    field: FieldOpt = None,
) -> None:
    """One delivery with its attempts."""
    d = call(url, key, lambda api: api.get(f"/v1/deliveries/{delivery_id}"))
    if shown(d, as_json, field):
        return
    key_values(
        f"delivery {d.get('id')}",
        [
            ("event", d.get("eventId")),
            ("endpoint", d.get("endpointId")),
            ("status", styled_status(d.get("status"))),
            ("schemaVersion", d.get("schemaVersion")),
            ("attempts", d.get("attemptCount")),
            ("nextAttemptAt", d.get("nextAttemptAt")),
            ("skipReason", d.get("skipReason")),
        ],
    )
    columns = ["#", "series", "startedAt", "ms", "status", "error / response"]
    show_table(columns, attempts_rows(d.get("attempts", [])), empty="no attempts yet", ids=())


async def replay_window(
    api: ApiClient, endpoint: str, body: dict[str, Any], show_progress: bool
) -> Any:
    with err.status(f"replaying deliveries of {endpoint}...", spinner="dots") as status:
        if not show_progress:
            status.stop()
        started = time.monotonic()
        answer = await api.post(f"/v1/endpoints/{endpoint}/replay", body)
        answer.setdefault("seconds", round(time.monotonic() - started, 3))
        return answer


def replay_one(delivery_id: str, url: str, key: str | None, as_json: bool) -> None:
    d = call(url, key, lambda api: api.post(f"/v1/deliveries/{delivery_id}/replay"))
    if shown(d, as_json, None):
        return
    out.print(
        f"replaying delivery {d.get('id')} (series {cell(d.get('series'))}): "
        f"{styled_status(d.get('status'))}"
    )


@app.command("replay")
def replay(
    delivery_id: Annotated[
        str | None,
        typer.Argument(
            metavar="DELIVERY_ID", help="One delivery to send again.", show_default=False
        ),
    ] = None,
    endpoint: Annotated[
        str | None,
        typer.Option(
            "--endpoint", metavar="ENDPOINT_ID", help="Replay many deliveries of this endpoint."
        ),
    ] = None,
    since: SinceOpt = None,
    until: UntilOpt = None,
    status: Annotated[
        list[str] | None,
        typer.Option(
            "--status",
            metavar="STATUS",
            help="Which deliveries (repeat): failed = ran out of attempts (10 over ~72 h); "
            "a delivery still being retried is pending; succeeded sends again what arrived",
            show_default="failed",
        ),
    ] = None,
    missing: Annotated[
        bool,
        typer.Option("--missing", help="Also send the window's events it never received."),
    ] = False,
    url: UrlOpt = DEFAULT_URL,
    key: KeyOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Send deliveries again: one by id, or an endpoint's over a time window."""
    if (delivery_id is None) == (endpoint is None):
        raise fail("give either a DELIVERY_ID or --endpoint ID --since TIME")
    if delivery_id is not None:
        replay_one(delivery_id, url, key, as_json)
        return
    if not since:
        raise fail("--endpoint needs --since TIME (RFC 3339 like 2026-01-01T00:00:00Z, or 2h)")
    now = time.time()
    body: dict[str, Any] = {"since": time_option(since, now), "missing": missing}
    if until:
        body["until"] = time_option(until, now)
    if status:
        body["status"] = status if len(status) > 1 else status[0]
    endpoint_id = endpoint or ""
    answer = call(url, key, lambda api: replay_window(api, endpoint_id, body, not as_json))
    if shown(answer, as_json, None):
        return
    line = f"replayed {answer.get('replayed', 0)} deliveries of {endpoint_id}"
    if missing:
        line += (
            f" ({answer.get('missing', 0)} never sent before, {answer.get('skipped', 0)} skipped)"
        )
    out.print(line)


StateIdArg = Annotated[str, typer.Argument(metavar="ID", help="The order, owner or entitlement.")]


def _state_command(path: str, what: str) -> Callable[..., None]:
    def command(
        ident: StateIdArg,
        url: UrlOpt = DEFAULT_URL,
        key: KeyOpt = None,
        as_json: JsonOpt = False,
        field: FieldOpt = None,
    ) -> None:
        answer = call(url, key, lambda api: api.get(path.format(ident)))
        if shown(answer, as_json, field):
            return
        key_values(f"{what} {ident}", list(answer.items()))

    return command


state_app.command("compliance", help="An order's compliance rollup.")(
    _state_command("/v1/orders/{}/compliance", "order")
)
state_app.command("locks", help="An owner's funding and trading locks.")(
    _state_command("/v1/owners/{}/locks", "owner")
)
state_app.command("entitlement", help="A dlt entitlement's state.")(
    _state_command("/v1/entitlements/{}", "entitlement")
)
