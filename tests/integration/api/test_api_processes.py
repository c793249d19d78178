"""Several `tidings api --reuse-port` processes share one port on one machine (SO_REUSEPORT):
both start, either answers, and the port keeps answering when one of them stops."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import aiohttp
import asyncpg
import pytest

from tests.acceptance.conftest import TEST_ENCRYPTION_KEY

pytestmark = [pytest.mark.postgres, pytest.mark.slow, pytest.mark.timeout(120)]
REPO = Path(__file__).resolve().parents[3]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _env(database_url: str, port: int) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TIDINGS_")}
    env.update(
        {
            "TIDINGS_DATABASE_URL": database_url,
            "TIDINGS_ENCRYPTION_KEY": TEST_ENCRYPTION_KEY,
            "TIDINGS_PORT": str(port),
            "PYTHONPATH": os.pathsep.join([str(REPO / "src"), str(REPO)]),
        }
    )
    return env


@pytest.fixture
def started() -> Iterator[list[subprocess.Popen[bytes]]]:
    procs: list[subprocess.Popen[bytes]] = []
    yield procs
    for proc in procs:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
    for proc in procs:
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


async def _ready(url: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    async with aiohttp.ClientSession() as session:
        while True:
            try:
                async with session.get(url) as r:
                    if r.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            if time.monotonic() > deadline:
                raise AssertionError(f"{url} did not answer")
            await asyncio.sleep(0.1)


async def _answers(url: str, n: int) -> list[int]:
    statuses = []
    for _ in range(n):  # a new connection each time: the kernel picks a process per connection
        async with aiohttp.ClientSession() as session, session.get(url) as r:
            statuses.append(r.status)
    return statuses


async def test_two_api_processes_share_one_port(
    fresh_database_url_factory: Callable[..., str], started: list[subprocess.Popen[bytes]]
) -> None:
    url = fresh_database_url_factory("postgres")
    port = _free_port()
    command = [sys.executable, "-m", "tidings", "api", "--reuse-port"]
    for _ in range(2):
        started.append(
            subprocess.Popen(
                command,
                cwd=REPO,
                env=_env(url, port),
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        )
    health = f"http://127.0.0.1:{port}/healthz"
    await _ready(health)
    await asyncio.sleep(1.0)  # both have had time to bind, or to fail to
    assert [p.poll() for p in started] == [None, None]  # neither found the port taken
    assert await _answers(health, 20) == [200] * 20
    started[0].send_signal(signal.SIGTERM)
    started[0].wait(timeout=20)
    assert await _answers(health, 20) == [200] * 20  # the other one has the port alone


def test_reuse_port_is_refused_on_sqlite(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "tidings", "api", "--reuse-port"],
        cwd=REPO,
        env=_env(f"sqlite:///{tmp_path / 'x.db'}", _free_port()),
        capture_output=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert b"--reuse-port needs PostgreSQL" in done.stderr


async def test_an_api_process_alone_keeps_the_statistics_fresh(
    fresh_database_url_factory: Callable[..., str], started: list[subprocess.Popen[bytes]]
) -> None:
    """With no worker anywhere, `tidings api` still analyzes the tables its publishing grows
    (tidings.table_statistics): ANALYZE run by tidings, counted in analyze_count, where
    autovacuum's would count in autoanalyze_count."""
    url = fresh_database_url_factory("postgres")
    port = _free_port()
    started.append(
        subprocess.Popen(
            [sys.executable, "-m", "tidings", "api"],
            cwd=REPO,
            env=_env(url, port),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
    )
    await _ready(f"http://127.0.0.1:{port}/healthz")
    conn = await asyncpg.connect(url)
    try:
        await conn.execute(
            "INSERT INTO organizations (id, name, created_at) "
            "SELECT 'org_' || n, 'org ' || n, 0 FROM generate_series(1, 2000) AS n"
        )
        await conn.execute("SELECT pg_stat_force_next_flush()")  # counted at once
        deadline = time.monotonic() + 40  # the pass runs every 2 s
        while True:
            analyzed = await conn.fetchval(
                "SELECT analyze_count FROM pg_stat_user_tables WHERE relname = 'organizations'"
            )
            if analyzed or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.5)
    finally:
        await conn.close()
    assert analyzed >= 1
