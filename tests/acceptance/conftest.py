"""Acceptance tests run the real `tidings` processes, stop them with signals and poll with
timeouts (never fixed sleeps)."""

from __future__ import annotations

import base64
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# The endpoint secrets' key-encryption key of the processes the tests start (PostgreSQL needs
# one; tests that check the SQLite default pass TIDINGS_ENCRYPTION_KEY="" to drop it).
TEST_ENCRYPTION_KEY = base64.urlsafe_b64encode(b"tidings test key-encryption key!").decode()


def clean_env(**overrides: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TIDINGS_")}
    env["TIDINGS_ENCRYPTION_KEY"] = TEST_ENCRYPTION_KEY
    env.update(overrides)
    return env


@dataclass
class Served:
    proc: subprocess.Popen[bytes]
    url: str
    cwd: Path
    log_path: Path

    def logs(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self, timeout: float = 20.0) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                return self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                raise
        return int(self.proc.returncode)


def wait_http(url: str, timeout: float = 30.0, proc: subprocess.Popen[Any] | None = None) -> None:
    deadline = time.monotonic() + timeout
    last: Exception | None = None
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"process exited with {proc.returncode}")
        try:
            if httpx.get(url, timeout=1.0).status_code < 500:
                return
        except httpx.HTTPError as exc:
            last = exc
        time.sleep(0.1)
    raise TimeoutError(f"{url} did not answer in {timeout} s: {last}")


@pytest.fixture
def serve_process(tmp_path: Path) -> Iterator[object]:
    started: list[Served] = []

    def start(*args: str, env: dict[str, str] | None = None) -> Served:
        port = free_port()
        log_path = tmp_path / f"serve-{port}.log"
        fh = log_path.open("wb")
        proc = subprocess.Popen(
            [sys.executable, "-m", "tidings", "serve", "--port", str(port), *args],
            cwd=tmp_path,
            env=env if env is not None else clean_env(),
            stdout=fh,
            stderr=subprocess.STDOUT,
        )
        served = Served(proc, f"http://127.0.0.1:{port}", tmp_path, log_path)
        started.append(served)
        wait_http(served.url + "/healthz", proc=proc)
        return served

    yield start
    for s in started:
        if s.proc.poll() is None:
            s.proc.kill()
            s.proc.wait()
