"""Operator and integrator commands over the HTTP API (contract sections 7 and 8).

    tidings orgs create NAME / list             (platform key)
    tidings partners add ORG NAME               (platform key)
    tidings keys create ORG                     (platform key)
    tidings events publish [FILE | --batch FILE.jsonl | --type T --data JSON ...]
    tidings events list [--follow] / get ID / types
    tidings endpoints create URL -e TYPE ... / list / get / update / delete / pause / resume /
                      secret / rotate
    tidings deliveries list / get ID
    tidings replay DELIVERY_ID | tidings replay --endpoint ID --since T [--status S] [--missing]
    tidings state compliance ORDER / locks OWNER / entitlement ID

Every command takes `--url` (TIDINGS_URL, default http://127.0.0.1:8080), `--key` (TIDINGS_KEY)
and `--json` (the API's JSON answer on stdout, for scripts); without `--json` people get rich
tables. An API error prints one line on stderr, `error <status> <code>: <message>`, and exits 1;
a server that cannot be reached exits 3; a usage problem exits 2.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from tidings.cli import app
from tidings.cli.apiclient import DEFAULT_URL, ApiClient, ClientError, UsageError

T = TypeVar("T")

out = Console(highlight=False, soft_wrap=False)
err = Console(stderr=True, highlight=False)

UrlOpt = Annotated[
    str,
    typer.Option("--url", envvar="TIDINGS_URL", help="The tidings API.", show_envvar=True),
]
KeyOpt = Annotated[
    str | None,
    typer.Option(
        "--key",
        envvar="TIDINGS_KEY",
        help="A platform or organization API key.",
        show_envvar=True,
        show_default=False,
    ),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print the raw JSON answer (for scripts).")]

orgs_app = typer.Typer(help="Organizations (tenants); needs a platform key.", no_args_is_help=True)
partners_app = typer.Typer(help="Partners of an organization; platform key.", no_args_is_help=True)
keys_app = typer.Typer(help="Organization API keys; needs a platform key.", no_args_is_help=True)
events_app = typer.Typer(help="Publish events (platform key), read them (org key).")
endpoints_app = typer.Typer(help="Webhook endpoints of an organization (org key).")
deliveries_app = typer.Typer(help="Delivery history with attempts (org key).")
state_app = typer.Typer(help="State built from events: compliance, locks, entitlements.")
for _sub, _name in (
    (orgs_app, "orgs"),
    (partners_app, "partners"),
    (keys_app, "keys"),
    (events_app, "events"),
    (endpoints_app, "endpoints"),
    (deliveries_app, "deliveries"),
    (state_app, "state"),
):
    _sub.info.no_args_is_help = True
    app.add_typer(_sub, name=_name)


# --- plumbing -------------------------------------------------------------------------------


def call(url: str, key: str | None, work: Callable[[ApiClient], Awaitable[T]]) -> T:
    """Run `work` with a client; any ClientError becomes one line on stderr and an exit code."""

    async def main() -> T:
        async with ApiClient(url or DEFAULT_URL, key) as api:
            return await work(api)

    try:
        return asyncio.run(main())
    except ClientError as exc:
        err.print(exc.line, markup=False, soft_wrap=True)
        raise typer.Exit(exc.exit_code) from None
    except KeyboardInterrupt:
        raise typer.Exit(130) from None


def fetch_all(
    url: str,
    key: str | None,
    path: str,
    limit: int,
    params: Mapping[str, Any] | None = None,
) -> list[dict[str, Any]]:
    """Every item of a list path, following cursors, up to `limit`."""

    async def collect(api: ApiClient) -> list[dict[str, Any]]:
        return [item async for item in api.paginate(path, limit=limit, params=params)]

    return call(url, key, collect)


def print_json(value: Any) -> None:
    sys.stdout.write(json.dumps(value, indent=2, ensure_ascii=False) + "\n")
    sys.stdout.flush()


def cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, list | tuple):
        return ", ".join(cell(v) for v in value) or "-"
    if isinstance(value, dict):
        return json.dumps(value, ensure_ascii=False) if value else "-"
    return str(value)


def short_time(value: Any) -> str:
    """'2026-11-23T03:10:11.123456Z' -> '2026-11-23 03:10:11'."""
    if not isinstance(value, str):
        return cell(value)
    return value.replace("T", " ")[:19]


STATUS_STYLE = {
    "succeeded": "green",
    "active": "green",
    "pending": "yellow",
    "held": "yellow",
    "paused": "yellow",
    "failed": "red",
    "disabled": "red",
    "skipped": "dim",
}


def styled_status(status: Any) -> str:
    text = cell(status)
    style = STATUS_STYLE.get(text)
    return f"[{style}]{text}[/{style}]" if style else text


def new_table(*columns: str, title: str | None = None, ids: int = 1) -> Table:
    """A table whose first `ids` columns are never cut (people copy ids from them); the other
    columns wrap instead of ending in an ellipsis."""
    table = Table(title=title, title_justify="left")
    for index, name in enumerate(columns):
        if index < ids:
            table.add_column(name, no_wrap=True)
        else:
            table.add_column(name, overflow="fold")
    return table


def print_table(table: Table, empty: str) -> None:
    if table.row_count:
        out.print(table)
    else:
        out.print(f"[dim]{empty}[/dim]")


def key_values(title: str, pairs: Iterable[tuple[str, Any]]) -> None:
    table = Table(title=title, show_header=False, box=None, title_justify="left")
    table.add_column(style="bold")
    table.add_column(overflow="fold")
    for name, value in pairs:
        table.add_row(name, value if isinstance(value, str) else cell(value))
    out.print(table)


def parse_json_option(text: str, what: str) -> Any:
    try:
        return json.loads(text)
    except ValueError as exc:
        raise UsageError(f"{what} is not valid JSON: {exc}") from exc


def key_value_pairs(values: list[str] | None, what: str, sep: str = "=") -> dict[str, Any]:
    result: dict[str, Any] = {}
    for item in values or []:
        name, found, value = item.partition(sep)
        if not found or not name.strip():
            raise UsageError(f"{what} must look like NAME{sep}VALUE, not {item!r}")
        result[name.strip()] = value.strip()
    return result


def fail(message: str, code: int = 2) -> typer.Exit:
    err.print(f"error: {message}", markup=False, soft_wrap=True)
    return typer.Exit(code)


def guarded(build: Callable[[], T]) -> T:
    """Run a local step that may raise UsageError (reading files, parsing options)."""
    try:
        return build()
    except ClientError as exc:
        raise fail(str(exc), exc.exit_code) from None


# --- organizations, partners, keys ----------------------------------------------------------


@orgs_app.command("create")
def orgs_create(
    name: Annotated[str, typer.Argument(help="The organization's name.")],
    uuid: Annotated[str | None, typer.Option("--uuid", help="Choose its id.")] = None,
    url: UrlOpt = DEFAULT_URL,
    key: KeyOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Create an organization; prints its uuid and its first API key (shown once)."""
    body: dict[str, Any] = {"name": name}
    if uuid:
        body["organizationUuid"] = uuid
    org = call(url, key, lambda api: api.post("/v1/organizations", body))
    if as_json:
        print_json(org)
        return
    key_values(
        "organization created",
        [
            ("organizationUuid", org.get("organizationUuid")),
            ("name", org.get("name")),
            ("apiKey", org.get("apiKey")),
        ],
    )
    err.print("[dim]keep the apiKey: it is shown only once (TIDINGS_KEY=...)[/dim]")


@orgs_app.command("list")
def orgs_list(
    limit: Annotated[int, typer.Option("--limit", min=1, help="At most this many.")] = 500,
    url: UrlOpt = DEFAULT_URL,
    key: KeyOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Every organization, oldest first."""
    items = fetch_all(url, key, "/v1/organizations", limit)
    if as_json:
        print_json({"items": items})
        return
    table = new_table("organizationUuid", "name", "createdAt")
    for org in items:
        table.add_row(
            cell(org.get("organizationUuid")),
            cell(org.get("name")),
            short_time(org.get("createdAt")),
        )
    print_table(table, "no organizations")


@partners_app.command("add")
def partners_add(
    org: Annotated[str, typer.Argument(help="The organization's uuid.")],
    name: Annotated[str, typer.Argument(help="The partner's name.")],
    uuid: Annotated[str | None, typer.Option("--uuid", help="Choose its partnerUuid.")] = None,
    url: UrlOpt = DEFAULT_URL,
    key: KeyOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Authorize a partner (dealer) for an organization."""
    body: dict[str, Any] = {"name": name}
    if uuid:
        body["partnerUuid"] = uuid
    partner = call(url, key, lambda api: api.post(f"/v1/organizations/{org}/partners", body))
    if as_json:
        print_json(partner)
        return
    key_values("partner added", [("partnerUuid", partner.get("partnerUuid")), ("name", name)])


@partners_app.command("list")
def partners_list(
    org: Annotated[str, typer.Argument(help="The organization's uuid.")],
    url: UrlOpt = DEFAULT_URL,
    key: KeyOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """The partners of an organization."""
    page = call(url, key, lambda api: api.get(f"/v1/organizations/{org}/partners"))
    if as_json:
        print_json(page)
        return
    table = new_table("partnerUuid", "name")
    for item in page.get("items", []):
        table.add_row(cell(item.get("partnerUuid")), cell(item.get("name")))
    print_table(table, "no partners")


@keys_app.command("create")
def keys_create(
    org: Annotated[str, typer.Argument(help="The organization's uuid.")],
    url: UrlOpt = DEFAULT_URL,
    key: KeyOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Issue another API key for an organization (shown once)."""
    created = call(url, key, lambda api: api.post(f"/v1/organizations/{org}/api-keys"))
    if as_json:
        print_json(created)
        return
    key_values("API key created", [("id", created.get("id")), ("apiKey", created.get("apiKey"))])


# --- events ---------------------------------------------------------------------------------


def envelope_from_options(
    event_type: str | None,
    data: str | None,
    org: str | None,
    partner: str | None,
    source: str | None,
    subject: str | None,
    attrs: list[str] | None,
    schema_version: int | None,
    event_id: str | None,
) -> dict[str, Any]:
    if not event_type:
        raise UsageError("give an envelope FILE (or - for stdin), --batch FILE.jsonl, or --type")
    envelope: dict[str, Any] = {
        "type": event_type,
        "schemaVersion": schema_version or 1,
        "source": source or "WEB_APP",
        "data": parse_json_option(data, "--data") if data is not None else {},
    }
    optional = {
        "id": event_id,
        "organizationUuid": org,
        "partnerUuid": partner,
        "subject": subject,
    }
    envelope.update({k: v for k, v in optional.items() if v is not None})
    if attrs:
        envelope["attributes"] = key_value_pairs(attrs, "--attr")
    return envelope


def read_envelope(source: str) -> Any:
    try:
        text = sys.stdin.read() if source == "-" else Path(source).read_text()
    except OSError as exc:
        raise UsageError(f"cannot read {source}: {exc.strerror or exc}") from exc
    return parse_json_option(text, "the envelope" if source == "-" else source)


def read_jsonl(path: str) -> list[tuple[int, Any]]:
    """(line number, envelope) for every non-blank line; a bad line is a usage error before
    anything is sent."""
    try:
        lines = sys.stdin.readlines() if path == "-" else Path(path).read_text().splitlines()
    except OSError as exc:
        raise UsageError(f"cannot read {path}: {exc.strerror or exc}") from exc
    items: list[tuple[int, Any]] = []
    for number, line in enumerate(lines, start=1):
        if line.strip():
            items.append((number, parse_json_option(line, f"{path} line {number}")))
    if not items:
        raise UsageError(f"{path} holds no events")
    return items


def chunks(items: list[T], size: int) -> Iterator[list[T]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def result_outcome(result: Any) -> str:
    """A batch result's outcome word: created, existing (an idempotent repeat), error."""
    if not isinstance(result, dict) or result.get("error") is not None:
        return "error"
    status = result.get("status")
    if status in (201, "201"):
        return "created"
    if status in (200, "200", "duplicate"):
        return "existing"
    return str(status or "ok")


async def publish_batches(
    api: ApiClient, items: list[tuple[int, Any]], size: int, show_progress: bool
) -> dict[str, Any]:
    counts: dict[str, int] = {}
    errors: list[dict[str, Any]] = []
    progress = Progress(
        TextColumn("publishing"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err,
        disable=not show_progress,
    )
    with progress:
        task = progress.add_task("publish", total=len(items))
        for batch in chunks(items, size):
            answer = await api.post("/v1/events/batch", {"events": [env for _, env in batch]})
            results = answer.get("results", []) if isinstance(answer, dict) else []
            for (line, _), result in zip(batch, results, strict=False):
                outcome = result_outcome(result)
                counts[outcome] = counts.get(outcome, 0) + 1
                if outcome == "error":
                    errors.append({"line": line, "error": result.get("error")})
            progress.advance(task, len(batch))
    return {"total": len(items), "counts": counts, "errors": errors}


def error_text(error: Any) -> str:
    if isinstance(error, dict):
        code = error.get("code", "error")
        return f"{code}: {error.get('message', '')}".strip()
    return cell(error)


def print_batch_summary(summary: dict[str, Any]) -> None:
    words = {"existing": "already published (idempotent repeats)", "error": "refused"}
    counts = ", ".join(f"{n} {words.get(w, w)}" for w, n in sorted(summary["counts"].items()))
    out.print(f"published {summary['total']} events: {counts}")
    for item in summary["errors"][:20]:
        out.print(f"  line {item['line']}: {error_text(item['error'])}", markup=False)
    if len(summary["errors"]) > 20:
        out.print(f"  ... and {len(summary['errors']) - 20} more errors")


@events_app.command("publish")
def events_publish(
    file: Annotated[
        str | None,
        typer.Argument(help="An envelope JSON file, or - for stdin.", show_default=False),
    ] = None,
    file_option: Annotated[
        str | None,
        typer.Option("--file", "-f", help="Same as FILE.", show_default=False),
    ] = None,
    batch: Annotated[
        str | None,
        typer.Option("--batch", help="A JSON Lines file of envelopes (or - for stdin)."),
    ] = None,
    batch_size: Annotated[
        int, typer.Option("--batch-size", min=1, max=500, help="Events per request.")
    ] = 100,
    event_type: Annotated[str | None, typer.Option("--type", help="Event type.")] = None,
    data: Annotated[str | None, typer.Option("--data", help="The data, as JSON.")] = None,
    org: Annotated[str | None, typer.Option("--org", help="organizationUuid.")] = None,
    partner: Annotated[str | None, typer.Option("--partner", help="partnerUuid.")] = None,
    source: Annotated[
        str | None, typer.Option("--source", help="API | WEB_APP | SYSTEM", show_default="WEB_APP")
    ] = None,
    subject: Annotated[str | None, typer.Option("--subject", help="What it is about.")] = None,
    attr: Annotated[
        list[str] | None, typer.Option("--attr", help="An attribute NAME=VALUE (repeat).")
    ] = None,
    schema_version: Annotated[
        int | None, typer.Option("--schema-version", min=1, help="", show_default="1")
    ] = None,
    event_id: Annotated[str | None, typer.Option("--id", help="Your event id.")] = None,
    idempotency_key: Annotated[
        str | None, typer.Option("--idempotency-key", help="Idempotency-Key header.")
    ] = None,
    url: UrlOpt = DEFAULT_URL,
    key: KeyOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Publish one event (from FILE, stdin or options), or many with --batch FILE.jsonl."""
    if batch is not None:
        items = guarded(lambda: read_jsonl(batch))
        summary = call(
            url, key, lambda api: publish_batches(api, items, batch_size, show_progress=True)
        )
        if as_json:
            print_json(summary)
        else:
            print_batch_summary(summary)
        if summary["errors"]:
            raise typer.Exit(1)
        return
    source_file = file if file is not None else file_option
    if source_file is not None:
        envelope = guarded(lambda: read_envelope(source_file))
    else:
        envelope = guarded(
            lambda: envelope_from_options(
                event_type, data, org, partner, source, subject, attr, schema_version, event_id
            )
        )
    headers = {"Idempotency-Key": idempotency_key} if idempotency_key else None

    async def publish(api: ApiClient) -> tuple[int, Any]:
        stored = await api.request("POST", "/v1/events", body=envelope, headers=headers)
        return api.last_status, stored

    status, stored = call(url, key, publish)
    if as_json:
        print_json(stored)
        return
    word = "published" if status == 201 else "already published (idempotent repeat)"
    out.print(f"{word}: [bold]{cell(stored.get('id'))}[/bold] {cell(stored.get('type'))}")


def events_table(items: list[dict[str, Any]]) -> Table:
    table = new_table("id", "type", "v", "source", "subject", "createdAt")
    for e in items:
        table.add_row(
            cell(e.get("id")),
            cell(e.get("type")),
            cell(e.get("schemaVersion")),
            cell(e.get("source")),
            cell(e.get("subject")),
            short_time(e.get("createdAt")),
        )
    return table


async def follow_feed(
    api: ApiClient, after: str | None, types: str | None, limit: int, interval: float, as_json: bool
) -> None:
    """Poll the feed (ETag/If-None-Match) and print new events as they arrive, until Ctrl-C."""
    etag: str | None = None
    cursor = after
    while True:
        headers = {"If-None-Match": etag} if etag else None
        page = await api.request(
            "GET",
            "/v1/events",
            params={"after": cursor, "types": types, "limit": limit},
            headers=headers,
        )
        if page is not None:
            etag = api.last_headers.get("ETag") or api.last_headers.get("etag")
            items = page.get("items", [])
            for item in items:
                if as_json:
                    sys.stdout.write(json.dumps(item, ensure_ascii=False) + "\n")
                else:
                    out.print(
                        f"{short_time(item.get('createdAt'))}  [bold]{item.get('type')}[/bold]  "
                        f"{item.get('id')}  {cell(item.get('subject'))}",
                        soft_wrap=True,
                    )
            sys.stdout.flush()
            cursor = page.get("nextCursor") or cursor
            if items:
                continue
        await asyncio.sleep(interval)


@events_app.command("list")
def events_list(
    after: Annotated[str | None, typer.Option("--after", help="Cursor: events after it.")] = None,
    types: Annotated[
        str | None, typer.Option("--types", help="Comma-separated type patterns (kyc.*,...).")
    ] = None,
    limit: Annotated[int, typer.Option("--limit", min=1, max=500)] = 50,
    follow: Annotated[
        bool, typer.Option("--follow", "-f", help="Keep polling for new events (Ctrl-C stops).")
    ] = False,
    interval: Annotated[float, typer.Option("--interval", help="Seconds between polls.")] = 2.0,
    url: UrlOpt = DEFAULT_URL,
    key: KeyOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """The organization's event feed, oldest first (org key)."""
    if follow:
        try:
            call(url, key, lambda api: follow_feed(api, after, types, limit, interval, as_json))
        except typer.Exit as exc:
            if exc.exit_code != 130:  # Ctrl-C is how --follow ends
                raise
        return
    page = call(url, key, lambda api: api.get("/v1/events", after=after, types=types, limit=limit))
    if as_json:
        print_json(page)
        return
    print_table(events_table(page.get("items", [])), "no events")
    if page.get("nextCursor"):
        out.print(f"[dim]newer events: --after {page['nextCursor']}[/dim]")


@events_app.command("get")
def events_get(
    event_id: Annotated[str, typer.Argument(help="The event id.")],
    url: UrlOpt = DEFAULT_URL,
    key: KeyOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """One event with its deliveries (org key)."""
    event = call(url, key, lambda api: api.get(f"/v1/events/{event_id}"))
    if as_json:
        print_json(event)
        return
    key_values(
        f"event {event.get('id')}",
        [
            (name, event.get(name))
            for name in ("type", "schemaVersion", "source", "partnerUuid", "subject", "createdAt")
        ],
    )
    out.print_json(json.dumps(event.get("data")))
    out.print(deliveries_table(event.get("deliveries", [])))


@events_app.command("types")
def events_types(
    url: UrlOpt = DEFAULT_URL,
    key: KeyOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """The event types of the catalogs, with their formats and schema versions."""
    answer = call(url, key, lambda api: api.get("/v1/event-types"))
    if as_json:
        print_json(answer)
        return
    items = answer.get("items", answer) if isinstance(answer, dict) else answer
    table = new_table("type", "catalog", "format", "versions")
    for item in items or []:
        versions = [v.get("schemaVersion") for v in item.get("versions", [])]
        table.add_row(
            cell(item.get("type")), cell(item.get("catalog")), cell(item.get("format")),
            cell(versions),
        )  # fmt: skip
    out.print(table)


# --- endpoints ------------------------------------------------------------------------------

EventsOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--event",
        "-e",
        "--types",
        help="An event type or pattern like kyc.* (repeat, or comma-separated).",
    ),
]
FormatOpt = Annotated[
    str | None, typer.Option("--format", help="novatrade | dlt | standard", show_default="native")
]
PartnerOpt = Annotated[
    list[str] | None, typer.Option("--partner", help="Limit to this partnerUuid (repeat).")
]
VersionOpt = Annotated[
    list[int] | None, typer.Option("--version", help="An accepted schemaVersion (repeat).")
]
SourceOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--source", help="A source that fires webhooks (repeat)", show_default="WEB_APP,SYSTEM"
    ),
]
DescriptionOpt = Annotated[str | None, typer.Option("--description", "-d", help="A note.")]
HeaderOpt = Annotated[
    list[str] | None, typer.Option("--header", help="An extra header NAME:VALUE (repeat).")
]
RateOpt = Annotated[
    float | None, typer.Option("--rate-limit", help="Max deliveries per second to it.")
]


def endpoint_body(
    events: list[str] | None,
    fmt: str | None,
    partners: list[str] | None,
    versions: list[int] | None,
    sources: list[str] | None,
    description: str | None,
    headers: list[str] | None,
    rate_limit: float | None,
) -> dict[str, Any]:
    body: dict[str, Any] = {}
    if events:
        body["eventTypes"] = [e for item in events for e in item.split(",") if e.strip()]
    if partners:
        body["partnerIds"] = partners
    if versions:
        body["acceptedSchemaVersions"] = versions
    if sources:
        body["sources"] = [s.upper() for s in sources]
    if headers:
        body["headers"] = key_value_pairs(headers, "--header", sep=":")
    optional = {"format": fmt, "description": description, "rateLimitPerSecond": rate_limit}
    body.update({k: v for k, v in optional.items() if v is not None})
    return body


def endpoints_table(items: list[dict[str, Any]]) -> Table:
    table = new_table("id", "url", "format", "status", "eventTypes", "description")
    for e in items:
        table.add_row(
            cell(e.get("id")),
            cell(e.get("url")),
            cell(e.get("format")),
            styled_status(e.get("status")),
            cell(e.get("eventTypes")),
            cell(e.get("description")),
        )
    return table


def show_endpoint(endpoint: dict[str, Any], title: str) -> None:
    names = (
        "id", "url", "format", "status", "pauseReason", "eventTypes", "partnerIds",
        "acceptedSchemaVersions", "sources", "description", "headers", "rateLimitPerSecond",
        "failureStreak", "lastSuccessAt", "createdAt",
    )  # fmt: skip
    pairs: list[tuple[str, Any]] = [(n, endpoint.get(n)) for n in names if n in endpoint]
    if endpoint.get("secret"):
        pairs.append(("secret", endpoint["secret"]))
    key_values(title, pairs)


@endpoints_app.command("create")
def endpoints_create(
    endpoint_url: Annotated[str, typer.Argument(help="The receiver URL (https://...).")],
    events: EventsOpt = None,
    fmt: FormatOpt = None,
    partner: PartnerOpt = None,
    version: VersionOpt = None,
    source: SourceOpt = None,
    description: DescriptionOpt = None,
    header: HeaderOpt = None,
    rate_limit: RateOpt = None,
    url: UrlOpt = DEFAULT_URL,
    key: KeyOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Register an endpoint; prints its id and signing secret."""
    if not events:
        raise fail("give at least one --event TYPE or pattern (e.g. -e 'compliance.*')")
    body = guarded(
        lambda: endpoint_body(
            events, fmt, partner, version, source, description, header, rate_limit
        )
    )
    body["url"] = endpoint_url
    created = call(url, key, lambda api: api.post("/v1/endpoints", body))
    if as_json:
        print_json(created)
        return
    show_endpoint(created, "endpoint created")


@endpoints_app.command("list")
def endpoints_list(
    limit: Annotated[int, typer.Option("--limit", min=1, help="At most this many.")] = 500,
    url: UrlOpt = DEFAULT_URL,
    key: KeyOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """The organization's endpoints."""
    items = fetch_all(url, key, "/v1/endpoints", limit)
    if as_json:
        print_json({"items": items})
        return
    print_table(endpoints_table(items), "no endpoints")


@endpoints_app.command("get")
def endpoints_get(
    endpoint_id: Annotated[str, typer.Argument(help="The endpoint id.")],
    url: UrlOpt = DEFAULT_URL,
    key: KeyOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """One endpoint."""
    endpoint = call(url, key, lambda api: api.get(f"/v1/endpoints/{endpoint_id}"))
    if as_json:
        print_json(endpoint)
        return
    show_endpoint(endpoint, f"endpoint {endpoint_id}")


@endpoints_app.command("update")
def endpoints_update(
    endpoint_id: Annotated[str, typer.Argument(help="The endpoint id.")],
    endpoint_url: Annotated[
        str | None, typer.Option("--endpoint-url", help="A new receiver URL.")
    ] = None,
    events: EventsOpt = None,
    fmt: FormatOpt = None,
    partner: PartnerOpt = None,
    all_partners: Annotated[
        bool, typer.Option("--all-partners", help="Deliver for every partner again.")
    ] = False,
    version: VersionOpt = None,
    source: SourceOpt = None,
    description: DescriptionOpt = None,
    header: HeaderOpt = None,
    rate_limit: RateOpt = None,
    url: UrlOpt = DEFAULT_URL,
    key: KeyOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Change an endpoint (only the options given)."""
    body = guarded(
        lambda: endpoint_body(
            events, fmt, partner, version, source, description, header, rate_limit
        )
    )
    if endpoint_url:
        body["url"] = endpoint_url
    if all_partners:
        body["partnerIds"] = None
    if not body:
        raise fail("nothing to change: give at least one option (see --help)")
    endpoint = call(url, key, lambda api: api.patch(f"/v1/endpoints/{endpoint_id}", body))
    if as_json:
        print_json(endpoint)
        return
    show_endpoint(endpoint, "endpoint updated")


@endpoints_app.command("delete")
def endpoints_delete(
    endpoint_id: Annotated[str, typer.Argument(help="The endpoint id.")],
    url: UrlOpt = DEFAULT_URL,
    key: KeyOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Delete an endpoint (its pending deliveries are not sent)."""
    call(url, key, lambda api: api.delete(f"/v1/endpoints/{endpoint_id}"))
    if as_json:
        print_json({"id": endpoint_id, "deleted": True})
        return
    out.print(f"deleted endpoint {endpoint_id}")


def _state_change(action: str) -> Callable[..., None]:
    def command(
        endpoint_id: Annotated[str, typer.Argument(help="The endpoint id.")],
        url: UrlOpt = DEFAULT_URL,
        key: KeyOpt = None,
        as_json: JsonOpt = False,
    ) -> None:
        endpoint = call(url, key, lambda api: api.post(f"/v1/endpoints/{endpoint_id}/{action}"))
        if as_json:
            print_json(endpoint)
            return
        status = styled_status(endpoint.get("status"))
        extra = ""
        if action == "resume" and endpoint.get("released") is not None:
            extra = f"; {endpoint['released']} held deliveries on their way"
        out.print(f"endpoint {endpoint_id} is {status}{extra}")

    return command


endpoints_app.command("pause", help="Pause an endpoint by hand: its deliveries are held.")(
    _state_change("pause")
)
endpoints_app.command("resume", help="Resume an endpoint: what was held goes out.")(
    _state_change("resume")
)


def show_secrets(answer: dict[str, Any]) -> None:
    out.print(f"secret: [bold]{answer.get('secret')}[/bold]")
    others = [s for s in answer.get("secrets", []) if s.get("secret") != answer.get("secret")]
    for s in others:
        out.print(f"also signing until {s.get('expiresAt')}: {s.get('secret')}")


@endpoints_app.command("secret")
def endpoints_secret(
    endpoint_id: Annotated[str, typer.Argument(help="The endpoint id.")],
    url: UrlOpt = DEFAULT_URL,
    key: KeyOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Show the endpoint's signing secret(s)."""
    answer = call(url, key, lambda api: api.get(f"/v1/endpoints/{endpoint_id}/secret"))
    if as_json:
        print_json(answer)
        return
    show_secrets(answer)


@endpoints_app.command("rotate")
def endpoints_rotate(
    endpoint_id: Annotated[str, typer.Argument(help="The endpoint id.")],
    grace: Annotated[
        float | None,
        typer.Option(
            "--grace", min=0, help="Seconds the old secret keeps signing", show_default="86400"
        ),
    ] = None,
    url: UrlOpt = DEFAULT_URL,
    key: KeyOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Rotate the signing secret; the old one keeps signing during the grace period."""
    body = {} if grace is None else {"graceSeconds": grace}
    answer = call(
        url, key, lambda api: api.post(f"/v1/endpoints/{endpoint_id}/secret/rotate", body)
    )
    if as_json:
        print_json(answer)
        return
    show_secrets(answer)


# --- deliveries and replay ------------------------------------------------------------------


def deliveries_table(items: list[dict[str, Any]], title: str | None = None) -> Table:
    table = new_table(
        "id", "status", "attempts", "last", "event", "endpoint", "created", title=title
    )
    for d in items:
        last = d.get("lastStatusCode") or d.get("lastError") or d.get("skipReason")
        table.add_row(
            cell(d.get("id")),
            styled_status(d.get("status")),
            cell(d.get("attemptCount")),
            cell(last),
            cell(d.get("eventId")),
            cell(d.get("endpointId")),
            short_time(d.get("createdAt")),
        )
    return table


def milliseconds(value: Any) -> str:
    return f"{value:.0f}" if isinstance(value, int | float) else cell(value)


def attempts_table(attempts: list[dict[str, Any]]) -> Table:
    table = new_table("#", "series", "startedAt", "ms", "status", "error / response")
    for a in attempts:
        code = a.get("statusCode")
        style = "green" if isinstance(code, int) and 200 <= code < 300 else "red"
        table.add_row(
            cell(a.get("number")),
            cell(a.get("series")),
            short_time(a.get("startedAt")),
            milliseconds(a.get("durationMs")),
            f"[{style}]{cell(code)}[/{style}]",
            cell(a.get("error") or " ".join(str(a.get("responseExcerpt") or "").split())[:40]),
        )
    return table


@deliveries_app.command("list")
def deliveries_list(
    endpoint: Annotated[str | None, typer.Option("--endpoint", help="Endpoint id.")] = None,
    event: Annotated[str | None, typer.Option("--event", help="Event id.")] = None,
    status: Annotated[
        str | None,
        typer.Option("--status", help="pending | succeeded | failed | held | skipped"),
    ] = None,
    since: Annotated[str | None, typer.Option("--since", help="RFC 3339, inclusive.")] = None,
    until: Annotated[str | None, typer.Option("--until", help="RFC 3339, exclusive.")] = None,
    limit: Annotated[int, typer.Option("--limit", min=1, help="At most this many.")] = 50,
    url: UrlOpt = DEFAULT_URL,
    key: KeyOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Delivery history, newest first."""
    params = {
        "endpointId": endpoint,
        "eventId": event,
        "status": status,
        "since": since,
        "until": until,
    }
    items = fetch_all(url, key, "/v1/deliveries", limit, params)
    if as_json:
        print_json({"items": items})
        return
    print_table(deliveries_table(items), "no deliveries")


@deliveries_app.command("get")
def deliveries_get(
    delivery_id: Annotated[str, typer.Argument(help="The delivery id.")],
    url: UrlOpt = DEFAULT_URL,
    key: KeyOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """One delivery with its attempts."""
    d = call(url, key, lambda api: api.get(f"/v1/deliveries/{delivery_id}"))
    if as_json:
        print_json(d)
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
    print_table(attempts_table(d.get("attempts", [])), "no attempts yet")


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


@app.command("replay")
def replay(
    delivery_id: Annotated[
        str | None, typer.Argument(help="One delivery to send again.", show_default=False)
    ] = None,
    endpoint: Annotated[
        str | None, typer.Option("--endpoint", help="Replay many deliveries of this endpoint.")
    ] = None,
    since: Annotated[str | None, typer.Option("--since", help="RFC 3339, inclusive.")] = None,
    until: Annotated[str | None, typer.Option("--until", help="RFC 3339, exclusive.")] = None,
    status: Annotated[
        list[str] | None,
        typer.Option("--status", help="Statuses to replay (repeat)", show_default="failed"),
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
        d = call(url, key, lambda api: api.post(f"/v1/deliveries/{delivery_id}/replay"))
        if as_json:
            print_json(d)
            return
        out.print(
            f"replaying delivery {d.get('id')} (series {cell(d.get('series'))}): "
            f"{styled_status(d.get('status'))}"
        )
        return
    if not since:
        raise fail("--endpoint needs --since TIME (RFC 3339, e.g. 2026-01-01T00:00:00Z)")
    body: dict[str, Any] = {"since": since, "missing": missing}
    if until:
        body["until"] = until
    if status:
        body["status"] = status if len(status) > 1 else status[0]
    endpoint_id = endpoint or ""
    answer = call(url, key, lambda api: replay_window(api, endpoint_id, body, not as_json))
    if as_json:
        print_json(answer)
        return
    line = f"replayed {answer.get('replayed', 0)} deliveries of {endpoint_id}"
    if missing:
        line += (
            f" ({answer.get('missing', 0)} never sent before, {answer.get('skipped', 0)} skipped)"
        )
    out.print(line)


# --- state ----------------------------------------------------------------------------------


def _state_command(path: str, what: str) -> Callable[..., None]:
    def command(
        ident: Annotated[str, typer.Argument(help="The id.")],
        url: UrlOpt = DEFAULT_URL,
        key: KeyOpt = None,
        as_json: JsonOpt = False,
    ) -> None:
        answer = call(url, key, lambda api: api.get(path.format(ident)))
        if as_json:
            print_json(answer)
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
