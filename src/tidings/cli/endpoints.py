"""`tidings endpoints ...` (organization key): create, list, get, update, delete, pause, resume,
secret, rotate."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

import typer

from tidings.cli import app
from tidings.cli.apiclient import DEFAULT_URL
from tidings.cli.options import (
    FieldOpt,
    JsonOpt,
    KeyOpt,
    LimitOpt,
    UrlOpt,
    WideOpt,
    call,
    fail,
    fetch_all,
    guarded,
    key_value_pairs,
    parse_json_option,
    show_items,
    shown,
)
from tidings.cli.output import cell, key_values, out, styled_status

endpoints_app = typer.Typer(
    help="Webhook endpoints of an organization (org key).", no_args_is_help=True
)
app.add_typer(endpoints_app, name="endpoints")

EndpointArg = Annotated[str, typer.Argument(metavar="ENDPOINT_ID", help="The endpoint id.")]
TypesOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--types",
        "-t",
        metavar="PATTERNS",
        help="Event types or patterns like kyc.* (comma-separated, or repeat).",
    ),
]
FormatOpt = Annotated[
    str | None,
    typer.Option(
        "--format",
        metavar="FORMAT",
        help="novatrade | dlt | standard",
        show_default="the catalog's own",
    ),
]
PartnerOpt = Annotated[
    list[str] | None,
    typer.Option("--partner", metavar="UUID", help="Only this partner's events (repeat)."),
]
SchemaVersionsOpt = Annotated[
    list[int] | None,
    typer.Option(
        "--schema-version",
        min=1,
        metavar="N",
        help="A schemaVersion it accepts (repeat)",
        show_default="the newest of each type",
    ),
]
SourceOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--source",
        metavar="SOURCE",
        help="A source whose events fire webhooks (repeat)",
        show_default="WEB_APP and SYSTEM",
    ),
]
DescriptionOpt = Annotated[
    str | None, typer.Option("--description", "-d", metavar="TEXT", help="A note.")
]
HeaderOpt = Annotated[
    list[str] | None,
    typer.Option("--header", metavar="NAME:VALUE", help="An extra header to send (repeat)."),
]
RateOpt = Annotated[
    float | None,
    typer.Option(
        "--rate-limit", min=0, metavar="PER_SECOND", help="At most this many deliveries a second."
    ),
]
OrderingOpt = Annotated[
    str | None,
    typer.Option(
        "--ordering",
        metavar="ORDERING",
        help="subject: one subject's events one at a time, in order | none (docs/api.md: "
        "Ordering).",
        show_default=False,
    ),
]
FilterOpt = Annotated[
    str | None,
    typer.Option(
        "--filter",
        metavar="JSON",
        help='Only events that satisfy it, e.g. \'{"path": "attributes.owner_type", '
        '"eq": "company"}\' (docs/api.md: Filters).',
        show_default=False,
    ),
]


def endpoint_body(
    types: list[str] | None,
    fmt: str | None,
    partners: list[str] | None,
    versions: list[int] | None,
    sources: list[str] | None,
    description: str | None,
    headers: list[str] | None,
    rate_limit: float | None,
) -> dict[str, Any]:
    body: dict[str, Any] = {}
    if types:
        body["eventTypes"] = [t.strip() for item in types for t in item.split(",") if t.strip()]
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


def show_endpoint(endpoint: dict[str, Any], title: str) -> None:
    names = (
        "id", "url", "format", "status", "pauseReason", "eventTypes", "partnerIds",
        "acceptedSchemaVersions", "sources", "description", "headers", "rateLimitPerSecond",
        "filter", "recordFiltered", "ordering", "failureStreak", "lastSuccessAt", "createdAt",
    )  # fmt: skip
    pairs: list[tuple[str, Any]] = [(n, endpoint.get(n)) for n in names if n in endpoint]
    if endpoint.get("secret"):
        pairs.append(("secret", endpoint["secret"]))
    key_values(title, pairs)


@endpoints_app.command("create")
def endpoints_create(
    endpoint_url: Annotated[
        str, typer.Argument(metavar="ENDPOINT_URL", help="Where to POST (https://...).")
    ],
    types: TypesOpt = None,
    fmt: FormatOpt = None,
    partner: PartnerOpt = None,
    schema_version: SchemaVersionsOpt = None,
    source: SourceOpt = None,
    description: DescriptionOpt = None,
    header: HeaderOpt = None,
    rate_limit: RateOpt = None,
    event_filter: FilterOpt = None,
    ordering: OrderingOpt = None,
    record_filtered: Annotated[
        bool,
        typer.Option("--record-filtered", help="Record the events --filter refuses as skipped."),
    ] = False,
    url: UrlOpt = DEFAULT_URL,
    key: KeyOpt = None,
    as_json: JsonOpt = False,
    field: FieldOpt = None,
) -> None:
    """Register an endpoint; prints its id and signing secret."""
    if not types:
        raise fail("give the event types it subscribes to: --types 'compliance.*' (for example)")
    body = guarded(
        lambda: endpoint_body(
            types, fmt, partner, schema_version, source, description, header, rate_limit
        )
    )
    body["url"] = endpoint_url
    if event_filter is not None:
        body["filter"] = guarded(lambda: parse_json_option(event_filter, "--filter"))
    if record_filtered:
        body["recordFiltered"] = True
    if ordering is not None:
        body["ordering"] = ordering
    created = call(url, key, lambda api: api.post("/v1/endpoints", body))
    if shown(created, as_json, field):
        return
    show_endpoint(created, "endpoint created")


@endpoints_app.command("list")
def endpoints_list(
    limit: LimitOpt = 500,
    url: UrlOpt = DEFAULT_URL,
    key: KeyOpt = None,
    as_json: JsonOpt = False,
    wide: WideOpt = False,
) -> None:
    """The organization's endpoints, oldest first."""
    items = fetch_all(url, key, "/v1/endpoints", limit)
    show_items(
        items,
        lambda e: [
            cell(e.get("id")),
            cell(e.get("url")),
            cell(e.get("format")),
            styled_status(e.get("status")),
            cell(e.get("eventTypes")),
            cell(e.get("description")),
        ],
        ["id", "url", "format", "status", "eventTypes", "description"],
        empty="no endpoints",
        as_json=as_json,
        wide=wide,
    )


@endpoints_app.command("get")
def endpoints_get(
    endpoint_id: EndpointArg,
    url: UrlOpt = DEFAULT_URL,
    key: KeyOpt = None,
    as_json: JsonOpt = False,
    field: FieldOpt = None,
) -> None:
    """One endpoint."""
    endpoint = call(url, key, lambda api: api.get(f"/v1/endpoints/{endpoint_id}"))
    if shown(endpoint, as_json, field):
        return
    show_endpoint(endpoint, f"endpoint {endpoint_id}")


@endpoints_app.command("update")
def endpoints_update(
    endpoint_id: EndpointArg,
    endpoint_url: Annotated[
        str | None,
        typer.Option("--endpoint-url", metavar="URL", help="A new URL to POST to."),
    ] = None,
    types: TypesOpt = None,
    fmt: FormatOpt = None,
    partner: PartnerOpt = None,
    all_partners: Annotated[
        bool, typer.Option("--all-partners", help="Deliver for every partner again.")
    ] = False,
    schema_version: SchemaVersionsOpt = None,
    source: SourceOpt = None,
    description: DescriptionOpt = None,
    header: HeaderOpt = None,
    rate_limit: RateOpt = None,
    event_filter: FilterOpt = None,
    ordering: OrderingOpt = None,
    no_filter: Annotated[
        bool, typer.Option("--no-filter", help="Remove the filter: every subscribed event.")
    ] = False,
    url: UrlOpt = DEFAULT_URL,
    key: KeyOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Change an endpoint (only the options given)."""
    body = guarded(
        lambda: endpoint_body(
            types, fmt, partner, schema_version, source, description, header, rate_limit
        )
    )
    if endpoint_url:
        body["url"] = endpoint_url
    if all_partners:
        body["partnerIds"] = None
    if event_filter is not None:
        body["filter"] = guarded(lambda: parse_json_option(event_filter, "--filter"))
    if no_filter:
        body["filter"] = None
    if ordering is not None:
        body["ordering"] = ordering
    if not body:
        raise fail("nothing to change: give at least one option (see --help)")
    endpoint = call(url, key, lambda api: api.patch(f"/v1/endpoints/{endpoint_id}", body))
    if shown(endpoint, as_json, None):
        return
    show_endpoint(endpoint, "endpoint updated")


@endpoints_app.command("ledger")
def endpoints_ledger(
    endpoint_id: EndpointArg,
    after: Annotated[
        int, typer.Option("--after", min=0, help="Start after this sequence number.")
    ] = 0,
    limit: LimitOpt = 100,
    url: UrlOpt = DEFAULT_URL,
    key: KeyOpt = None,
    as_json: JsonOpt = False,
    wide: WideOpt = False,
) -> None:
    """What the endpoint is owed, in sequence order (X-Tidings-Sequence)."""
    page = call(
        url,
        key,
        lambda api: api.get(f"/v1/endpoints/{endpoint_id}/ledger", after=after, limit=limit),
    )
    if as_json:
        shown(page, as_json, None)
        return
    show_items(
        page["items"],
        lambda e: [
            cell(e.get("sequence")),
            cell(e.get("eventId")),
            cell(e.get("type")),
            cell(e.get("subject")),
            styled_status(e.get("status")),
        ],
        ["sequence", "eventId", "type", "subject", "status"],
        empty="nothing owed after that number",
        as_json=False,
        wide=wide,
    )
    if page.get("nextAfter") is not None:
        out.print(f"more: --after {page['nextAfter']} (last sequence {page['lastSequence']})")


@endpoints_app.command("delete")
def endpoints_delete(
    endpoint_id: EndpointArg,
    url: UrlOpt = DEFAULT_URL,
    key: KeyOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Delete an endpoint (its pending deliveries are not sent)."""
    call(url, key, lambda api: api.delete(f"/v1/endpoints/{endpoint_id}"))
    if shown({"id": endpoint_id, "deleted": True}, as_json, None):
        return
    out.print(f"deleted endpoint {endpoint_id}")


def _state_change(action: str) -> Callable[..., None]:
    def command(
        endpoint_id: EndpointArg,
        url: UrlOpt = DEFAULT_URL,
        key: KeyOpt = None,
        as_json: JsonOpt = False,
    ) -> None:
        endpoint = call(url, key, lambda api: api.post(f"/v1/endpoints/{endpoint_id}/{action}"))
        if shown(endpoint, as_json, None):
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
    endpoint_id: EndpointArg,
    url: UrlOpt = DEFAULT_URL,
    key: KeyOpt = None,
    as_json: JsonOpt = False,
    field: FieldOpt = None,
) -> None:
    """Show the endpoint's signing secret(s)."""
    answer = call(url, key, lambda api: api.get(f"/v1/endpoints/{endpoint_id}/secret"))
    if shown(answer, as_json, field):
        return
    show_secrets(answer)


@endpoints_app.command("rotate")
def endpoints_rotate(
    endpoint_id: EndpointArg,
    grace: Annotated[
        float | None,
        typer.Option(
            "--grace",
            min=0,
            metavar="SECONDS",
            help="How long the old secret keeps signing",
            show_default="86400 (24 h)",
        ),
    ] = None,
    url: UrlOpt = DEFAULT_URL,
    key: KeyOpt = None,
    as_json: JsonOpt = False,
    field: FieldOpt = None,
) -> None:
    """Rotate the signing secret; the old one keeps signing during the grace period."""
    body = {} if grace is None else {"graceSeconds": grace}
    answer = call(
        url, key, lambda api: api.post(f"/v1/endpoints/{endpoint_id}/secret/rotate", body)
    )
    if shown(answer, as_json, field):
        return
    show_secrets(answer)
