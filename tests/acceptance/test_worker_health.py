"""A worker-only process answers /healthz, /readyz and /metrics on TIDINGS_WORKER_HEALTH_PORT
(issue 23, observability): ready while its database answers, 503 once it does not; its
/metrics carries the worker's own counters and asks for the token when one is set."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.acceptance.conftest import clean_env, free_port, wait_http
from tests.conftest import FreshUrlFactory, _pg_admin

pytestmark = [pytest.mark.slow, pytest.mark.timeout(120)]


class WorkerProcess:
    def __init__(self, proc: subprocess.Popen[bytes], url: str, log_path: Path) -> None:
        self.proc, self.url, self.log_path = proc, url, log_path

    def logs(self) -> str:
        return self.log_path.read_text(errors="replace")


@pytest.fixture
def start_worker(tmp_path: Path) -> Iterator[object]:
    started: list[WorkerProcess] = []

    def start(database_url: str, **extra: str) -> WorkerProcess:
        port = free_port()
        log_path = tmp_path / f"worker-{port}.log"
        with log_path.open("wb") as fh:
            proc = subprocess.Popen(
                [sys.executable, "-m", "tidings", "worker"],
                cwd=tmp_path,
                env=clean_env(
                    TIDINGS_DATABASE_URL=database_url,
                    TIDINGS_WORKER_HEALTH_PORT=str(port),
                    **extra,
                ),
                stdout=fh,
                stderr=subprocess.STDOUT,
            )
        worker = WorkerProcess(proc, f"http://127.0.0.1:{port}", log_path)
        started.append(worker)
        wait_http(worker.url + "/healthz", proc=proc)
        return worker

    yield start
    for w in started:
        if w.proc.poll() is None:
            w.proc.terminate()
            try:
                w.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                w.proc.kill()
                w.proc.wait()


def test_worker_health_port_answers_on_both_backends(
    backend: str, fresh_database_url_factory: FreshUrlFactory, start_worker: object
) -> None:
    url = fresh_database_url_factory(backend)
    worker = start_worker(url)  # type: ignore[operator]
    assert httpx.get(worker.url + "/healthz").json() == {"status": "ok", "role": "worker"}
    ready = httpx.get(worker.url + "/readyz")
    assert ready.status_code == 200, ready.text
    assert ready.json()["status"] == "ready"
    metrics = httpx.get(worker.url + "/metrics")
    assert metrics.status_code == 200
    assert "tidings_delivery_attempt_duration_seconds_bucket" in metrics.text
    assert "tidings_delivery_backlog 0.0" in metrics.text
    # a stop is graceful and closes the port with the process
    worker.proc.terminate()
    assert worker.proc.wait(timeout=20) == 0, worker.logs()
    with pytest.raises(httpx.HTTPError):
        httpx.get(worker.url + "/healthz", timeout=1)


@pytest.mark.postgres
def test_worker_readiness_fails_when_its_database_goes_away(
    fresh_database_url_factory: FreshUrlFactory, start_worker: object
) -> None:
    url = fresh_database_url_factory("postgres")
    worker = start_worker(url)  # type: ignore[operator]
    assert httpx.get(worker.url + "/readyz").status_code == 200
    name = url.rsplit("/", 1)[1]
    _pg_admin(f'DROP DATABASE "{name}" WITH (FORCE)')
    deadline = time.monotonic() + 15
    answer = httpx.get(worker.url + "/readyz", timeout=5)
    while answer.status_code == 200 and time.monotonic() < deadline:
        time.sleep(0.2)
        answer = httpx.get(worker.url + "/readyz", timeout=5)
    assert answer.status_code == 503, worker.logs()
    body = answer.json()["error"]
    assert body["code"] == "not_ready"
    assert "database" in body["message"]
    # liveness is about the process, not the database: it still answers
    assert httpx.get(worker.url + "/healthz", timeout=5).status_code in (200, 503)


def test_worker_metrics_token(
    fresh_database_url_factory: FreshUrlFactory, start_worker: object
) -> None:
    url = fresh_database_url_factory("sqlite")
    worker = start_worker(url, TIDINGS_METRICS_TOKEN="s3cret-scrape")  # type: ignore[operator]
    refused = httpx.get(worker.url + "/metrics")
    assert refused.status_code == 401
    assert refused.json()["error"]["code"] == "unauthorized"
    assert refused.headers["www-authenticate"] == "Bearer"
    wrong = httpx.get(worker.url + "/metrics", headers={"Authorization": "Bearer nope"})
    assert wrong.status_code == 401
    ok = httpx.get(worker.url + "/metrics", headers={"Authorization": "Bearer s3cret-scrape"})
    assert ok.status_code == 200 and "tidings_delivery_backlog" in ok.text
    # probes stay open: an orchestrator has no token
    assert httpx.get(worker.url + "/readyz").status_code == 200


def test_a_busy_health_port_stops_the_worker_at_once(
    fresh_database_url_factory: FreshUrlFactory, tmp_path: Path
) -> None:
    import socket

    url = fresh_database_url_factory("sqlite")
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        done = subprocess.run(
            [sys.executable, "-m", "tidings", "worker"],
            cwd=tmp_path,
            env=clean_env(TIDINGS_DATABASE_URL=url, TIDINGS_WORKER_HEALTH_PORT=str(port)),
            capture_output=True,
            text=True,
            timeout=30,
        )
    assert done.returncode == 1
    assert f"cannot listen on 127.0.0.1:{port}" in done.stderr
