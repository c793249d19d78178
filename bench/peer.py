"""The `peer-celery` scenario (issue 27 §2): tidings beside the design a Python team would ship
instead (bench.peer_app: Celery on the local Redis, one task per delivery, requests, HMAC,
PostgreSQL), on the same receiver with the same deliveries, alternating ABAB (A tidings, B the
peer) so a drift of the VM weighs on both; once on loopback nginx (as `throughput-pg`) and once
on the distant TLS receiver (as `wan`)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass

from bench.ceiling import body_of
from bench.env import REPO, admin_sql, pg_url, tidings_drain
from bench.receiver import start_receiver
from bench.scenarios import Figure, _n
from bench.wan_net import wan_receiver

REDIS_URL = os.environ.get("TIDINGS_BENCH_REDIS_URL", "redis://127.0.0.1:6379/0")
PHASES = "ABAB"
TRIAL_DELIVERIES = 3_000
MAX_PG_CONNECTIONS = 16  # PostgreSQL is shared: the peer's processes open at most this many


@dataclass(frozen=True)
class PoolConfig:
    pool: str  # "prefork" or "gevent"
    concurrency: int
    prefetch: int

    @property
    def label(self) -> str:
        return f"{self.pool} x {self.concurrency}, prefetch {self.prefetch}"


# the trials: prefork around the core count and beyond (sends wait on the network), gevent with
# a few hundred greenlets (its pool of PostgreSQL connections capped by MAX_PG_CONNECTIONS)
LOOPBACK_TRIALS = (
    PoolConfig("prefork", 4, 4),
    PoolConfig("prefork", 8, 4),
    PoolConfig("gevent", 64, 4),
    PoolConfig("gevent", 256, 4),
)
WAN_TRIALS = (  # gevent first: a quick look tries one of each pool, prefork on loopback
    PoolConfig("gevent", 256, 4),
    PoolConfig("prefork", 16, 4),
    PoolConfig("gevent", 1024, 2),
)


@dataclass
class PeerDrain:
    rate: float
    peak_rss_mb: float


@contextlib.asynccontextmanager
async def peer_database(urls: list[str], events: int) -> AsyncIterator[str]:
    """A new PostgreSQL database with the peer's schema, `urls` as endpoints and `events` 1 KiB
    events each owed to every endpoint; dropped afterwards."""
    import asyncpg

    from bench.peer_app import SCHEMA

    name = f"tidings_bench_peer_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    await admin_sql(f'CREATE DATABASE "{name}"')
    url = pg_url(name)
    try:
        conn = await asyncpg.connect(url)
        try:
            await conn.execute(SCHEMA)
            await conn.executemany(
                "INSERT INTO endpoints (url, secret) VALUES ($1, $2)",
                [(u, os.urandom(32)) for u in urls],
            )
            await conn.executemany(
                "INSERT INTO events (type, body) VALUES ('compliance.status_changed', $1)",
                [(body_of(n),) for n in range(events)],
            )
            # one row per (event, endpoint), ordered as tidings orders a batch: event by event
            await conn.execute(
                "INSERT INTO deliveries (event_id, endpoint_id)"
                " SELECT e.id, p.id FROM events e CROSS JOIN endpoints p ORDER BY e.id, p.id"
            )
            await conn.execute("VACUUM ANALYZE")
            await conn.execute("CHECKPOINT")
        finally:
            await conn.close()
        yield url
    finally:
        await admin_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _peer_env(db_url: str, config: PoolConfig, run: str, ca_file: str | None) -> dict[str, str]:
    pool_size = 1 if config.pool == "prefork" else MAX_PG_CONNECTIONS
    env = {
        **os.environ,
        "PEER_BROKER_URL": REDIS_URL,
        "PEER_QUEUE": f"peer-{run}",
        "PEER_KEY_PREFIX": f"tidings-bench-peer-{run}:",
        "PEER_DATABASE_URL": db_url,
        "PEER_RUN": run,
        "PEER_POOL_SIZE": str(pool_size),
        "PEER_HTTP_POOL": str(config.concurrency),
    }
    if ca_file:
        env["PEER_CA_FILE"] = ca_file
    return env


def _enqueue(env: dict[str, str], total: int) -> None:
    """One task per delivery, sent before the workers start (untimed, as tidings' publishing
    is), from a child process that imports the peer app with the run's settings."""
    subprocess.run(
        [sys.executable, "-m", "bench.peer", "enqueue", str(total)],
        env=env,
        cwd=REPO,
        check=True,
        timeout=900,
    )


def _purge(env: dict[str, str]) -> None:
    import redis

    client = redis.Redis.from_url(REDIS_URL)
    try:
        prefix = env["PEER_KEY_PREFIX"]
        keys = list(client.scan_iter(match=prefix + "*", count=1000))
        if keys:
            client.delete(*keys)
    finally:
        client.close()


@contextlib.contextmanager
def celery_worker(env: dict[str, str], config: PoolConfig) -> Iterator[subprocess.Popen[bytes]]:
    concurrency = config.concurrency
    if config.pool == "prefork":
        concurrency = min(concurrency, MAX_PG_CONNECTIONS)
    log = tempfile.NamedTemporaryFile(  # noqa: SIM115 - closed in finally
        prefix="tidings-bench-celery-", suffix=".log", delete=False
    )
    process = subprocess.Popen(
        [
            *(sys.executable, "-m", "celery", "-A", "bench.peer_app", "worker"),
            *("--pool", config.pool, "--concurrency", str(concurrency)),
            *("--prefetch-multiplier", str(config.prefetch), "-Q", env["PEER_QUEUE"]),
            *("--loglevel", "WARNING", "--without-gossip", "--without-mingle"),
            "--without-heartbeat",
        ],
        env=env,
        cwd=REPO,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,  # its pool children are stopped with it
    )
    try:
        yield process
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()
        log.close()
        os.unlink(log.name)


async def peer_drain(
    urls: list[str], events: int, config: PoolConfig, ca_file: str | None = None
) -> PeerDrain:
    """The peer delivering `events` x `urls`: rate from 1 % of the attempts made to all of
    them succeeded (the worker's start-up not counted, as for tidings), peak RSS of the worker
    and its pool processes."""
    import asyncpg
    import psutil

    total = events * len(urls)
    run = uuid.uuid4().hex[:8]
    async with peer_database(urls, events) as db_url:
        env = _peer_env(db_url, config, run, ca_file)
        try:
            await asyncio.to_thread(_enqueue, env, total)
            conn = await asyncpg.connect(db_url)
            try:
                with celery_worker(env, config) as process:
                    first_mark = max(1, total // 100)
                    peak = 0.0
                    t_first: float | None = None
                    first_count = 0
                    deadline = time.monotonic() + 1800
                    while True:
                        made = int(await conn.fetchval("SELECT coalesce(max(id), 0) FROM attempts"))
                        now = time.monotonic()
                        peak = max(peak, _tree_rss(psutil, process.pid))
                        if t_first is None and made >= first_mark:
                            t_first, first_count = now, made
                        if made >= total:
                            done = await conn.fetchval(
                                "SELECT count(*) FROM deliveries WHERE status = 'succeeded'"
                            )
                            failed = await conn.fetchval(
                                "SELECT coalesce(error, status_code::text) FROM attempts"
                                " WHERE status_code IS DISTINCT FROM 200 LIMIT 1"
                            )
                            if failed is not None:  # the receivers answer 200: a set-up fault
                                raise RuntimeError(f"peer: an attempt failed: {failed}")
                            if done >= total and t_first is not None:
                                elapsed = max(time.monotonic() - t_first, 1e-6)
                                return PeerDrain((total - first_count) / elapsed, peak / 1e6)
                        if now > deadline:
                            raise TimeoutError(f"peer: {made}/{total} attempts after 1800 s")
                        await asyncio.sleep(0.1)
            finally:
                await conn.close()
        finally:
            _purge(env)


def _tree_rss(psutil: object, pid: int) -> float:
    try:
        proc = psutil.Process(pid)  # type: ignore[attr-defined]
        procs = [proc, *proc.children(recursive=True)]
        return float(sum(p.memory_info().rss for p in procs))
    except Exception:  # a process that just ended
        return 0.0


async def best_config(
    urls: list[str], trials: tuple[PoolConfig, ...], ca_file: str | None, scale: float
) -> tuple[PoolConfig, list[tuple[PoolConfig, float]]]:
    """The fastest configuration over short trial drains (each a fresh database)."""
    events = max(1, _n(TRIAL_DELIVERIES, min(1.0, scale * 5), 200) // len(urls))
    if scale < 0.1:  # a quick look (the suite's smoke test): the first trial only
        trials = trials[:1]
    results = []
    for config in trials:
        drain = await peer_drain(urls, events, config, ca_file)
        results.append((config, drain.rate))
        print(f"  peer trial {config.label}: {drain.rate:,.0f}/s", flush=True)
    return max(results, key=lambda r: r[1])[0], results


async def _abab(
    urls: list[str], events: int, config: PoolConfig, ca_file: str | None
) -> tuple[list[float], list[PeerDrain]]:
    ours: list[float] = []
    theirs: list[PeerDrain] = []
    for phase in PHASES:
        if phase == "A":  # tidings trusts the receiver's CA as the peer does
            trust = {"TIDINGS_CA_BUNDLE": ca_file} if ca_file else {}
            drain = await tidings_drain(urls, events, env_extra=trust)
            ours.append(drain.rate)
        else:
            theirs.append(await peer_drain(urls, events, config, ca_file))
    return ours, theirs


def _figures(
    name: str,
    ours: list[float],
    theirs: list[PeerDrain],
    dups: int,
    size: str,
) -> list[Figure]:
    mine = statistics.fmean(ours)
    peer = statistics.fmean(d.rate for d in theirs)
    ratio = mine / peer if peer else 0.0
    rss = max(d.peak_rss_mb for d in theirs)
    return [
        Figure(
            "peer-celery",
            f"tidings / peer ({name})",
            ratio,
            "x",
            "≥ 5 x",
            ratio >= 5,
            peer,
            ratio,
            size,
        ),
        Figure(
            "peer-celery", f"peer sent twice ({name})", dups, "deliveries", "-", None, size=size
        ),
        Figure("peer-celery", f"peer peak RSS MB ({name})", rss, "MB", "-", None, size=size),
    ]


def _rates(values: list[float]) -> str:
    return ", ".join(f"{v:,.0f}" for v in values)


async def peer_celery(scale: float, receiver: str) -> list[Figure]:
    from bench.wan import WAN_ENDPOINTS, WAN_EVENTS

    figures: list[Figure] = []
    # loopback nginx, as throughput-pg: 10,000 events x 10 endpoints
    events = _n(10_000, scale, 10)
    rx = start_receiver(receiver)
    try:
        urls = [f"{rx.url}/ep{i}" for i in range(10)]
        config, trials = await best_config(urls, LOOPBACK_TRIALS, None, scale)
        ours, theirs = await _abab(urls, events, config, None)
    finally:
        stats = rx.stop()
    dups = int(stats.get("peer_duplicates", stats.get("duplicates", 0)))
    size = (
        f"{events:,} events x 10 endpoints = {events * 10:,} deliveries, {rx.kind}, ABAB; "
        f"tidings {_rates(ours)}/s (one `worker`), peer {_rates([d.rate for d in theirs])}/s "
        f"({config.label}; trials: " + "; ".join(f"{c.label} {r:,.0f}/s" for c, r in trials) + ")"
    )
    figures += _figures("throughput-pg", ours, theirs, dups, size)
    # the distant TLS receiver, as wan
    endpoints = _n(WAN_ENDPOINTS, scale, 10)
    with wan_receiver() as wrx:
        ca = str(wrx.ca_file)
        urls = [f"{wrx.url}/ep{i}" for i in range(endpoints)]
        config, trials = await best_config(urls, WAN_TRIALS, ca, scale)
        ours, theirs = await _abab(urls, WAN_EVENTS, config, ca)
        stats = wrx.stop()
    dups = int(stats.get("duplicates", 0))
    size = (
        f"{endpoints:,} endpoints x {WAN_EVENTS} events = {endpoints * WAN_EVENTS:,} "
        f"deliveries, {wrx.label}, ABAB; tidings {_rates(ours)}/s, peer "
        f"{_rates([d.rate for d in theirs])}/s ({config.label}; trials: "
        + "; ".join(f"{c.label} {r:,.0f}/s" for c, r in trials)
        + ")"
    )
    figures += _figures("wan", ours, theirs, dups, size)
    return figures


def _enqueue_main(total: int) -> None:
    from bench.peer_app import app, deliver

    with app.producer_or_acquire() as producer:
        for delivery_id in range(1, total + 1):
            deliver.apply_async((delivery_id,), producer=producer)


if __name__ == "__main__":
    if sys.argv[1:2] == ["enqueue"]:
        _enqueue_main(int(sys.argv[2]))
