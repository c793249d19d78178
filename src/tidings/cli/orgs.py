"""Operator commands (platform key): `tidings orgs create/list`, `tidings partners add/list`,
`tidings keys create/list/revoke`."""

from __future__ import annotations

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
    fetch_all,
    show_items,
    shown,
)
from tidings.cli.output import cell, err, key_values, short_time

orgs_app = typer.Typer(help="Organizations (tenants); platform key.", no_args_is_help=True)
partners_app = typer.Typer(help="Partners of an organization; platform key.", no_args_is_help=True)
keys_app = typer.Typer(
    help="API keys: make (organization keys; --platform in the database), list, revoke.",
    no_args_is_help=True,
)
app.add_typer(orgs_app, name="orgs")
app.add_typer(partners_app, name="partners")
app.add_typer(keys_app, name="keys")

OrgArg = Annotated[str, typer.Argument(metavar="ORG", help="The organization's uuid.")]


@orgs_app.command("create")
def orgs_create(
    name: Annotated[str, typer.Argument(metavar="NAME", help="The organization's name.")],
    uuid: Annotated[
        str | None,
        typer.Option(
            "--uuid", metavar="ID", help="Choose its id (your own tenant id)", show_default="new"
        ),
    ] = None,
    url: UrlOpt = DEFAULT_URL,
    key: KeyOpt = None,
    as_json: JsonOpt = False,
    field: FieldOpt = None,
) -> None:
    """Create an organization; prints its uuid and its first API key (shown once)."""
    body: dict[str, Any] = {"name": name}
    if uuid:
        body["organizationUuid"] = uuid
    org = call(url, key, lambda api: api.post("/v1/organizations", body))
    if shown(org, as_json, field):
        return
    key_values(
        "organization created",
        [
            ("organizationUuid", org.get("organizationUuid")),
            ("name", org.get("name")),
            ("apiKey", org.get("apiKey")),
        ],
    )
    err.print("[dim]keep the apiKey: it is shown only once[/dim]")


@orgs_app.command("list")
def orgs_list(
    limit: LimitOpt = 500,
    url: UrlOpt = DEFAULT_URL,
    key: KeyOpt = None,
    as_json: JsonOpt = False,
    wide: WideOpt = False,
) -> None:
    """Every organization, oldest first."""
    items = fetch_all(url, key, "/v1/organizations", limit)
    show_items(
        items,
        lambda o: [
            cell(o.get("organizationUuid")),
            cell(o.get("name")),
            short_time(o.get("createdAt")),
        ],
        ["organizationUuid", "name", "createdAt"],
        empty="no organizations",
        as_json=as_json,
        wide=wide,
    )


@partners_app.command("add")
def partners_add(
    org: OrgArg,
    name: Annotated[str, typer.Argument(metavar="NAME", help="The partner's name.")],
    uuid: Annotated[
        str | None,
        typer.Option("--uuid", metavar="ID", help="Choose its partnerUuid", show_default="new"),
    ] = None,
    url: UrlOpt = DEFAULT_URL,
    key: KeyOpt = None,
    as_json: JsonOpt = False,
    field: FieldOpt = None,
) -> None:
    """Authorize a partner (dealer) for an organization."""
    body: dict[str, Any] = {"name": name}
    if uuid:
        body["partnerUuid"] = uuid
    partner = call(url, key, lambda api: api.post(f"/v1/organizations/{org}/partners", body))
    if shown(partner, as_json, field):
        return
    key_values("partner added", [("partnerUuid", partner.get("partnerUuid")), ("name", name)])


@partners_app.command("list")
def partners_list(
    org: OrgArg,
    url: UrlOpt = DEFAULT_URL,
    key: KeyOpt = None,
    as_json: JsonOpt = False,
    wide: WideOpt = False,
) -> None:
    """The partners of an organization."""
    page = call(url, key, lambda api: api.get(f"/v1/organizations/{org}/partners"))
    show_items(
        page.get("items", []),
        lambda p: [cell(p.get("partnerUuid")), cell(p.get("name"))],
        ["partnerUuid", "name"],
        empty="no partners",
        as_json=as_json,
        wide=wide,
    )


ScopeOpt = Annotated[
    str | None,
    typer.Option(
        "--scope",
        metavar="SCOPE",
        help="organization keys: write or read; platform keys: admin or publish",
        show_default="write / admin",
    ),
]


@keys_app.command("create")
def keys_create(
    org: Annotated[
        str | None,
        typer.Argument(metavar="[ORG]", help="The organization's uuid (not with --platform)."),
    ] = None,
    name: Annotated[
        str | None, typer.Option("--name", metavar="TEXT", help="What the key is for")
    ] = None,
    scope: ScopeOpt = None,
    expires: Annotated[
        str | None,
        typer.Option("--expires", metavar="TIME", help="RFC 3339 expiry", show_default="never"),
    ] = None,
    platform: Annotated[
        bool,
        typer.Option(
            "--platform",
            help="A platform key written straight into the database (TIDINGS_DATABASE_URL): "
            "the way back in when no platform key works. Run it where the database is.",
        ),
    ] = False,
    url: UrlOpt = DEFAULT_URL,
    key: KeyOpt = None,
    as_json: JsonOpt = False,
    field: FieldOpt = None,
) -> None:
    """Make an API key (shown once): an organization's through the API (platform key), or
    with --platform a platform key written into the database directly."""
    body: dict[str, Any] = {
        k: v for k, v in (("name", name), ("scope", scope), ("expiresAt", expires)) if v
    }
    if platform:
        if org:
            err.print("[red]error:[/red] --platform makes a platform key: give no ORG")
            raise typer.Exit(2)
        created = _platform_key_in_database(body)
    elif not org:
        err.print("[red]error:[/red] give the ORG to make a key for, or --platform")
        raise typer.Exit(2)
    else:
        created = call(url, key, lambda api: api.post(f"/v1/organizations/{org}/api-keys", body))
    if shown(created, as_json, field):
        return
    key_values(
        "API key created",
        [(name_, created.get(name_)) for name_ in ("id", "scope", "name", "expiresAt", "apiKey")],
    )
    err.print("[dim]keep the apiKey: it is shown only once[/dim]")


def _platform_key_in_database(body: dict[str, Any]) -> dict[str, Any]:
    import asyncio

    from tidings.assembly import ServiceError, create_platform_key_in_database
    from tidings.config import Settings
    from tidings.errors import ValidationFailed

    try:
        return asyncio.run(create_platform_key_in_database(Settings.from_env(), **body))
    except (ServiceError, ValidationFailed) as exc:
        err.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(1) from None


@keys_app.command("list")
def keys_list(
    limit: LimitOpt = 500,
    url: UrlOpt = DEFAULT_URL,
    key: KeyOpt = None,
    as_json: JsonOpt = False,
    wide: WideOpt = False,
) -> None:
    """The keys of the key's organization, or the platform keys for a platform key; never the
    keys themselves (their prefix tells them apart)."""
    items = fetch_all(url, key, "/v1/api-keys", limit)
    show_items(
        items,
        lambda k: [
            cell(k.get("id")),
            cell(k.get("prefix")),
            cell(k.get("name")),
            cell(k.get("scope")),
            cell(k.get("status")),
            short_time(k.get("lastUsedAt")),
            short_time(k.get("expiresAt")),
        ],
        ["id", "prefix", "name", "scope", "status", "last used", "expires"],
        empty="no keys",
        as_json=as_json,
        wide=wide,
    )


@keys_app.command("revoke")
def keys_revoke(
    key_id: Annotated[str, typer.Argument(metavar="KEY_ID", help="The key's id (keys list).")],
    url: UrlOpt = DEFAULT_URL,
    key: KeyOpt = None,
    as_json: JsonOpt = False,
    field: FieldOpt = None,
) -> None:
    """Revoke a key: every tidings process refuses it within 5 s."""
    revoked = call(url, key, lambda api: api.delete(f"/v1/api-keys/{key_id}"))
    if shown(revoked, as_json, field):
        return
    key_values("API key revoked", [("id", revoked.get("id")), ("status", revoked.get("status"))])
