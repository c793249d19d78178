"""`tidings listen`: a local receiver that verifies and pretty-prints what tidings delivers.

It is the receiver SDK at work (`tidings.receiver`): each request is verified with the format's
signature scheme when it has secrets (`--secret`, or with `--key` those of the organization's
endpoints that point at it: `fetched_secrets.py`; the format comes from `--format` or from the
signature header present), parsed into a `WebhookEvent`, checked against its typed model, and
deduplicated on the event id. Answers: 200 (also for a duplicate), 401 for a signature that
does not verify, 400 for a body that is not an event of the format, 500 for the first
`--fail-first` requests (to watch tidings retry).

`ReceiverRoute`, `Received` and `make_app` are reused by `tidings demo`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
import sys
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Annotated, Any

import typer
from aiohttp import web
from rich.console import Console
from rich.markup import escape

from tidings.cli import app
from tidings.cli.apiclient import DEFAULT_URL, ClientError, ConnectionFailed
from tidings.cli.fetched_secrets import FetchedSecrets
from tidings.cli.options import UrlOpt
from tidings.receiver import (
    FORMATS,
    Deduplicator,
    MemoryLRUStore,
    Verifier,
    WebhookEvent,
    WebhookPayloadError,
    WebhookVerificationError,
    parse,
)
from tidings.receiver.events import ATTEMPT_HEADER, DELIVERY_ID_HEADER

SIGNATURE_HEADERS = (
    ("x-novatrade-signature", "novatrade"),
    ("x-dlt-signature", "dlt"),
    ("webhook-signature", "standard"),
)
DEFAULT_PORT = 4000


def detect_format(headers: Mapping[str, str]) -> str | None:
    """The wire format whose signature header the request carries (None: no known header)."""
    lowered = {name.lower() for name in headers}
    for header, fmt in SIGNATURE_HEADERS:
        if header in lowered:
            return fmt
    return None


def secrets_for(fmt: str, secrets: list[str]) -> list[str]:
    """The secrets usable for `fmt`: whsec_ ones for standard, the others for novatrade/dlt."""
    if fmt == "standard":
        return [s for s in secrets if s.startswith("whsec_")]
    return [s for s in secrets if not s.startswith("whsec_")]


@dataclass
class Received:
    """One request as the receiver saw it, and what it answered."""

    number: int
    path: str
    format: str | None
    verified: bool | None  # None: no secret, not checked
    reason: str | None  # why it was refused (or why it was not checked)
    event: WebhookEvent | None
    typed: str | None  # the typed model class name, when the type has one
    duplicate: bool
    status: int
    delivery_id: str | None
    attempt: int | None
    received_at: float = field(default_factory=time.time)

    def as_json(self) -> dict[str, Any]:
        e = self.event
        return {
            "number": self.number,
            "path": self.path,
            "format": self.format,
            "verified": self.verified,
            "reason": self.reason,
            "status": self.status,
            "duplicate": self.duplicate,
            "deliveryId": self.delivery_id,
            "attempt": self.attempt,
            "eventId": e.id if e else None,
            "type": e.type if e else None,
            "schemaVersion": e.schema_version if e else None,
            "typed": self.typed,
            "data": e.data if e else None,
        }


@dataclass
class ReceiverRoute:
    """How one path receives: its format (None: detect from the headers), its secrets (empty:
    do not verify) and how many requests to fail on purpose first."""

    fmt: str | None = None
    secrets: list[str] = field(default_factory=list)
    fail_first: int = 0
    answer_status: int | None = None  # answer this to every verified request (e.g. 410)
    tolerance_seconds: float = 300.0
    dedup: Deduplicator = field(default_factory=lambda: Deduplicator(MemoryLRUStore()))
    failed_so_far: int = 0
    # fetch the secrets again (`tidings listen --key`); True when worth checking again
    refresh: Callable[[], Awaitable[bool]] | None = None

    @property
    def verifying(self) -> bool:
        return bool(self.secrets) or self.refresh is not None

    def check(
        self, body: bytes, headers: Mapping[str, str]
    ) -> tuple[str | None, bool | None, str | None, WebhookEvent | None]:
        """(format, verified, reason, event): verify when there are secrets, then parse."""
        fmt = self.fmt or detect_format(headers)
        verifying = self.verifying
        if fmt is None:
            return None, False if verifying else None, "no tidings signature header", None
        verified: bool | None = None
        try:
            if verifying:
                usable = secrets_for(fmt, self.secrets)
                if not usable:
                    return fmt, False, f"no secret for the {fmt} format", None
                event = Verifier(fmt, usable, self.tolerance_seconds).verify_and_parse(
                    body, headers
                )
                verified = True
            else:
                event = parse(fmt, body, headers)
        except WebhookPayloadError as exc:
            return fmt, True if verifying else None, exc.reason + ": " + exc.message, None
        except WebhookVerificationError as exc:
            return fmt, False, exc.reason + ": " + exc.message, None
        return fmt, verified, None if verified else "not verified (no secret)", event

    async def check_fresh(
        self, body: bytes, headers: Mapping[str, str]
    ) -> tuple[str | None, bool | None, str | None, WebhookEvent | None]:
        """`check`, and once more with fetched secrets when it did not verify."""
        checked = self.check(body, headers)
        if checked[1] is False and self.refresh is not None and await self.refresh():
            checked = self.check(body, headers)
        return checked


def _typed_name(event: WebhookEvent) -> tuple[str | None, str | None]:
    """(typed class name, problem): the data checked against the SDK's typed model."""
    try:
        typed = event.typed
    except WebhookPayloadError as exc:
        return None, exc.message
    return (type(typed).__name__ if typed is not None else None), None


def _int_header(headers: Mapping[str, str], name: str) -> int | None:
    value = headers.get(name)
    return int(value) if value is not None and value.strip().isdigit() else None


def make_app(
    routes: Mapping[str, ReceiverRoute],
    on_received: Callable[[Received], None],
    default: ReceiverRoute | None = None,
) -> web.Application:
    """An aiohttp app answering POSTs on `routes` (path -> route; `default` for other paths)."""
    counter = {"n": 0}

    async def handle(request: web.Request) -> web.Response:
        route = routes.get(request.path, default)
        if route is None:
            return web.json_response({"error": "no receiver on this path"}, status=404)
        body = await request.read()
        headers = dict(request.headers)
        counter["n"] += 1
        fmt, verified, reason, event = await route.check_fresh(body, headers)
        typed = None
        duplicate = False
        if verified is False:
            status = 401
        elif event is None:
            status = 400
        elif route.failed_so_far < route.fail_first:
            route.failed_so_far += 1
            status = 500
            reason = f"failing on purpose ({route.failed_so_far} of {route.fail_first})"
        elif route.answer_status is not None:
            status = route.answer_status
            reason = f"answering {status} on purpose"
        else:
            typed, problem = _typed_name(event)
            if problem is not None:
                reason = f"data does not fit its typed model: {problem}"
            duplicate = route.dedup.is_duplicate(event)
            status = 200
        received = Received(
            number=counter["n"],
            path=request.path,
            format=fmt,
            verified=verified,
            reason=reason,
            event=event,
            typed=typed,
            duplicate=duplicate,
            status=status,
            delivery_id=request.headers.get(DELIVERY_ID_HEADER),
            attempt=_int_header(request.headers, ATTEMPT_HEADER),
        )
        on_received(received)
        if status == 200:
            return web.json_response({"received": True, "duplicate": duplicate})
        return web.json_response({"error": reason}, status=status)

    async def index(request: web.Request) -> web.Response:
        return web.Response(text="tidings listen: POST webhooks here\n")

    application = web.Application()
    application.router.add_get("/{tail:.*}", index)
    application.router.add_post("/{tail:.*}", handle)
    return application


FORMAT_STYLE = {"novatrade": "cyan", "dlt": "magenta", "standard": "blue"}


def describe(
    received: Received, *, show_data: bool = True, label: str | None = None, show_id: bool = True
) -> str:
    """One rich-markup block for a request: when, how verified, format, type, id, answer."""
    clock = time.strftime("%H:%M:%S", time.localtime(received.received_at))
    if received.verified is True:
        check = "[green]✓ verified[/green]"
    elif received.verified is False:
        check = "[red]✗ rejected[/red]"
    else:
        check = "[yellow]? unverified[/yellow]"
    fmt = received.format or "?"
    style = FORMAT_STYLE.get(fmt, "white")
    answer_style = "green" if received.status < 300 else "red"
    e = received.event
    parts = [f"[dim]{clock}[/dim]", check, f"[{style}]{fmt:<9}[/{style}]"]
    if label:
        parts.append(f"[dim]{escape(label)}[/dim]")
    if e is not None:
        parts.append(f"[bold]{escape(e.type)}[/bold]")
        if show_id:
            parts.append(f"[dim]{escape(e.id)}[/dim]")
    if received.attempt is not None:
        parts.append(f"attempt {received.attempt}")
    parts.append(f"→ [{answer_style}]{received.status}[/{answer_style}]")
    if received.duplicate:
        parts.append("[yellow](duplicate: already handled)[/yellow]")
    lines = [" ".join(parts)]
    if received.reason and (received.verified is not None or received.status >= 300):
        lines.append(f"           [dim]{escape(received.reason)}[/dim]")
    if show_data and e is not None and received.status < 300:
        data = json.dumps(e.data, ensure_ascii=False, separators=(", ", ": "))
        if len(data) > 160:
            data = data[:157] + "..."
        lines.append(f"           [dim]{escape(data)}[/dim]")
    return "\n".join(lines)


async def serve_until_stopped(
    application: web.Application, host: str, port: int, on_ready: Callable[[], None]
) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    runner = web.AppRunner(application, access_log=None)
    await runner.setup()
    try:
        site = web.TCPSite(runner, host, port)
        await site.start()
        on_ready()
        await stop.wait()
    finally:
        await runner.cleanup()


ListenKeyOpt = Annotated[
    str | None,
    typer.Option(
        "--key",
        envvar="TIDINGS_KEY",
        metavar="KEY",
        help="An organization key: verify with the secrets of its endpoints that point here "
        "(fetched again when a delivery does not verify: a new endpoint, a rotation).",
        show_envvar=True,
        show_default=False,
    ),
]


@app.command("listen")
def listen(
    port: Annotated[
        int, typer.Option("--port", "-p", metavar="PORT", help="Port to listen on.")
    ] = DEFAULT_PORT,
    host: Annotated[
        str, typer.Option("--host", metavar="ADDRESS", help="Address to listen on.")
    ] = "127.0.0.1",
    secret: Annotated[
        list[str] | None,
        typer.Option(
            "--secret",
            "-s",
            envvar="TIDINGS_LISTEN_SECRET",
            metavar="SECRET",
            help="An endpoint secret to verify with; repeat it for several endpoints or "
            "during a rotation.",
            show_default=False,
        ),
    ] = None,
    key: ListenKeyOpt = None,
    url: UrlOpt = DEFAULT_URL,
    fmt: Annotated[
        str | None,
        typer.Option(
            "--format",
            metavar="FORMAT",
            help="novatrade | dlt | standard",
            show_default="detected from the signature header",
        ),
    ] = None,
    fail_first: Annotated[
        int,
        typer.Option(
            "--fail-first", min=0, metavar="N", help="Answer 500 to the first N requests."
        ),
    ] = 0,
    tolerance: Annotated[
        float,
        typer.Option("--tolerance", min=0, metavar="SECONDS", help="How old a signature may be."),
    ] = 300.0,
    show_data: Annotated[
        bool, typer.Option("--data/--no-data", help="Print each event's data.")
    ] = True,
    as_json: Annotated[
        bool, typer.Option("--json", help="One JSON line per request (for scripts).")
    ] = False,
) -> None:
    """Run a local receiver that verifies and pretty-prints what tidings delivers."""
    if fmt is not None and fmt not in FORMATS:
        typer.echo(f"error: --format must be one of {', '.join(FORMATS)}, not {fmt!r}", err=True)
        raise typer.Exit(2)
    given = list(secret or [])
    if fmt is not None and given and not secrets_for(fmt, given):
        typer.echo(f"error: none of the --secret values is a {fmt} secret", err=True)
        raise typer.Exit(2)
    route = ReceiverRoute(
        fmt=fmt, secrets=list(given), fail_first=fail_first, tolerance_seconds=tolerance
    )
    fetched = None
    if key:
        fetched = FetchedSecrets(url, key, host, port, route.secrets, given)
        route.refresh = fetched.refresh
    console = Console(highlight=False, soft_wrap=True)
    counts = {"received": 0, "verified": 0, "rejected": 0}

    def on_received(received: Received) -> None:
        counts["received"] += 1
        if received.verified is True:
            counts["verified"] += 1
        elif received.verified is False:
            counts["rejected"] += 1
        if as_json:
            sys.stdout.write(json.dumps(received.as_json(), ensure_ascii=False) + "\n")
            sys.stdout.flush()
        else:
            console.print(describe(received, show_data=show_data))

    def on_ready() -> None:
        message = f"listening on http://{host}:{port}/ (any path), {_how(route, fetched)}"
        if as_json:
            sys.stderr.write(message + "\n")
            sys.stderr.flush()
        else:
            console.print(f"[bold]{escape(message)}[/bold]")

    async def main() -> None:
        if fetched is not None:
            await _first_fetch(fetched)
        await serve_until_stopped(make_app({}, on_received, route), host, port, on_ready)

    try:
        asyncio.run(main())
    except OSError as exc:
        typer.echo(f"error: cannot listen on {host}:{port}: {exc.strerror or exc}", err=True)
        raise typer.Exit(1) from None
    summary = (
        f"stopped: {counts['received']} requests, {counts['verified']} verified, "
        f"{counts['rejected']} rejected"
    )
    typer.echo(summary, err=as_json)


def _how(route: ReceiverRoute, fetched: FetchedSecrets | None) -> str:
    if fetched is None:
        if route.secrets:
            return f"verifying with {len(route.secrets)} secret(s); Ctrl-C stops"
        return "not verifying (give --key or --secret to check signatures); Ctrl-C stops"
    if fetched.problem is not None:
        return f"verifying, but the secrets could not be fetched yet ({fetched.problem})"
    return (
        f"verifying with the secrets of {fetched.endpoints} endpoint(s) pointing here "
        "(fetched again when a delivery does not verify); Ctrl-C stops"
    )


async def _first_fetch(fetched: FetchedSecrets) -> None:
    """A key the API refuses is a usage error; a server not running yet is not (the secrets
    are fetched at the first delivery)."""
    try:
        await fetched.fetch()
    except ConnectionFailed as exc:
        fetched.problem = str(exc)
    except ClientError as exc:
        typer.echo(f"error: --key cannot read the endpoints' secrets: {exc.line}", err=True)
        raise typer.Exit(2) from None
