"""Operator commands (platform key): `tidings orgs create/list`, `tidings partners add/list`,
`tidings keys create`."""

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
keys_app = typer.Typer(help="Organization API keys; platform key.", no_args_is_help=True)
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


@keys_app.command("create")
def keys_create(
    org: OrgArg,
    url: UrlOpt = DEFAULT_URL,
    key: KeyOpt = None,
    as_json: JsonOpt = False,
    field: FieldOpt = None,
) -> None:
    """Issue another API key for an organization (shown once)."""
    created = call(url, key, lambda api: api.post(f"/v1/organizations/{org}/api-keys"))
    if shown(created, as_json, field):
        return
    key_values("API key created", [("id", created.get("id")), ("apiKey", created.get("apiKey"))])
