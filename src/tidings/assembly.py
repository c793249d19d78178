"""Assembles a running tidings process from Settings: store, catalog, publisher, API and worker.

`serve` runs API and worker in one process (the embedded default), `api` and `worker` run one
role each (PostgreSQL, any number of each). Settings are read here and handed down explicitly.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import gc
import logging
import os
import secrets
import signal
import socket
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tidings.clock import system_clock
from tidings.config import Settings
from tidings.ids import new_id
from tidings.models import ApiKey, KeyKind
from tidings.store.base import Store, StoreError
from tidings.store.connect import open_store

if TYPE_CHECKING:  # imported where used: `tidings worker` never loads FastAPI, nor `api` aiohttp
    from fastapi import FastAPI

    from tidings.catalog import Catalog
    from tidings.delivery import Worker
    from tidings.health_port import HealthPort
    from tidings.publishing import EventPublisher
    from tidings.secret_box import SecretBox

log = logging.getLogger("tidings.service")

PLATFORM_KEY_FILE = "platform-key"
ENCRYPTION_KEY_FILE = "encryption-key"
LISTEN_BACKLOG = 2048  # uvicorn's default


class ServiceError(RuntimeError):
    """The process cannot start (bad settings, database not migrated, ...)."""


def sqlite_data_dir(database_url: str) -> Path | None:
    """The directory of an SQLite database file (None for :memory: or other backends)."""
    if not database_url.startswith("sqlite"):
        return None
    path = database_url.split("://", 1)[1]
    if path in ("", ":memory:", "/:memory:"):
        return None
    if path.startswith("/"):
        path = path[1:]
    return Path(path).parent


def ensure_local_platform_key(settings: Settings) -> tuple[str, Path | None]:
    """For the embedded default: with no TIDINGS_PLATFORM_KEY, keep a generated one in a 0600
    file beside the database, so a newcomer can start with no setting at all. The key itself is
    never logged; only where it is kept."""
    if settings.platform_key:
        return settings.platform_key, None
    data_dir = sqlite_data_dir(settings.database_url)
    if data_dir is None:
        raise ServiceError("TIDINGS_PLATFORM_KEY must be set for this database")
    data_dir.mkdir(parents=True, exist_ok=True)
    key_path = data_dir / PLATFORM_KEY_FILE
    if key_path.exists():
        return key_path.read_text().strip(), key_path
    key = "tdk_platform_" + secrets.token_urlsafe(32)
    fd = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(key + "\n")
    return key, key_path


def secret_box(settings: Settings) -> SecretBox:
    """The endpoint secrets' key-encryption key: TIDINGS_ENCRYPTION_KEY (with the old keys of a
    rotation); on SQLite, unset, one generated into a 0600 file beside the database, like the
    platform key; on PostgreSQL it must be set (every process must share it). The key is never
    logged; only where it is kept."""
    from tidings.secret_box import SecretBox, SecretKeyError, new_key

    key = settings.encryption_key
    if not key:
        data_dir = sqlite_data_dir(settings.database_url)
        if data_dir is None:
            raise ServiceError(
                "TIDINGS_ENCRYPTION_KEY must be set for this database: every process must "
                "share it (make one with `tidings encryption new-key`)"
            )
        data_dir.mkdir(parents=True, exist_ok=True)
        key_path = data_dir / ENCRYPTION_KEY_FILE
        if key_path.exists():
            key = key_path.read_text().strip()
        else:
            key = new_key()
            fd = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as fh:
                fh.write(key + "\n")
    try:
        return SecretBox.from_texts(key, settings.encryption_keys_old)
    except SecretKeyError as exc:
        raise ServiceError(f"TIDINGS_ENCRYPTION_KEY: {exc}") from None


async def seal_secrets(store: Store, settings: Settings) -> int:
    """Encrypt endpoint secrets from now on, and re-wrap those stored plain (a database from
    before encryption) or under an old key (a rotation). A key that cannot open what is stored
    stops the process here, not at the first delivery. Answers how many endpoints were
    re-wrapped."""
    from tidings.secret_box import SecretKeyError

    store.use_secret_box(secret_box(settings))
    try:
        return await store.rewrap_secrets()
    except SecretKeyError as exc:
        raise ServiceError(f"cannot read the endpoint secrets: {exc}") from None


async def register_platform_key(store: Store, key: str) -> None:
    from tidings.auth import hash_key

    await store.ensure_platform_key(
        ApiKey(
            id=new_id("key"),
            kind=KeyKind.PLATFORM,
            organization_id=None,
            created_at=system_clock(),
        ),
        hash_key(key),
    )


async def open_ready_store(settings: Settings, *, migrate: bool) -> Store:
    """A connected store whose schema is this tidings' one. A database that cannot be opened is
    a ServiceError whose message names the setting, never the URL (it may hold a password)."""
    store = open_store(settings.database_url)
    try:
        await store.connect()
    except (StoreError, OSError) as exc:
        raise ServiceError(f"cannot open the database (TIDINGS_DATABASE_URL): {exc}") from exc
    if migrate:
        applied = await store.migrate()
        if applied:
            log.info("migrations applied", extra={"action": "migrate", "versions": applied})
    status = await store.migration_status()
    if not status.up_to_date:
        await store.close()
        raise ServiceError(
            f"database schema is at version {status.current}, this tidings needs "
            f"{status.latest}: run `tidings migrate`"
        )
    try:
        rewrapped = await seal_secrets(store, settings)
    except ServiceError:
        await store.close()
        raise
    if rewrapped:
        log.info(
            "endpoint secrets encrypted", extra={"action": "secrets.rewrap", "count": rewrapped}
        )
    return store


def default_worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"


def build_worker(
    settings: Settings, store: Store, catalog: Catalog, publisher: EventPublisher
) -> Worker:
    from tidings.delivery import HttpSender, Worker, WorkerSettings
    from tidings.delivery.metrics import DeliveryMetrics

    sender = HttpSender(
        timeout_seconds=settings.delivery_timeout_seconds,
        allow_private=settings.allow_private_urls,
        ca_bundle=settings.ca_bundle,
        fast_lane=settings.fast_lane,
    )
    worker_settings = WorkerSettings.from_settings(
        settings, worker_id=settings.worker_id or default_worker_id()
    )
    worker = Worker(
        store,
        catalog,
        publisher,
        sender,
        worker_settings,
        metrics=DeliveryMetrics.shared(settings.metrics_endpoints),
    )
    store.add_wakeup_listener(worker.wake)
    return worker


def build_app(
    settings: Settings, store: Store, catalog: Catalog, publisher: EventPublisher
) -> FastAPI:
    """The API with the browser console at /console (tidings.web)."""
    from tidings.api import create_app
    from tidings.delivery import metrics
    from tidings.web import with_console

    async def render_metrics() -> tuple[bytes, str]:
        shown = metrics.DeliveryMetrics.shared(settings.metrics_endpoints)
        return await metrics.render(store, system_clock(), shown)

    return with_console(create_app(settings, store, catalog, publisher, metrics=render_metrics))


@dataclass
class Roles:
    api: bool
    worker: bool


def bind_listener(host: str, port: int, *, reuse_port: bool = False) -> socket.socket:
    """The API's listening socket, bound before anything else starts, so that a busy port or a
    bad address is a ServiceError at once (uvicorn, binding by itself, logged the error and
    raised SystemExit inside its task, and the process never stopped)."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
        family = infos[0][0]
        sock = socket.socket(family, socket.SOCK_STREAM)
    except OSError as exc:
        raise ServiceError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from exc
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if reuse_port:
            # several `tidings api` processes listen on one port and the kernel spreads
            # connections over them (one process is one core of Python)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind(infos[0][4])
        sock.listen(LISTEN_BACKLOG)
    except OSError as exc:
        sock.close()
        hint = ""
        if exc.errno == errno.EADDRINUSE:
            hint = " (is another tidings running there? choose another with --port)"
        raise ServiceError(f"cannot listen on {host}:{port}: {exc.strerror or exc}{hint}") from exc
    sock.set_inheritable(True)
    return sock


class _QuietServer:
    """uvicorn.Server whose signal handling is ours (one stop event for API and worker), serving
    on a socket bound by `bind_listener`."""

    def __init__(self, app: Any, settings: Settings, sock: socket.socket) -> None:
        import uvicorn

        class Server(uvicorn.Server):
            @contextlib.contextmanager
            def capture_signals(self) -> Iterator[None]:
                yield

        config = uvicorn.Config(
            app,
            host=settings.host,
            port=settings.port,
            log_config=None,
            access_log=False,
            loop="none",
            lifespan="on",
            server_header=False,
            timeout_graceful_shutdown=10,
        )
        self.server = Server(config)
        self.sock = sock

    async def serve(self) -> None:
        try:
            await self.server.serve(sockets=[self.sock])
        except SystemExit as exc:
            # uvicorn exits this way when its start-up fails: a task must not raise SystemExit
            # (the loop would stop under the worker); the caller stops everything instead
            raise ServiceError("the HTTP server could not start") from exc
        finally:
            self.sock.close()

    def stop(self) -> None:
        self.server.should_exit = True


async def run(settings: Settings, roles: Roles, *, migrate: bool, reuse_port: bool = False) -> None:
    """Run until SIGINT/SIGTERM, then stop gracefully: the API stops taking requests and the
    worker finishes or releases what it holds. Whatever cannot start (the port, the database)
    raises ServiceError before anything runs; a role that dies stops the others, and its error
    is raised once they have stopped."""
    sock = bind_listener(settings.host, settings.port, reuse_port=reuse_port) if roles.api else None
    health_sock = None
    try:
        if roles.worker and not roles.api and settings.worker_health_port is not None:
            health_sock = bind_listener(settings.host, settings.worker_health_port)
        store = await open_ready_store(settings, migrate=migrate)
        try:
            await _run_roles(settings, roles, store, sock, health_sock)
        finally:
            try:
                await store.close()
            except StoreError:  # pragma: no cover - closing a broken connection
                log.warning("store close failed", extra={"action": "store.close"})
    finally:
        for s in (sock, health_sock):
            if s is not None:
                s.close()


async def _run_roles(
    settings: Settings,
    roles: Roles,
    store: Store,
    sock: socket.socket | None,
    health_sock: socket.socket | None = None,
) -> None:
    from tidings import tracing
    from tidings.catalog import Catalog
    from tidings.publishing import Publisher
    from tidings.table_statistics import run_analyze

    if tracing.configure_from_env():
        log.info("tracing on (OTEL_* variables)", extra={"action": "tracing.start"})
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    catalog = Catalog.load_default()
    publisher = Publisher(store, catalog)
    if roles.api:
        await _install_platform_key(settings, store)
    tasks: list[asyncio.Task[None]] = []
    server: _QuietServer | None = None
    health: HealthPort | None = None
    # every process, API or worker: the publish's plans are the ones that need fresh statistics
    statistics = asyncio.create_task(run_analyze(store, stop), name="analyze")
    if roles.worker:
        worker = build_worker(settings, store, catalog, publisher)
        await store.listen()
        worker_task = asyncio.create_task(worker.run(stop), name="worker")
        tasks.append(worker_task)
        if health_sock is not None:
            health = await start_health_port(settings, store, health_sock, worker_task)
    if sock is not None:
        server = _QuietServer(build_app(settings, store, catalog, publisher), settings, sock)
        tasks.append(asyncio.create_task(server.serve(), name="api"))
        log.info(
            "listening",
            extra={"action": "api.listen", "url": f"http://{settings.host}:{settings.port}"},
        )
    settle_heap()
    stop_wait = asyncio.create_task(stop.wait())
    done, _ = await asyncio.wait([*tasks, stop_wait], return_when=asyncio.FIRST_COMPLETED)
    stop.set()
    if server is not None:
        server.stop()
    await asyncio.gather(*tasks, statistics, return_exceptions=True)
    if health is not None:
        await health.stop()
    tracing.shutdown()
    for task in done:
        if task is not stop_wait and task.exception() is not None:
            raise task.exception()  # type: ignore[misc]


async def start_health_port(
    settings: Settings, store: Store, sock: socket.socket, worker_task: asyncio.Task[None]
) -> HealthPort:
    """A worker-only process's /healthz, /readyz and /metrics (TIDINGS_WORKER_HEALTH_PORT)."""
    from tidings.delivery import metrics
    from tidings.health_port import HealthPort, health_app

    async def render_metrics() -> tuple[bytes, str]:
        shown = metrics.DeliveryMetrics.shared(settings.metrics_endpoints)
        return await metrics.render(store, system_clock(), shown)

    app = health_app(
        store, render_metrics, settings.metrics_token, alive=lambda: not worker_task.done()
    )
    port = HealthPort(app, sock)
    await port.start()
    log.info(
        "health port listening",
        extra={
            "action": "worker.health_port",
            "url": f"http://{settings.host}:{settings.worker_health_port}",
        },
    )
    return port


async def _install_platform_key(settings: Settings, store: Store) -> None:
    if settings.is_sqlite:
        key, key_path = ensure_local_platform_key(settings)
        if key_path is not None:
            print(f"platform key: kept in {key_path} (cat it to use the API)", flush=True)
    else:
        key = settings.platform_key or ""
    if key:
        await register_platform_key(store, key)


async def create_platform_key_in_database(
    settings: Settings,
    *,
    name: str | None = None,
    scope: str | None = None,
    expiresAt: str | None = None,
) -> dict[str, Any]:
    """A platform key written straight into the database (`tidings keys create --platform`):
    the way back in when no platform key works; run where the database is. Answers what
    `POST /v1/api-keys` answers."""
    from tidings.auth import make_key
    from tidings.clock import to_rfc3339
    from tidings.errors import ValidationFailed, time_at
    from tidings.models import SCOPES_OF_KIND, KeyScope
    from tidings.services import keys

    allowed = [str(s) for s in SCOPES_OF_KIND["platform"]]
    if scope is not None and scope not in allowed:
        raise ValidationFailed.at("--scope", f"must be one of {', '.join(allowed)}")
    expires = time_at(expiresAt, "--expires")
    store = await open_ready_store(settings, migrate=False)
    try:
        now = system_clock()
        key = make_key(
            KeyKind.PLATFORM,
            None,
            now,
            name=name,
            scope=None if scope is None else KeyScope(scope),
            expires_at=expires,
        )
        entry = keys.key_entry(keys.LOCAL_ACTOR, "key.create", key.record, now)
        await store.create_api_key(key.record, key.key_hash, entry)
    finally:
        await store.close()
    return {
        "id": key.record.id,
        "apiKey": key.api_key,
        "name": name,
        "scope": str(key.record.effective_scope),
        "prefix": key.record.prefix,
        "createdAt": to_rfc3339(now),
        "expiresAt": None if expires is None else to_rfc3339(expires),
    }


async def rotate_secrets(settings: Settings) -> int:
    """`tidings encryption rotate`: re-wrap every endpoint secret under TIDINGS_ENCRYPTION_KEY,
    opening them with it or TIDINGS_ENCRYPTION_KEYS_OLD; safe while the service runs (each row
    is rewritten only if unchanged since read). Answers how many endpoints were re-wrapped."""
    store = open_store(settings.database_url)
    try:
        await store.connect()
    except (StoreError, OSError) as exc:
        raise ServiceError(f"cannot open the database (TIDINGS_DATABASE_URL): {exc}") from exc
    try:
        return await seal_secrets(store, settings)
    finally:
        await store.close()


async def migrate_only(settings: Settings) -> list[int]:
    store = open_store(settings.database_url)
    await store.connect()
    try:
        return await store.migrate()
    finally:
        await store.close()


def settle_heap() -> None:
    """Once started: move everything alive (the catalog's validators, the app, the imported
    modules) out of the cyclic collector's view, so a full collection walks only what requests
    create. Full collections of the unfrozen heap stalled the API and the worker for 30-55 ms
    each (seen with gc.callbacks during the latency bench)."""
    gc.collect()
    gc.freeze()


def install_uvloop() -> None:
    try:
        import uvloop
    except ImportError:  # pragma: no cover
        return
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
