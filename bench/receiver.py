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
  log_format ids '$msec $http_x_tidings_delivery_id $http_x_tidings_event_id $http_webhook_id';
  access_log {dir}/ids.log ids buffer=256k flush=1s;
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
    location / {{ return 200 'ok'; }}
  }}
}}
"""


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


def start_nginx(binary: str) -> RunningReceiver:
    port = free_port()
    workdir = Path(tempfile.mkdtemp(prefix="tidings-bench-nginx-"))
    conf = workdir / "nginx.conf"
    conf.write_text(NGINX_CONF.format(dir=workdir, port=port))
    process = subprocess.Popen(
        [binary, "-c", str(conf), "-p", str(workdir)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    wait_port(port)
    return RunningReceiver("nginx", port, process, workdir=workdir)


def start_counting() -> RunningReceiver:
    port = free_port()
    workdir = Path(tempfile.mkdtemp(prefix="tidings-bench-rx-"))
    dump = workdir / "counts.json"
    process = subprocess.Popen(
        [sys.executable, "-m", "bench.receiver", str(port), str(dump)],
        stdout=subprocess.DEVNULL,
        stderr=None,
        cwd=Path(__file__).resolve().parent.parent,
    )
    wait_port(port)
    return RunningReceiver("aiohttp", port, process, dump=dump)


def start_receiver(kind: str) -> RunningReceiver:
    """kind: "counting" (aiohttp), "nginx", or "auto" (nginx when available, else aiohttp)."""
    if kind in ("nginx", "auto"):
        binary = ensure_nginx()
        if binary is not None:
            return start_nginx(binary)
        if kind == "nginx":
            raise RuntimeError("nginx is not installed and could not be installed")
    return start_counting()


# ---- the counting receiver process ------------------------------------------------------------


def _serve(port: int, dump: Path) -> None:
    from aiohttp import web

    try:
        import uvloop

        uvloop.install()
    except ImportError:  # pragma: no cover
        pass
    receipts = Receipts()

    async def handle(request: web.Request) -> web.StreamResponse:
        if request.path.startswith("/hang"):
            await asyncio.sleep(3600)
        await request.read()
        receipts.add(
            request.headers.get("X-Tidings-Delivery-Id", ""),
            request.headers.get("X-Tidings-Event-Id") or request.headers.get("webhook-id") or "",
            time.time(),
        )
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
        dump.write_text(json.dumps(receipts.stats()))
        await runner.cleanup()

    asyncio.run(main())


if __name__ == "__main__":
    _serve(int(sys.argv[1]), Path(sys.argv[2]))
