"""The peer of the `peer-celery` scenario: what a competent Python team would ship instead of
tidings, built with the usual parts and tuned the usual ways, so the comparison is fair.

- Celery with the local Redis as broker; one task per delivery, its id in the message.
- `acks_late` (a task is acknowledged after it ran, so a worker that dies loses nothing) with
  `reject_on_worker_lost`; no result backend (the status lives in PostgreSQL).
- The task reads the delivery with its event body and endpoint (URL, secret) in one query,
  signs `t.body` with HMAC-SHA256 (the novatrade scheme), POSTs with `requests` over a
  kept-alive `Session` (its pool sized to the worker's concurrency, no redirects, 15 s
  timeout), then writes the attempt and the delivery's new status in one PostgreSQL transaction
  (psycopg 3, a small connection pool per process).
- Failures retry with `self.retry(countdown=…)` on tidings' own schedule (10 attempts).
- The pool (prefork or gevent), its concurrency and the prefetch multiplier are chosen by the
  scenario from short trial runs (bench.peer): the faster configuration is the one measured.

Configured by environment variables (the scenario sets them): PEER_BROKER_URL, PEER_QUEUE,
PEER_KEY_PREFIX, PEER_DATABASE_URL, PEER_CA_FILE, PEER_RUN, PEER_POOL_SIZE.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import os
import queue
import time
from collections.abc import Iterator
from typing import Any

from celery import Celery

SCHEDULE_SECONDS = (30, 120, 600, 1800, 3600, 10800, 21600, 43200, 177570)  # tidings' default
TIMEOUT_SECONDS = 15
EXCERPT_BYTES = 4096

SCHEMA = """
CREATE TABLE endpoints (id bigserial PRIMARY KEY, url text NOT NULL, secret bytea NOT NULL);
CREATE TABLE events (
  id bigserial PRIMARY KEY, type text NOT NULL, body bytea NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now());
CREATE TABLE deliveries (
  id bigserial PRIMARY KEY,
  event_id bigint NOT NULL REFERENCES events, endpoint_id bigint NOT NULL REFERENCES endpoints,
  status text NOT NULL DEFAULT 'pending', attempts int NOT NULL DEFAULT 0,
  last_status_code int, updated_at timestamptz NOT NULL DEFAULT now());
CREATE INDEX deliveries_endpoint ON deliveries (endpoint_id, id);
CREATE INDEX deliveries_event ON deliveries (event_id);
CREATE TABLE attempts (
  id bigserial PRIMARY KEY, delivery_id bigint NOT NULL REFERENCES deliveries,
  number int NOT NULL, started_at timestamptz NOT NULL, duration_ms real NOT NULL,
  status_code int, error text, response_excerpt text);
CREATE INDEX attempts_delivery ON attempts (delivery_id);
"""

app = Celery(
    "tidings_bench_peer", broker=os.environ.get("PEER_BROKER_URL", "redis://127.0.0.1:6379/0")
)
app.conf.update(
    task_acks_late=True,
    task_reject_on_worker_lost=True,
    task_ignore_result=True,
    task_default_queue=os.environ.get("PEER_QUEUE", "peer"),
    worker_disable_rate_limits=True,
    worker_hijack_root_logger=False,
    broker_connection_retry_on_startup=True,
    broker_transport_options={
        "visibility_timeout": 3600,
        "global_keyprefix": os.environ.get("PEER_KEY_PREFIX", "peer:"),
        # kombu's default of 10 Redis connections fails acks under a gevent pool ("Too many
        # connections", then redelivered tasks): room for every greenlet's ack
        "max_connections": int(os.environ.get("PEER_HTTP_POOL", "64")) + 16,
    },
)

_connections: queue.LifoQueue[Any] | None = None
_session: Any = None


@contextlib.contextmanager
def _connection() -> Iterator[Any]:
    """A PostgreSQL connection from this process's small pool (greenlet-safe under gevent,
    where `queue` is patched; one connection per process under prefork)."""
    global _connections
    import psycopg

    if _connections is None:
        _connections = queue.LifoQueue()
        for _ in range(int(os.environ.get("PEER_POOL_SIZE", "1"))):
            _connections.put(None)
    conn = _connections.get()
    try:
        if conn is None or conn.closed:
            conn = psycopg.connect(os.environ["PEER_DATABASE_URL"])
        yield conn
    finally:
        _connections.put(conn)


def _http() -> Any:
    global _session
    if _session is None:
        import requests
        from requests.adapters import HTTPAdapter

        size = int(os.environ.get("PEER_HTTP_POOL", "64"))
        session = requests.Session()
        session.mount("https://", HTTPAdapter(pool_connections=16, pool_maxsize=size))
        session.mount("http://", HTTPAdapter(pool_connections=16, pool_maxsize=size))
        _session = session
    return _session


@app.task(  # type: ignore[untyped-decorator]  # celery ships no types
    bind=True, acks_late=True, max_retries=len(SCHEDULE_SECONDS)
)
def deliver(self: Any, delivery_id: int) -> None:
    import requests

    with _connection() as conn:
        row = conn.execute(
            "SELECT d.attempts, d.event_id, e.body, p.url, p.secret FROM deliveries d"
            " JOIN events e ON e.id = d.event_id JOIN endpoints p ON p.id = d.endpoint_id"
            " WHERE d.id = %s",
            (delivery_id,),
        ).fetchone()
        conn.commit()
    if row is None:
        return
    done, event_id, body, url, secret = row
    now = time.time()
    stamp = str(int(now))
    signature = hmac.new(secret, stamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "peer/1.0",
        "X-Novatrade-Signature": f"t={stamp},v1={signature}",
        "X-Tidings-Delivery-Id": f"dlv_peer{os.environ.get('PEER_RUN', '')}_{delivery_id}",
        "X-Tidings-Event-Id": f"evt_peer{os.environ.get('PEER_RUN', '')}_{event_id}",
        "X-Tidings-Attempt": str(done + 1),
    }
    started = time.perf_counter()
    status_code: int | None = None
    error: str | None = None
    excerpt: str | None = None
    try:
        response = _http().post(
            url,
            data=body,
            headers=headers,
            timeout=TIMEOUT_SECONDS,
            allow_redirects=False,
            # per request: a Session's `verify` loses to REQUESTS_CA_BUNDLE from the environment
            verify=os.environ.get("PEER_CA_FILE") or True,
        )
        status_code = response.status_code
        excerpt = response.content[:EXCERPT_BYTES].decode("utf-8", "replace")
    except requests.RequestException as exc:
        error = f"{type(exc).__name__}: {exc}"[:500]
    duration_ms = (time.perf_counter() - started) * 1000
    success = status_code is not None and 200 <= status_code < 300
    last = done + 1 > len(SCHEDULE_SECONDS)
    status = "succeeded" if success else ("failed" if last else "pending")
    with _connection() as conn, conn.transaction():
        conn.execute(
            "INSERT INTO attempts (delivery_id, number, started_at, duration_ms, status_code,"
            " error, response_excerpt) VALUES (%s, %s, to_timestamp(%s), %s, %s, %s, %s)",
            (delivery_id, done + 1, now, duration_ms, status_code, error, excerpt),
        )
        conn.execute(
            "UPDATE deliveries SET status = %s, attempts = attempts + 1, last_status_code = %s,"
            " updated_at = now() WHERE id = %s",
            (status, status_code, delivery_id),
        )
    if not success and not last:
        raise self.retry(countdown=SCHEDULE_SECONDS[done])
