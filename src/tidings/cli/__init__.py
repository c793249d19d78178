"""The `tidings` command. Process commands (serve, api, worker, migrate) live in `server.py`;
commands over the HTTP API live in one module per resource (`orgs.py`: orgs, partners, keys;
`events.py`; `endpoints.py`; `deliveries.py`: deliveries, replay, state; `audit.py`), sharing
`options.py` (the options, the client call) and `output.py` (tables, JSON); `listen.py` and
`demo.py` are the local receiver and the demo. Each registers itself on `app` here."""

from __future__ import annotations

import importlib

import typer

from tidings import __version__
from tidings.cli import helpfmt

helpfmt.install()

app = typer.Typer(
    name="tidings",
    help="Self-hosted webhooks for compliance, KYC and onboarding platforms.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _print_version(value: bool) -> None:
    if value:
        typer.echo(f"tidings {__version__}")
        raise typer.Exit()


@app.callback()
def main_options(
    version: bool = typer.Option(
        False,
        "--version",
        callback=_print_version,
        is_eager=True,
        help="Print the version and exit.",
    ),
) -> None:
    """Self-hosted webhooks for compliance, KYC and onboarding platforms."""


# Each module adds its commands to `app` when imported; a module that is not there yet is skipped.
_COMMAND_MODULES = (
    "server",
    "orgs",
    "events",
    "endpoints",
    "deliveries",
    "audit",
    "listen",
    "demo",
)
for _name in _COMMAND_MODULES:
    try:
        importlib.import_module(f"tidings.cli.{_name}")
    except ModuleNotFoundError as exc:  # pragma: no cover - only while a module is missing
        if exc.name != f"tidings.cli.{_name}":
            raise


def main() -> None:
    app()
