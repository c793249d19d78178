"""What every command over the HTTP API shares: the options with one name and one meaning across
commands (`--url`, `--key`, `--json`, `--field`, `--wide`, `--since`/`--until`,
`--schema-version`), running a request with a client (`call`), and reading what people type
(JSON, NAME=VALUE pairs, times).

Exit codes: 1 for an error answered by the API, 2 for a usage problem, 3 for a server that
cannot be reached, 130 for Ctrl-C.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Annotated, Any, TypeVar

import typer

from tidings.cli.apiclient import DEFAULT_URL, ApiClient, ClientError, UsageError
from tidings.cli.output import err

T = TypeVar("T")

UrlOpt = Annotated[
    str,
    typer.Option(
        "--url",
        envvar="TIDINGS_URL",
        metavar="URL",
        help="The tidings API (http:// or https://).",
        show_envvar=True,
    ),
]
KeyOpt = Annotated[
    str | None,
    typer.Option(
        "--key",
        envvar="TIDINGS_KEY",
        metavar="KEY",
        help="A platform or organization API key.",
        show_envvar=True,
        show_default=False,
    ),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print the API's JSON answer (scripts).")]
FieldOpt = Annotated[
    str | None,
    typer.Option(
        "--field",
        metavar="NAME",
        help="Print only this field of the answer, bare (for shell variables).",
        show_default=False,
    ),
]
WideOpt = Annotated[bool, typer.Option("--wide", help="Show ids whole, however wide the table.")]
SinceOpt = Annotated[
    str | None,
    typer.Option(
        "--since",
        metavar="TIME",
        help="RFC 3339 (2026-01-01T00:00:00Z) or an age like 30m, 2h, 7d; inclusive.",
        show_default=False,
    ),
]
UntilOpt = Annotated[
    str | None,
    typer.Option(
        "--until",
        metavar="TIME",
        help="RFC 3339 or an age like 30m; exclusive.",
        show_default=False,
    ),
]
LimitOpt = Annotated[int, typer.Option("--limit", min=1, metavar="N", help="At most this many.")]

AGE = re.compile(r"(\d+)([smhd])")
AGE_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def call(url: str, key: str | None, work: Callable[[ApiClient], Awaitable[T]]) -> T:
    """Run `work` with a client; any ClientError becomes its lines on stderr and an exit code."""

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


def fail(message: str, code: int = 2) -> typer.Exit:
    err.print(f"error: {message}", markup=False, soft_wrap=True)
    return typer.Exit(code)


def guarded(build: Callable[[], T]) -> T:
    """Run a local step that may raise UsageError (reading files, parsing options, printing a
    field the answer does not have)."""
    try:
        return build()
    except ClientError as exc:
        raise fail(str(exc), exc.exit_code) from None


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


def time_option(value: str | None, now: float) -> str | None:
    """An RFC 3339 time as given, or an age (`30m`, `2h`, `7d`) as the RFC 3339 time that long
    before `now`; the API checks the RFC 3339 ones."""
    if value is None:
        return None
    age = AGE.fullmatch(value.strip())
    if age is None:
        return value
    seconds = int(age.group(1)) * AGE_SECONDS[age.group(2)]
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now - seconds))


def shown(answer: Any, as_json: bool, field: str | None) -> bool:
    """`output.emit` for a command: True when `--json` or `--field` printed the answer."""
    from tidings.cli.output import emit

    return guarded(lambda: emit(answer, as_json, field))


def show_items(
    items: list[dict[str, Any]],
    row: Callable[[dict[str, Any]], list[str]],
    columns: list[str],
    *,
    empty: str,
    as_json: bool,
    wide: bool,
    ids: tuple[int, ...] = (0,),
) -> None:
    """A list command's answer: `{"items": [...]}` as JSON, or a table of one row per item."""
    from tidings.cli.output import show_table

    if not shown({"items": items}, as_json, None):
        show_table(columns, [row(item) for item in items], empty=empty, ids=ids, wide=wide)
