"""The `tidings` command. Process commands (serve, api, worker, migrate) live in `server.py`;
commands over the HTTP API (orgs, endpoints, events, deliveries, replay, listen, demo) live in
their own modules and register themselves on `app` here."""

from __future__ import annotations

import importlib

import typer

app = typer.Typer(
    name="tidings",
    help="Self-hosted webhooks for compliance, KYC and onboarding platforms.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

# Each module adds its commands to `app` when imported; a module that is not there yet is skipped.
_COMMAND_MODULES = ("server", "client", "listen", "demo")
for _name in _COMMAND_MODULES:
    try:
        importlib.import_module(f"tidings.cli.{_name}")
    except ModuleNotFoundError as exc:  # pragma: no cover - only while a module is missing
        if exc.name != f"tidings.cli.{_name}":
            raise


def main() -> None:
    app()
