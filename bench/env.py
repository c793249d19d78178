"""What the scenarios share: fresh databases, a tenant with endpoints, bulk publishing through
the real Publisher, tidings processes (`worker`, `serve`, `api`), and waiting for deliveries."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tidings.auth import hash_key
from tidings.catalog import Catalog
from tidings.filters import compile_filter
from tidings.ids import new_id
from tidings.models import ApiKey, Endpoint, EndpointSecret, KeyKind, Organization
from tidings.publishing import Publisher
from tidings.signing import generate_secret
from tidings.store.base import Store
from tidings.store.connect import open_store

PG_ADMIN_URL = os.environ.get(
    "TIDINGS_BENCH_PG_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)
PLATFORM_KEY = "tdk_platform_bench_" + uuid.uuid4().hex
REPO = Path(__file__).resolve().parent.parent
TIDINGS = str(Path(sys.executable).with_name("tidings"))
PAD = "x" * 820  # makes a compliance.status_changed v2 body about 1 KiB on the wire


def pg_url(database: str) -> str:
    return PG_ADMIN_URL.rsplit("/", 1)[0] + "/" + database


async def admin_sql(sql: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(PG_ADMIN_URL)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


@contextlib.asynccontextmanager
async def fresh_database(backend: str) -> AsyncIterator[str]:
    """A new, migrated database URL, dropped (or deleted) afterwards."""
    if backend == "postgres":
        name = f"tidings_bench_{os.getpid()}_{uuid.uuid4().hex[:8]}"
        await admin_sql(f'CREATE DATABASE "{name}"')
        url = pg_url(name)
        cleanup: Any = lambda: admin_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')  # noqa: E731
    else:
        folder = tempfile.mkdtemp(prefix="tidings-bench-sqlite-")
        url = f"sqlite:///{folder}/tidings.db"

        async def cleanup() -> None:
            shutil.rmtree(folder, ignore_errors=True)

    store = open_store(url)
    await store.connect()
    try:
        await store.migrate()
    finally:
        await store.close()
    try:
        yield url
    finally:
        await cleanup()


@contextlib.asynccontextmanager
async def connected(url: str) -> AsyncIterator[Store]:
    store = open_store(url)
    await store.connect()
    try:
        yield store
    finally:
        await store.close()


@dataclass
class Tenant:
    org_id: str
    org_key: str
    endpoint_ids: list[str]


async def make_tenant(
    store: Store,
    urls: list[str],
    fmt: str = "novatrade",
    event_filter: dict[str, Any] | None = None,
    ordering: str = "none",
) -> Tenant:
    now = time.time()
    org_id = str(uuid.uuid4())
    org_key = "tdk_org_bench_" + uuid.uuid4().hex
    await store.create_organization(
        Organization(org_id, "bench", now),
        ApiKey(new_id("key"), KeyKind.ORGANIZATION, org_id, now),
        hash_key(org_key),
    )
    await store.ensure_platform_key(
        ApiKey(new_id("key"), KeyKind.PLATFORM, None, now), hash_key(PLATFORM_KEY)
    )
    ids = []
    for url in urls:
        endpoint = Endpoint(
            id=new_id("ep"),
            organization_id=org_id,
            url=url,
            event_types=("compliance.*",),
            format=fmt,
            secrets=(EndpointSecret(generate_secret(fmt), now),),
            created_at=now,
            updated_at=now,
            filter=None if event_filter is None else compile_filter(event_filter),
            ordering=ordering,
        )
        await store.create_endpoint(endpoint)
        ids.append(endpoint.id)
    return Tenant(org_id, org_key, ids)


def envelope(org_id: str, n: int) -> dict[str, Any]:
    return {
        "type": "compliance.status_changed",
        "schemaVersion": 2,
        "source": "SYSTEM",
        "organizationUuid": org_id,
        "data": {
            "orderId": f"ord_{n}",
            "previousStatus": "INCOMPLETE",
            "status": "VALID",
            "reason": PAD,
            "changedBy": {"kind": "SYSTEM", "id": None},
            "changedAt": "2026-01-01T00:00:00Z",
        },
    }


# the n-th event of an organization's bench workload (`envelope` unless a scenario says)
MakeEnvelope = Callable[[str, int], dict[str, Any]]


async def bulk_publish(
    store: Store, org_id: str, count: int, batch: int = 500, make: MakeEnvelope = envelope
) -> None:
    publisher = Publisher(store, Catalog.load_default())
    for start in range(0, count, batch):
        envelopes = [make(org_id, n) for n in range(start, min(count, start + batch))]
        results = await publisher.publish_batch(envelopes)
        bad = [r for r in results if isinstance(r, Exception)]
        if bad:
            raise RuntimeError(f"bench publish failed: {bad[0]}")


@contextlib.asynccontextmanager
async def published_database(
    backend: str,
    urls: list[str],
    events: int,
    *,
    ordering: str = "none",
    make: MakeEnvelope = envelope,
) -> AsyncIterator[str]:
    """A fresh database (`fresh_database`) with one tenant whose endpoints are `urls` (each with
    `ordering`), `events` events (`make`) published to them through the real Publisher, then
    settled (`settle`)."""
    async with fresh_database(backend) as url:
        async with connected(url) as store:
            tenant = await make_tenant(store, urls, ordering=ordering)
            await bulk_publish(store, tenant.org_id, events, make=make)
        await settle(url)
        yield url


async def settle(url: str) -> None:
    """After bulk setup: VACUUM ANALYZE and CHECKPOINT, so the timed part measures delivery, not
    the aftermath of the inserts (autovacuum and checkpoint storms racing the worker)."""
    if not url.startswith("postgres"):
        return
    import asyncpg

    conn = await asyncpg.connect(url)
    try:
        await conn.execute("VACUUM ANALYZE")
        await conn.execute("CHECKPOINT")
    finally:
        await conn.close()


# every bench process shares one key-encryption key (PostgreSQL needs it set)
ENCRYPTION_KEY = base64.urlsafe_b64encode(b"tidings bench key-encryption key").decode()


def tidings_env(url: str, **extra: str) -> dict[str, str]:
    env = {
        **os.environ,
        "TIDINGS_DATABASE_URL": url,
        "TIDINGS_ALLOW_PRIVATE_URLS": "true",
        "TIDINGS_LOG_LEVEL": "WARNING",
        "TIDINGS_PLATFORM_KEY": PLATFORM_KEY,
        "TIDINGS_ENCRYPTION_KEY": ENCRYPTION_KEY,
    }
    env.update(extra)
    return env


@contextlib.contextmanager
def tidings_process(
    args: list[str], env: dict[str, str], *, graceful: bool = True
) -> Iterator[subprocess.Popen[bytes]]:
    """A tidings process for the block; stopped with SIGTERM (a graceful stop) afterwards, or
    killed when `graceful` is false (its database is thrown away, and a worker with sends
    held open by a hanging receiver would wait out its shutdown grace)."""
    log = tempfile.NamedTemporaryFile(  # noqa: SIM115 - closed in finally
        prefix="tidings-bench-", suffix=".log", delete=False
    )
    process = subprocess.Popen(
        [TIDINGS, *args], env=env, stdout=log, stderr=subprocess.STDOUT, cwd=REPO
    )
    try:
        yield process
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM if graceful else signal.SIGKILL)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        log.close()
        os.unlink(log.name)


async def wait_http(url: str, timeout: float = 30.0) -> None:
    import aiohttp

    deadline = time.monotonic() + timeout
    async with aiohttp.ClientSession() as session:
        while time.monotonic() < deadline:
            with contextlib.suppress(aiohttp.ClientError, OSError):
                async with session.get(url + "/readyz") as r:
                    if r.status == 200:
                        return
            await asyncio.sleep(0.1)
    raise RuntimeError(f"{url} did not become ready")


class many_processes:
    """Several tidings processes at once (`tidings_process` each), stopped in reverse order."""

    def __init__(self, commands: list[list[str]], env: dict[str, str]) -> None:
        self.commands = commands
        self.env = env
        self.contexts: list[Any] = []

    def __enter__(self) -> many_processes:
        for command in self.commands:
            ctx = tidings_process(command, self.env)
            ctx.__enter__()
            self.contexts.append(ctx)
        return self

    def __exit__(self, *exc: object) -> None:
        for ctx in reversed(self.contexts):
            ctx.__exit__(None, None, None)


@dataclass
class Drain:
    delivered: int
    seconds: float  # from 1 % delivered to the target (startup excluded)

    @property
    def rate(self) -> float:
        return self.delivered / self.seconds if self.seconds > 0 else 0.0


class AttemptCounter:
    """How many attempts the workers have written so far: the attempts sequence (PostgreSQL) or
    max(seq) of `attempts` (SQLite), one look-up. Polling this instead of counting deliveries
    by status matters: that count scans every delivery (100,000 to 1,000,000 rows) on each
    poll and took a good share of the database's CPU away from the workers being measured.
    (The bench reads the table directly; the product's SQL stays in its store.)"""

    def __init__(self, url: str) -> None:
        self.url = url
        self._pg: Any = None
        self._sqlite: Any = None

    async def __aenter__(self) -> AttemptCounter:
        if self.url.startswith("postgres"):
            import asyncpg

            self._pg = await asyncpg.connect(self.url)
        else:
            import sqlite3

            path = self.url.removeprefix("sqlite:///")
            self._sqlite = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._pg is not None:
            await self._pg.close()
        if self._sqlite is not None:
            self._sqlite.close()

    async def count(self) -> int:
        if self._pg is not None:
            # attempts is partitioned by day (migration 0022) with no index on seq alone: the
            # sequence's last value is the same count without reading the table (it runs ahead
            # of what committed by at most the batches being written)
            row = await self._pg.fetchrow("SELECT last_value, is_called FROM attempts_seq_seq")
            return int(row["last_value"]) if row["is_called"] else 0
        sql = "SELECT coalesce(max(seq), 0) FROM attempts"
        return int(self._sqlite.execute(sql).fetchone()[0])


async def wait_delivered(
    store: Store,
    target: int,
    timeout: float,
    status: str = "succeeded",
    poll: float = 0.1,
    *,
    url: str,
) -> Drain:
    """Wait until `target` deliveries have `status`; the rate is measured from the moment 1 %
    had been attempted, so process start-up is not counted. Progress is polled cheaply (the
    attempts counter); the status count runs only once that counter says the target may be
    reached (where some attempts fail, e.g. isolation, it runs more than once)."""
    deadline = time.monotonic() + timeout
    first_mark = max(1, target // 100)
    t_first: float | None = None
    first_count = 0
    async with AttemptCounter(url) as attempts:
        while True:
            made = await attempts.count()
            now = time.monotonic()
            if t_first is None and made >= first_mark:
                t_first, first_count = now, made
            if made >= target:
                done = (await store.count_deliveries_by_status()).get(status, 0)
                if done >= target:
                    now = time.monotonic()
                    assert t_first is not None
                    return Drain(target - first_count, max(now - t_first, 1e-6))
            if now > deadline:
                done = (await store.count_deliveries_by_status()).get(status, 0)
                raise TimeoutError(f"{done}/{target} deliveries {status} after {timeout:.0f} s")
            await asyncio.sleep(poll)


def ceiling_rate(
    url: str, count: int, concurrency: int, *, client: str = "aiohttp", ca_file: str | None = None
) -> float:
    """The bare loop of `client` (bench.ceiling), in its own process."""
    import json

    extra = ["--client", client] + (["--ca", ca_file] if ca_file else [])
    out = subprocess.run(
        [sys.executable, "-m", "bench.ceiling", url, str(count), str(concurrency), *extra],
        capture_output=True,
        check=True,
        cwd=REPO,
        timeout=600,
    )
    return float(json.loads(out.stdout)["rate"])


async def tidings_drain(
    urls: list[str],
    events: int,
    *,
    backend: str = "postgres",
    workers: int = 1,
    env_extra: Mapping[str, str] | None = None,
    ordering: str = "none",
    make: MakeEnvelope = envelope,
    target: int | None = None,
) -> Drain:
    """tidings delivering `events` x `urls` from a fresh, settled database (`published_database`,
    endpoints with `ordering`, events made by `make`) with `workers` worker processes (SQLite:
    one `serve`), timed as `wait_delivered` says until `target` deliveries succeeded (all of
    them unless given)."""
    from bench.receiver import free_port

    async with published_database(backend, urls, events, ordering=ordering, make=make) as url:
        # the store used for polling is opened after publishing (SQLite: one writer)
        env = tidings_env(url, **(env_extra or {}))
        if backend == "sqlite":
            procs = [["serve", "--port", str(free_port())]]
        else:
            procs = [["worker"] for _ in range(workers)]
        async with connected(url) as store:
            with many_processes(procs, env):
                total = events * len(urls) if target is None else target
                return await wait_delivered(store, total, timeout=900, url=url)
