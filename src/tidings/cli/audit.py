"""`tidings audit export`: the audit trail for an auditor, one JSON object per line (JSON Lines),
oldest first, streamed page by page from `GET /v1/audit-log` (a platform key exports every
organization's entries, an organization key its own)."""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Annotated, TextIO

import orjson
import typer

from tidings.cli import app
from tidings.cli.apiclient import DEFAULT_URL, ApiClient
from tidings.cli.options import KeyOpt, SinceOpt, UrlOpt, call, fail, time_option
from tidings.cli.output import err

audit_app = typer.Typer(help="The audit trail: who changed what, who read a secret.",
                        no_args_is_help=True)  # fmt: skip
app.add_typer(audit_app, name="audit")

FORMATS = ("jsonl",)
PAGE = 500


@audit_app.command("export")
def audit_export(
    since: SinceOpt = None,
    action: Annotated[
        str | None,
        typer.Option("--action", metavar="ACTION", help="Only this action (endpoint.update)."),
    ] = None,
    target: Annotated[
        str | None,
        typer.Option("--target", metavar="ID", help="Only entries about this id."),
    ] = None,
    fmt: Annotated[
        str, typer.Option("--format", metavar="FORMAT", help="jsonl: one entry per line.")
    ] = "jsonl",
    output: Annotated[
        Path | None,
        typer.Option("--output", "-o", metavar="FILE", help="Write here, not to stdout."),
    ] = None,
    url: UrlOpt = DEFAULT_URL,
    key: KeyOpt = None,
) -> None:
    """Every audit entry (since a time), oldest first, as the API answers them."""
    if fmt not in FORMATS:
        raise fail(f"--format must be one of {', '.join(FORMATS)}")
    params = {"since": time_option(since, time.time()), "action": action, "targetId": target}

    async def export(api: ApiClient, out: TextIO) -> int:
        count = 0
        async for item in api.paginate("/v1/audit-log", page_size=PAGE, params=params):
            out.write(orjson.dumps(item).decode() + "\n")
            count += 1
        return count

    if output is None:
        count = call(url, key, lambda api: export(api, sys.stdout))
    else:
        with output.open("w", encoding="utf-8") as out:
            count = call(url, key, lambda api: export(api, out))
    err.print(f"{count} audit entr{'y' if count == 1 else 'ies'} exported", markup=False)
