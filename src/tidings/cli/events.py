"""`tidings events publish` (platform key: one envelope from a file, stdin or options, or many
from JSON Lines), `events list [--follow]`, `events get` (organization key), `events erase`
(platform key: one event, or every event about a subject) and `events types` (any key)."""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from tidings.cli import app
from tidings.cli.apiclient import DEFAULT_URL, ApiClient, UsageError
from tidings.cli.deliveries import (
    DELIVERY_COLUMNS,
    DELIVERY_ID_COLUMNS,
    delivery_row,
)
from tidings.cli.options import (
    FieldOpt,
    JsonOpt,
    KeyOpt,
    UrlOpt,
    WideOpt,
    call,
    fail,
    guarded,
    key_value_pairs,
    parse_json_option,
    shown,
)
from tidings.cli.output import (
    cell,
    err,
    error_text,
    key_values,
    out,
    short_time,
    show_table,
)

T = TypeVar("T")

events_app = typer.Typer(
    help="Publish events (platform key), read them (org key).", no_args_is_help=True
)
app.add_typer(events_app, name="events")

SchemaVersionOpt = Annotated[
    int | None,
    typer.Option(
        "--schema-version",
        min=1,
        metavar="N",
        help="The schemaVersion of --data",
        show_default="1",
    ),
]


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
    correlation_id: str | None = None,
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
        "correlationId": correlation_id,
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


def print_batch_summary(summary: dict[str, Any]) -> None:
    words = {"existing": "already published (idempotent repeats)", "error": "refused"}
    counts = ", ".join(f"{n} {words.get(w, w)}" for w, n in sorted(summary["counts"].items()))
    out.print(f"published {summary['total']} events: {counts}")
    for item in summary["errors"][:20]:
        out.print(f"  line {item['line']}: {error_text(item['error'])}", markup=False)
    if len(summary["errors"]) > 20:
        out.print(f"  ... and {len(summary['errors']) - 20} more errors")


def publish_batch_file(
    path: str, batch_size: int, url: str, key: str | None, as_json: bool
) -> None:
    items = guarded(lambda: read_jsonl(path))
    summary = call(
        url, key, lambda api: publish_batches(api, items, batch_size, show_progress=True)
    )
    if not shown(summary, as_json, None):
        print_batch_summary(summary)
    if summary["errors"]:
        raise typer.Exit(1)


@events_app.command("publish")
def events_publish(
    file: Annotated[
        str | None,
        typer.Argument(
            metavar="FILE", help="An envelope JSON file, or - for stdin.", show_default=False
        ),
    ] = None,
    file_option: Annotated[
        str | None,
        typer.Option("--file", metavar="FILE", help="Same as FILE.", show_default=False),
    ] = None,
    batch: Annotated[
        str | None,
        typer.Option(
            "--batch", metavar="FILE", help="A JSON Lines file of envelopes (or - for stdin)."
        ),
    ] = None,
    batch_size: Annotated[
        int,
        typer.Option("--batch-size", min=1, max=500, metavar="N", help="Events per request."),
    ] = 100,
    event_type: Annotated[
        str | None, typer.Option("--type", metavar="TYPE", help="The event type.")
    ] = None,
    data: Annotated[
        str | None,
        typer.Option("--data", metavar="JSON", help="The data, as JSON", show_default="{}"),
    ] = None,
    org: Annotated[
        str | None, typer.Option("--org", metavar="UUID", help="The organizationUuid.")
    ] = None,
    partner: Annotated[
        str | None, typer.Option("--partner", metavar="UUID", help="The partnerUuid.")
    ] = None,
    source: Annotated[
        str | None,
        typer.Option(
            "--source", metavar="SOURCE", help="API | WEB_APP | SYSTEM", show_default="WEB_APP"
        ),
    ] = None,
    subject: Annotated[
        str | None, typer.Option("--subject", metavar="ID", help="What the event is about.")
    ] = None,
    attr: Annotated[
        list[str] | None,
        typer.Option("--attr", metavar="NAME=VALUE", help="An envelope attribute (repeat)."),
    ] = None,
    schema_version: SchemaVersionOpt = None,
    event_id: Annotated[
        str | None, typer.Option("--id", metavar="ID", help="Your event id", show_default="new")
    ] = None,
    correlation_id: Annotated[
        str | None,
        typer.Option(
            "--correlation-id",
            metavar="ID",
            help="The id of the request that caused the event (delivered as "
            "X-Tidings-Correlation-Id: receivers skip their own echoes).",
        ),
    ] = None,
    idempotency_key: Annotated[
        str | None,
        typer.Option("--idempotency-key", metavar="KEY", help="Sent as Idempotency-Key."),
    ] = None,
    url: UrlOpt = DEFAULT_URL,
    key: KeyOpt = None,
    as_json: JsonOpt = False,
    field: FieldOpt = None,
) -> None:
    """Publish one event (from FILE, stdin or options), or many with --batch FILE.jsonl."""
    if batch is not None:
        publish_batch_file(batch, batch_size, url, key, as_json)
        return
    source_file = file if file is not None else file_option
    if source_file is not None:
        envelope = guarded(lambda: read_envelope(source_file))
    else:
        envelope = guarded(
            lambda: envelope_from_options(
                event_type,
                data,
                org,
                partner,
                source,
                subject,
                attr,
                schema_version,
                event_id,
                correlation_id,
            )
        )
    headers = {"Idempotency-Key": idempotency_key} if idempotency_key else None

    async def publish(api: ApiClient) -> tuple[int, Any]:
        stored = await api.request("POST", "/v1/events", body=envelope, headers=headers)
        return api.last_status, stored

    status, stored = call(url, key, publish)
    if shown(stored, as_json, field):
        return
    word = "published" if status == 201 else "already published (idempotent repeat)"
    out.print(f"{word}: [bold]{cell(stored.get('id'))}[/bold] {cell(stored.get('type'))}")


def events_rows(items: list[dict[str, Any]]) -> list[list[str]]:
    return [
        [
            cell(e.get("id")),
            cell(e.get("type")),
            cell(e.get("schemaVersion")),
            cell(e.get("source")),
            cell(e.get("subject")),
            short_time(e.get("createdAt")),
            short_time(e.get("erasedAt")) if e.get("erasedAt") else "",
        ]
        for e in items
    ]


EVENT_COLUMNS = ["id", "type", "v", "source", "subject", "createdAt", "erased"]


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
    after: Annotated[
        str | None, typer.Option("--after", metavar="CURSOR", help="Events after this cursor.")
    ] = None,
    types: Annotated[
        str | None,
        typer.Option("--types", metavar="PATTERNS", help="Comma-separated types or kyc.*-like."),
    ] = None,
    limit: Annotated[
        int, typer.Option("--limit", min=1, max=500, metavar="N", help="At most this many.")
    ] = 50,
    follow: Annotated[
        bool, typer.Option("--follow", "-f", help="Keep polling for new events (Ctrl-C stops).")
    ] = False,
    interval: Annotated[
        float,
        typer.Option("--interval", min=0.1, metavar="SECONDS", help="Between polls (--follow)."),
    ] = 2.0,
    correlation_id: Annotated[
        str | None,
        typer.Option(
            "--correlation-id", metavar="ID", help="Only the events published with this id."
        ),
    ] = None,
    url: UrlOpt = DEFAULT_URL,
    key: KeyOpt = None,
    as_json: JsonOpt = False,
    wide: WideOpt = False,
) -> None:
    """The organization's event feed, oldest first (org key)."""
    if follow:
        if correlation_id is not None:
            raise fail("--correlation-id lists a page: leave out --follow")
        try:
            call(url, key, lambda api: follow_feed(api, after, types, limit, interval, as_json))
        except typer.Exit as exc:
            if exc.exit_code != 130:  # Ctrl-C is how --follow ends
                raise
        return
    page = call(
        url,
        key,
        lambda api: api.get(
            "/v1/events", after=after, types=types, limit=limit, correlationId=correlation_id
        ),
    )
    if shown(page, as_json, None):
        return
    show_table(EVENT_COLUMNS, events_rows(page.get("items", [])), empty="no events", wide=wide)
    if page.get("nextCursor"):
        out.print(f"[dim]newer events: --after {page['nextCursor']}[/dim]")


@events_app.command("get")
def events_get(
    event_id: Annotated[str, typer.Argument(metavar="EVENT_ID", help="The event id.")],
    url: UrlOpt = DEFAULT_URL,
    key: KeyOpt = None,
    as_json: JsonOpt = False,
    field: FieldOpt = None,
    wide: WideOpt = False,
) -> None:
    """One event with its deliveries (org key)."""
    event = call(url, key, lambda api: api.get(f"/v1/events/{event_id}"))
    if shown(event, as_json, field):
        return
    key_values(
        f"event {event.get('id')}",
        [
            (name, event.get(name))
            for name in ("type", "schemaVersion", "source", "partnerUuid", "subject", "createdAt")
        ]
        + ([("erasedAt", event["erasedAt"])] if event.get("erasedAt") else []),
    )
    if event.get("erasedAt"):
        out.print("data: (erased)")
    else:
        out.print_json(json.dumps(event.get("data")))
    rows = [delivery_row(d) for d in event.get("deliveries", [])]
    show_table(DELIVERY_COLUMNS, rows, empty="no deliveries", ids=DELIVERY_ID_COLUMNS, wide=wide)


@events_app.command("erase")
def events_erase(
    event_id: Annotated[
        str | None,
        typer.Argument(
            metavar="[EVENT_ID]", help="The event to erase (with --org).", show_default=False
        ),
    ] = None,
    org: Annotated[
        str | None,
        typer.Option(
            "--org",
            metavar="ORG",
            help="The organization (required with EVENT_ID).",
            show_default=False,
        ),
    ] = None,
    subject: Annotated[
        str | None,
        typer.Option(
            "--subject",
            metavar="ID",
            help="Erase every event about this subject (in every organization, or --org's).",
            show_default=False,
        ),
    ] = None,
    url: UrlOpt = DEFAULT_URL,
    key: KeyOpt = None,
    as_json: JsonOpt = False,
    field: FieldOpt = None,
) -> None:
    """Erase personal data (platform key): the event's data, its receivers' answers and the
    state's copy go; ids, types, times and statuses stay. Its deliveries are not sent again."""
    if (event_id is None) == (subject is None):
        raise fail("give either EVENT_ID --org ORG or --subject ID")
    if event_id is not None:
        if org is None:
            raise fail("EVENT_ID needs --org ORG (event ids are unique per organization)")
        path, body = f"/v1/events/{event_id}/erase", {"organizationUuid": org}
    else:
        path, body = f"/v1/subjects/{subject}/erase", ({"organizationUuid": org} if org else {})
    done = call(url, key, lambda api: api.post(path, body))
    if shown(done, as_json, field):
        return
    counts = done.get("erased", {})
    key_values(
        "erased",
        [
            ("events", counts.get("events")),
            ("deliveries stopped", counts.get("deliveriesStopped")),
            ("responses cleared", counts.get("responsesCleared")),
            ("projections", counts.get("projections")),
            ("organizations", ", ".join(done.get("organizations", [])) or "-"),
            ("erasedAt", done.get("erasedAt")),
        ],
    )


@events_app.command("types")
def events_types(
    url: UrlOpt = DEFAULT_URL,
    key: KeyOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """The event types of the catalogs, with their formats and schema versions."""
    answer = call(url, key, lambda api: api.get("/v1/event-types"))
    if shown(answer, as_json, None):
        return
    items = answer.get("items", answer) if isinstance(answer, dict) else answer
    rows = [
        [
            cell(item.get("type")),
            cell(item.get("catalog")),
            cell(item.get("format")),
            cell([v.get("schemaVersion") for v in item.get("versions", [])]),
        ]
        for item in items or []
    ]
    show_table(["type", "catalog", "format", "versions"], rows, empty="no types", ids=())
