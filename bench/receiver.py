"""Receivers for the benchmarks.

- nginx from Debian (`return 200` to any POST) when it is installed or installable: a receiver
  that is certainly not the bottleneck. Its access log keeps receipt time, delivery id and
  event id of every request, so runs on nginx also count duplicates (throughput-pg-2's "sent
  twice") and receipt times (fan-out).
- A counting aiohttp receiver in its own process (`python -m bench.receiver PORT DUMP`): answers
  200 to any POST (paths under /hang are held until the client gives up), counts requests per
  `X-Tidings-Delivery-Id` and keeps each event's first receipt time; on SIGTERM it writes them
  to DUMP as JSON. Used where requests must hang (isolation), for sub-millisecond receipt
  times (latency), and as the fallback where nginx cannot be had.

Either can also keep the order log of issue 25's scenarios (`start_receiver(kind,
order_log=True)`, bench.ordered): per request, in the order answered, its status, path (the
endpoint), delivery and event ids, X-Tidings-Sequence and X-Tidings-Previous-Event-Id; it then
answers 500 to events whose id starts `evt_blk_` (a blocked subject's), 200 to the rest. nginx
logs headers, so it needs no Python receiver for this: with one worker process it writes each
line as it finishes the request, before it reads the next, so an endpoint's subject, whose next
request is only sent after the answer to the previous, is logged in the order it arrived.
"""

from __future__ import annotations

import asyncio
import gc
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

NGINX_CONF = """
worker_processes 1;
daemon off;
pid {dir}/nginx.pid;
error_log {dir}/error.log warn;
events {{ worker_connections 4096; }}
http {{
  # one line per request: receipt time, delivery id, event id (tidings headers or Standard
  # Webhooks' webhook-id), so runs on nginx count duplicates and receipt times too
{log}
  client_body_buffer_size 64k;
  keepalive_requests 1000000;
  keepalive_timeout 120s;
  client_body_temp_path {dir}/body;
  proxy_temp_path {dir}/proxy;
  fastcgi_temp_path {dir}/fastcgi;
  uwsgi_temp_path {dir}/uwsgi;
  scgi_temp_path {dir}/scgi;
  server {{
    listen 127.0.0.1:{port};
    location / {{ {location} }}
  }}
}}
"""

IDS_LOG = """
  log_format ids '$msec $http_x_tidings_delivery_id $http_x_tidings_event_id $http_webhook_id';
  access_log {dir}/ids.log ids buffer=256k flush=1s;"""
ANSWER = "return 200 'ok';"
# the order log (ORDER_FIELDS) and the blocked subjects' 500s, for bench.ordered
ORDER_LOG = """
  log_format order '$status $uri $http_x_tidings_delivery_id $http_x_tidings_event_id '
                   '$http_x_tidings_sequence $http_x_tidings_previous_event_id';
  access_log {dir}/order.log order buffer=256k flush=1s;"""
BLOCKED_PREFIX = "evt_blk_"
ANSWER_BLOCKING = (
    f"if ($http_x_tidings_event_id ~ ^{BLOCKED_PREFIX}) {{ return 500 'blocked'; }} " + ANSWER
)
# (status, path, delivery id, event id, sequence, previous event id or None)
OrderRecord = tuple[int, str, str, str, int, str | None]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_port(port: int, timeout: float = 15.0, host: str = "127.0.0.1") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex((host, port)) == 0:
                return
        time.sleep(0.05)
    raise RuntimeError(f"nothing listens on {host}:{port}")


def ensure_nginx() -> str | None:
    """The nginx binary, installing Debian's package when missing and possible."""
    found = shutil.which("nginx") or (
        "/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None
    )
    if found:
        return found
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        return None
    for package in ("nginx-light", "nginx"):
        if apt_install(package):
            break
    return shutil.which("nginx") or (
        "/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None
    )


def apt_install(package: str) -> bool:
    """Install a Debian package (as root), reading the package lists first when the install
    fails without them (a new machine has none)."""
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        return False
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    install = ["apt-get", "install", "-y", "-q", package]
    if subprocess.run(install, env=env, capture_output=True, timeout=600).returncode == 0:
        return True
    subprocess.run(["apt-get", "update", "-q"], env=env, capture_output=True, timeout=600)
    return subprocess.run(install, env=env, capture_output=True, timeout=600).returncode == 0


@dataclass
class RunningReceiver:
    kind: str  # "nginx" or "aiohttp"
    port: int
    process: subprocess.Popen[bytes]
    dump: Path | None = None
    workdir: Path | None = None
    stats: dict[str, Any] = field(default_factory=dict)
    order_log: bool = False

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stop(self) -> dict[str, Any]:
        """Stop it; for the counting receiver, answer what it counted."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM if self.kind == "aiohttp" else signal.SIGQUIT)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
        if self.dump is not None and self.dump.exists():
            self.stats = json.loads(self.dump.read_text())
        elif self.kind == "nginx" and self.workdir is not None and self.order_log:
            self.stats = {"requests": read_order_log(self.workdir / "order.log")}
        elif self.kind == "nginx" and self.workdir is not None:
            self.stats = _nginx_stats(self.workdir / "ids.log")
        if self.workdir is not None:
            shutil.rmtree(self.workdir, ignore_errors=True)
        return self.stats


class Receipts:
    """What a receiver counts: requests per delivery id (a count above one is a duplicate)
    and each event's first receipt time. Both receivers report it the same way."""

    def __init__(self) -> None:
        self.total = 0
        self.last_at = 0.0
        self.per_delivery: dict[str, int] = {}
        self.first_seen: dict[str, float] = {}

    def add(self, delivery: str, event: str, at: float) -> None:
        if delivery.startswith("dlv_ceiling_"):
            return  # the ceiling loops' own requests (each run numbers its requests from 0)
        self.total += 1
        self.per_delivery[delivery] = self.per_delivery.get(delivery, 0) + 1
        self.first_seen.setdefault(event, at)
        self.last_at = max(self.last_at, at)

    def stats(self) -> dict[str, Any]:
        twice = [d for d, n in self.per_delivery.items() if n > 1]
        return {
            "total": self.total,
            "deliveries": len(self.per_delivery),
            "duplicates": len(twice),
            # the Celery peer's deliveries (bench.peer_app names them dlv_peer<run>_<id>)
            "peer_duplicates": sum(1 for d in twice if d.startswith("dlv_peer")),
            "first_seen": self.first_seen,
            "last_at": self.last_at,
        }


def _nginx_stats(log: Path) -> dict[str, Any]:
    """What the counting receiver reports, from nginx's access log. The ceiling's own requests
    (delivery ids `dlv_ceiling_<n>`) and requests without a delivery id are left out."""
    receipts = Receipts()
    if log.exists():
        with log.open() as lines:
            for line in lines:
                parts = line.split()
                if len(parts) != 4 or parts[1] == "-":
                    continue
                event = parts[2] if parts[2] != "-" else parts[3]
                receipts.add(parts[1], event, float(parts[0]))
    return receipts.stats()


def read_order_log(log: Path) -> list[OrderRecord]:
    """The order log's requests (nginx writes `-` for a header not sent)."""
    records: list[OrderRecord] = []
    if log.exists():
        with log.open() as lines:
            for line in lines:
                parts = line.split()
                if len(parts) != 6 or parts[4] == "-":
                    continue  # not a tidings delivery
                previous = None if parts[5] == "-" else parts[5]
                records.append(
                    (int(parts[0]), parts[1], parts[2], parts[3], int(parts[4]), previous)
                )
    return records


def start_nginx(binary: str, order_log: bool = False) -> RunningReceiver:
    port = free_port()
    workdir = Path(tempfile.mkdtemp(prefix="tidings-bench-nginx-"))
    conf = workdir / "nginx.conf"
    log = (ORDER_LOG if order_log else IDS_LOG).format(dir=workdir)
    location = ANSWER_BLOCKING if order_log else ANSWER
    conf.write_text(NGINX_CONF.format(dir=workdir, port=port, log=log, location=location))
    process = subprocess.Popen(
        [binary, "-c", str(conf), "-p", str(workdir)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    wait_port(port)
    return RunningReceiver("nginx", port, process, workdir=workdir, order_log=order_log)


def start_counting(order_log: bool = False) -> RunningReceiver:
    port = free_port()
    workdir = Path(tempfile.mkdtemp(prefix="tidings-bench-rx-"))
    dump = workdir / "counts.json"
    process = subprocess.Popen(
        [sys.executable, "-m", "bench.receiver", str(port), str(dump)]
        + (["--order-log"] if order_log else []),
        stdout=subprocess.DEVNULL,
        stderr=None,
        cwd=Path(__file__).resolve().parent.parent,
    )
    wait_port(port)
    return RunningReceiver("aiohttp", port, process, dump=dump, order_log=order_log)


def start_receiver(kind: str, *, order_log: bool = False) -> RunningReceiver:
    """kind: "counting" (aiohttp), "nginx", or "auto" (nginx when available, else aiohttp);
    `order_log`: keep the order log and fail blocked subjects (see the module docstring)."""
    if kind in ("nginx", "auto"):
        binary = ensure_nginx()
        if binary is not None:
            return start_nginx(binary, order_log)
        if kind == "nginx":
            raise RuntimeError("nginx is not installed and could not be installed")
    return start_counting(order_log)


# ---- the counting receiver process ------------------------------------------------------------


def _serve(port: int, dump: Path, order_log: bool = False) -> None:
    from aiohttp import web

    try:
        import uvloop

        uvloop.install()
    except ImportError:  # pragma: no cover
        pass
    receipts = Receipts()
    requests: list[OrderRecord] = []

    async def handle(request: web.Request) -> web.StreamResponse:
        if request.path.startswith("/hang"):
            await asyncio.sleep(3600)
        await request.read()
        event = request.headers.get("X-Tidings-Event-Id") or request.headers.get("webhook-id") or ""
        receipts.add(request.headers.get("X-Tidings-Delivery-Id", ""), event, time.time())
        if order_log and (sequence := request.headers.get("X-Tidings-Sequence")):
            status = 500 if event.startswith(BLOCKED_PREFIX) else 200
            requests.append(
                (
                    status,
                    request.path,
                    request.headers.get("X-Tidings-Delivery-Id", ""),
                    event,
                    int(sequence),
                    request.headers.get("X-Tidings-Previous-Event-Id"),
                )
            )
            if status == 500:
                return web.Response(status=500, text="blocked")
        return web.Response(text="ok")

    async def main() -> None:
        app = web.Application(client_max_size=4 * 1024 * 1024)
        app.router.add_route("POST", "/{tail:.*}", handle)
        # held (/hang) requests are cut at stop instead of waited for (aiohttp's default 60 s)
        runner = web.AppRunner(app, access_log=None, handle_signals=False, shutdown_timeout=0.5)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", port, backlog=4096).start()
        # the receiver's own collector pauses must not show up as delivery latency
        gc.collect()
        gc.freeze()
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        loop.add_signal_handler(signal.SIGTERM, stop.set)
        await stop.wait()
        stats = receipts.stats()
        if order_log:
            stats["requests"] = requests
        dump.write_text(json.dumps(stats))
        await runner.cleanup()

    asyncio.run(main())


if __name__ == "__main__":
    _serve(int(sys.argv[1]), Path(sys.argv[2]), "--order-log" in sys.argv[3:])
