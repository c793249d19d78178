"""Distant receivers for the `wan` scenario: nginx terminating TLS 1.3 in its own network
namespace, reached over a veth pair, 50 ms ± 10 ms away, with a certificate from a CA this
module makes (trustme); tidings trusts that CA through `TIDINGS_CA_BUNDLE`, and nothing switches
verification off.

Where the delay comes from, best first (the `label` of the receiver, printed in every size
line, says which one ran):
- `netem`: the namespace end of the veth delays every packet it sends (`tc qdisc … netem delay
  50ms 10ms`), so handshakes cost real round trips too;
- `nginx`: where the kernel has no netem (this VM's does not), nginx waits the delay before each
  answer (the echo module's `echo_sleep`, the jitter from `split_clients`): requests on a kept
  connection see the same delay, handshakes cost no round trip;
- and where namespaces cannot be made (not root, no `ip`), the same nginx on 127.0.0.1,
  labelled `loopback-with-delay`.

Only the namespace's traffic is delayed: loopback (PostgreSQL, the API) is not. The veth pair
uses a /30 of 198.18.0.0/15 (RFC 2544's benchmarking range) picked from the process id, so no
packet leaves this machine and two runs do not collide. Everything is torn down when the block
ends, failed or not; namespaces left by a bench process that died are removed at the next start.
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
import shutil
import signal
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.receiver import Receipts, apt_install, ensure_nginx, free_port, wait_port

DELAY_MS = 50
JITTER_MS = 10
NS_PREFIX = "tdwan"  # namespace and interface names: tdwan<pid>, tdw<pid>h / tdw<pid>n
PORT = 8443
BENCH_NET = ipaddress.ip_network("198.18.0.0/15")

ECHO_MODULE = Path("/usr/lib/nginx/modules/ngx_http_echo_module.so")
# uniform over 41-59 ms in 2 ms steps (mean 50 ms), as netem's `delay 50ms 10ms` is uniform
DELAY_SPLIT = " ".join(f"10% {(DELAY_MS - 9 + 2 * i) / 1000:.3f};" for i in range(10))

NGINX_TLS_CONF = """
{load_echo}
worker_processes 1;
daemon off;
pid {dir}/nginx.pid;
error_log {dir}/error.log warn;
worker_rlimit_nofile 65536;
events {{ worker_connections 16384; }}
http {{
  # receipt time, delivery id, event id, Standard Webhooks id, then the connection's serial
  # number and its request count (1 = the connection's first request: a TLS handshake was
  # made for it) and whether that handshake resumed a session ("r")
  log_format ids '$msec $http_x_tidings_delivery_id $http_x_tidings_event_id $http_webhook_id '
                 '$connection $connection_requests $ssl_session_reused';
  access_log {dir}/ids.log ids buffer=256k flush=1s;
  client_body_buffer_size 64k;
  keepalive_requests 1000000;
  keepalive_timeout 300s;
  client_body_temp_path {dir}/body;
  proxy_temp_path {dir}/proxy;
  fastcgi_temp_path {dir}/fastcgi;
  uwsgi_temp_path {dir}/uwsgi;
  scgi_temp_path {dir}/scgi;
  split_clients "$request_id" $answer_delay {{ {split} }}
  server {{
    listen {host}:{port} ssl backlog=16384;
    ssl_certificate {dir}/server.pem;
    ssl_certificate_key {dir}/server.key;
    ssl_protocols TLSv1.3;
    ssl_session_cache shared:tls:10m;
    location / {{ {answer} }}
  }}
}}
"""
ANSWER_AT_ONCE = "return 200 'ok';"
ANSWER_DELAYED = "echo_read_request_body; echo_sleep $answer_delay; echo ok;"


def _run(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(args), capture_output=True, text=True, check=check, timeout=30)


def _stale_namespaces() -> list[str]:
    """Namespaces of this bench whose process is gone (a run killed before its tear-down)."""
    done = _run("ip", "netns", "list", check=False)
    stale = []
    for line in done.stdout.splitlines():
        name = line.split()[0] if line.split() else ""
        if name.startswith(NS_PREFIX) and name[len(NS_PREFIX) :].isdigit():
            pid = int(name[len(NS_PREFIX) :])
            if pid != os.getpid() and not Path(f"/proc/{pid}").exists():
                stale.append(name)
    return stale


def namespaces_allowed() -> bool:
    if os.geteuid() != 0 or shutil.which("ip") is None or shutil.which("tc") is None:
        return False
    probe = f"{NS_PREFIX}{os.getpid()}probe"
    made = _run("ip", "netns", "add", probe, check=False)
    if made.returncode != 0:
        return False
    _run("ip", "netns", "delete", probe, check=False)
    return True


@dataclass
class WanReceiver:
    """What the scenario talks to: `url`, the CA file to trust, how it was made, and (after
    `stop`) what it counted."""

    kind: str  # where the delay comes from: "netem", "nginx" or "loopback" (see above)
    host: str
    port: int
    ca_file: Path
    workdir: Path
    process: subprocess.Popen[bytes] | None = None
    stats: dict[str, Any] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return f"https://{self.host}:{self.port}"

    def stop(self) -> dict[str, Any]:
        """Stop the receiver (once) and answer what it counted (see `tls_stats`)."""
        _stop(self)
        return self.stats

    @property
    def label(self) -> str:
        delay = f"{DELAY_MS} ms ± {JITTER_MS} ms"
        if self.kind == "netem":
            return f"nginx TLS 1.3 in a network namespace, netem delay {delay} on its packets"
        if self.kind == "nginx":
            return (
                f"nginx TLS 1.3 in a network namespace, {delay} added by nginx before each "
                "answer (no netem in this kernel: handshakes cost no round trip)"
            )
        return f"loopback-with-delay (no namespace here): nginx TLS 1.3, {delay} per answer"


def _ca_files(workdir: Path, host: str) -> Path:
    import trustme

    ca = trustme.CA(organization_name="tidings bench CA")
    leaf = ca.issue_cert(host)
    ca.cert_pem.write_to_path(str(workdir / "ca.pem"))
    (workdir / "server.pem").write_bytes(b"".join(c.bytes() for c in leaf.cert_chain_pems))
    leaf.private_key_pem.write_to_path(str(workdir / "server.key"))
    return workdir / "ca.pem"


def _addresses() -> tuple[str, str]:
    """(host end, namespace end) of a /30 of the benchmarking range chosen by the pid."""
    base = int(BENCH_NET.network_address) + (os.getpid() % (BENCH_NET.num_addresses // 4)) * 4
    return str(ipaddress.ip_address(base + 1)), str(ipaddress.ip_address(base + 2))


@contextlib.contextmanager
def _namespace() -> Iterator[tuple[str, str, bool]]:
    """A network namespace joined to this one by a veth pair, its end delaying every packet it
    sends where the kernel has netem; yields (namespace name, the namespace end's address,
    whether netem delays its packets)."""
    for name in _stale_namespaces():
        _run("ip", "netns", "delete", name, check=False)
    pid = os.getpid()
    ns, veth_host, veth_ns = f"{NS_PREFIX}{pid}", f"tdw{pid}h", f"tdw{pid}n"
    host_ip, ns_ip = _addresses()
    _run("ip", "netns", "add", ns)
    try:
        _run("ip", "link", "add", veth_host, "type", "veth", "peer", "name", veth_ns)
        _run("ip", "link", "set", veth_ns, "netns", ns)
        _run("ip", "addr", "add", f"{host_ip}/30", "dev", veth_host)
        _run("ip", "link", "set", veth_host, "up")
        inside = ("ip", "netns", "exec", ns)
        _run(*inside, "ip", "addr", "add", f"{ns_ip}/30", "dev", veth_ns)
        _run(*inside, "ip", "link", "set", veth_ns, "up")
        _run(*inside, "ip", "link", "set", "lo", "up")
        # replies wait DELAY_MS ± JITTER_MS; a queue long enough for thousands of requests a
        # second at that delay (netem's default of 1,000 packets would drop)
        netem = _run(
            *inside,
            *("tc", "qdisc", "add", "dev", veth_ns, "root", "netem"),
            *("delay", f"{DELAY_MS}ms", f"{JITTER_MS}ms", "limit", "1000000"),
            check=False,
        )
        yield ns, ns_ip, netem.returncode == 0
    finally:
        _run("ip", "link", "delete", veth_host, check=False)  # takes its peer with it
        _run("ip", "netns", "delete", ns, check=False)


@contextlib.contextmanager
def wan_receiver() -> Iterator[WanReceiver]:
    """The distant TLS receiver for the block (see the module docstring), stopped and removed
    afterwards whatever happens."""
    nginx = ensure_nginx()
    if not ECHO_MODULE.exists():
        apt_install("libnginx-mod-http-echo")
    if nginx is None or not ECHO_MODULE.exists():
        raise RuntimeError(
            "the wan scenario needs nginx with its echo module (Debian's nginx-light)"
        )
    workdir = Path(tempfile.mkdtemp(prefix="tidings-bench-wan-"))
    try:
        if namespaces_allowed():
            with _namespace() as (ns, ip, netem):
                rx = _start_nginx(nginx, workdir, ip, "netem" if netem else "nginx", ns)
                try:
                    yield rx
                finally:
                    rx.stop()
        else:
            rx = _start_nginx(nginx, workdir, "127.0.0.1", "loopback", None)
            try:
                yield rx
            finally:
                rx.stop()
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def _start_nginx(binary: str, workdir: Path, ip: str, delay: str, ns: str | None) -> WanReceiver:
    ca = _ca_files(workdir, ip)
    port = PORT if ns is not None else free_port()
    conf = workdir / "nginx.conf"
    conf.write_text(
        NGINX_TLS_CONF.format(
            dir=workdir,
            host=ip,
            port=port,
            split=DELAY_SPLIT,
            load_echo="" if delay == "netem" else f"load_module {ECHO_MODULE};",
            answer=ANSWER_AT_ONCE if delay == "netem" else ANSWER_DELAYED,
        )
    )
    inside = ["ip", "netns", "exec", ns] if ns is not None else []
    process = subprocess.Popen(
        [*inside, binary, "-c", str(conf), "-p", str(workdir)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    wait_port(port, host=ip)
    return WanReceiver(delay, ip, port, ca, workdir, process)


def _stop(rx: WanReceiver) -> None:
    if rx.process is None or rx.process.returncode is not None:
        return  # stopped already: its stats are kept
    if rx.process.poll() is None:
        rx.process.send_signal(signal.SIGQUIT)
        try:
            rx.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            rx.process.kill()
            rx.process.wait()
    rx.stats = tls_stats(rx.workdir / "ids.log")


def tls_stats(log: Path) -> dict[str, Any]:
    """Receipts (bench.receiver) of tidings' requests, plus the TLS handshakes each side made:
    a connection whose first request was the ceiling's is the ceiling's."""
    receipts = Receipts()
    handshakes = {"tidings": 0, "ceiling": 0}
    resumed = {"tidings": 0, "ceiling": 0}
    requests = {"tidings": 0, "ceiling": 0}
    if log.exists():
        with log.open() as lines:
            for line in lines:
                parts = line.split()
                if len(parts) != 7 or parts[1] == "-":
                    continue
                side = "ceiling" if parts[1].startswith("dlv_ceiling_") else "tidings"
                requests[side] += 1
                if parts[5] == "1":
                    handshakes[side] += 1
                    resumed[side] += parts[6] == "r"
                if side == "tidings":
                    event = parts[2] if parts[2] != "-" else parts[3]
                    receipts.add(parts[1], event, float(parts[0]))
    return receipts.stats() | {"handshakes": handshakes, "resumed": resumed, "requests": requests}
