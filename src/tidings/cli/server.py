"""Process commands: serve (API + worker, embedded default), api, worker, migrate."""

from __future__ import annotations

import asyncio
import sys
from typing import Annotated

import typer

from tidings.cli import app
from tidings.config import Settings, SettingsError
from tidings.log_setup import configure_logging


def _settings(host: str | None = None, port: int | None = None) -> Settings:
    try:
        settings = Settings.from_env()
    except SettingsError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from exc
    if host is not None or port is not None:
        from dataclasses import replace

        settings = replace(
            settings,
            host=host if host is not None else settings.host,
            port=port if port is not None else settings.port,
        )
    configure_logging(settings.log_format, settings.log_level)
    return settings


def _run(
    settings: Settings, *, api: bool, worker: bool, migrate: bool, reuse_port: bool = False
) -> None:
    from tidings.assembly import Roles, ServiceError, install_uvloop, run
    from tidings.store.base import StoreError

    install_uvloop()
    try:
        asyncio.run(
            run(settings, Roles(api=api, worker=worker), migrate=migrate, reuse_port=reuse_port)
        )
    except (ServiceError, StoreError) as exc:
        # one line and a non-zero exit: whatever stopped it was logged where it happened
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None
    except KeyboardInterrupt:  # pragma: no cover - second Ctrl-C
        sys.exit(130)


# Settings read these from TIDINGS_HOST / TIDINGS_PORT; the options override them.
HostOpt = Annotated[
    str | None,
    typer.Option(
        "--host",
        metavar="ADDRESS",
        help="Address to listen on (or TIDINGS_HOST)",
        show_default="127.0.0.1",
    ),
]
PortOpt = Annotated[
    int | None,
    typer.Option(
        "--port", metavar="PORT", help="Port to listen on (or TIDINGS_PORT)", show_default="8080"
    ),
]

DEV_NOTE = (
    "dev mode: endpoints on this machine and on private networks are allowed "
    "(TIDINGS_ALLOW_PRIVATE_URLS=true); never in production"
)


@app.command()
def serve(
    host: HostOpt = None,
    port: PortOpt = None,
    dev: bool = typer.Option(
        False,
        "--dev",
        help="For trying tidings on one machine: allow endpoints on local and private "
        "addresses, http:// included (TIDINGS_ALLOW_PRIVATE_URLS=true)",
    ),
) -> None:
    """Run the API and the delivery worker in one process (migrates an embedded database)."""
    settings = _settings(host, port)
    if dev:
        from dataclasses import replace

        settings = replace(settings, allow_private_urls=True)
        typer.echo(DEV_NOTE)
    _run(settings, api=True, worker=True, migrate=settings.is_sqlite)


@app.command()
def api(
    host: HostOpt = None,
    port: PortOpt = None,
    reuse_port: bool = typer.Option(
        False,
        "--reuse-port",
        help="Share the port with other `tidings api --reuse-port` processes on this machine "
        "(SO_REUSEPORT: the kernel spreads connections over them)",
    ),
) -> None:
    """Run only the HTTP API (any number of these share one PostgreSQL)."""
    settings = _settings(host, port)
    if reuse_port and settings.is_sqlite:
        typer.echo("error: --reuse-port needs PostgreSQL (SQLite has one writer)", err=True)
        raise typer.Exit(2)
    _run(settings, api=True, worker=False, migrate=False, reuse_port=reuse_port)


@app.command()
def worker() -> None:
    """Run only the delivery worker (any number of these share one PostgreSQL)."""
    settings = _settings()
    _run(settings, api=False, worker=True, migrate=settings.is_sqlite)


@app.command()
def migrate() -> None:
    """Apply pending database migrations."""
    from tidings.assembly import install_uvloop, migrate_only

    settings = _settings()
    install_uvloop()
    applied = asyncio.run(migrate_only(settings))
    typer.echo(f"applied migrations: {applied}" if applied else "database is up to date")


encryption_app = typer.Typer(
    help="The key that encrypts endpoint secrets at rest (TIDINGS_ENCRYPTION_KEY).",
    no_args_is_help=True,
)
app.add_typer(encryption_app, name="encryption")


@encryption_app.command("new-key")
def encryption_new_key() -> None:
    """Print a new key-encryption key (base64 of 32 random bytes) for TIDINGS_ENCRYPTION_KEY."""
    from tidings.secret_box import new_key

    typer.echo(new_key())


@encryption_app.command("rotate")
def encryption_rotate() -> None:
    """Re-wrap every endpoint secret under TIDINGS_ENCRYPTION_KEY. During a rotation set the
    new key as TIDINGS_ENCRYPTION_KEY and the old one in TIDINGS_ENCRYPTION_KEYS_OLD on every
    process (restart them), run this once, then drop the old key. Safe while the service runs."""
    from tidings.assembly import ServiceError, install_uvloop, rotate_secrets

    settings = _settings()
    install_uvloop()
    try:
        count = asyncio.run(rotate_secrets(settings))
    except ServiceError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None
    typer.echo(f"endpoint secrets re-wrapped under the current key: {count} endpoints")
