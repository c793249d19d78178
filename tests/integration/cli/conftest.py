"""The CLI through its real entry point (the `tidings` console script, as subprocesses) against a
real `tidings serve` on a free port: a fresh database of each backend (the `database_url`
fixture), a known platform key, private URLs allowed so receivers on 127.0.0.1 can be used, and
a fast retry schedule. Everything is polled with timeouts, never fixed sleeps."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import httpx
import pytest

from tests.acceptance.conftest import TEST_ENCRYPTION_KEY

PLATFORM_KEY = "tdk_platform_cli_test_0123456789abcdef"
BIN = Path(sys.executable).parent / "tidings"
TIDINGS = [str(BIN)] if BIN.exists() else [sys.executable, "-m", "tidings"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def clean_env(**overrides: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TIDINGS_")}
    env.update({"COLUMNS": "200", "NO_COLOR": "1", "TERM": "dumb"})
    env["TIDINGS_ENCRYPTION_KEY"] = TEST_ENCRYPTION_KEY
    env.update(overrides)
    return env


def wait_until(predicate: Callable[[], Any], timeout: float = 20.0, what: str = "") -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise TimeoutError(f"timed out waiting for {what or predicate}")


@dataclass
class Result:
    code: int
    out: str
    err: str

    def json(self) -> Any:
        return json.loads(self.out)


@dataclass
class Server:
    url: str
    proc: subprocess.Popen[bytes]
    log: Path
    key: str = PLATFORM_KEY

    def cli(self, *args: str, key: str | None = None, stdin: str | None = None) -> Result:
        """Run `tidings ARGS` against this server (TIDINGS_URL/TIDINGS_KEY in the env)."""
        env = clean_env(TIDINGS_URL=self.url, TIDINGS_KEY=key if key is not None else self.key)
        return run_cli(*args, env=env, stdin=stdin)


def run_cli(*args: str, env: dict[str, str] | None = None, stdin: str | None = None) -> Result:
    proc = subprocess.run(
        [*TIDINGS, *args],
        env=env if env is not None else clean_env(),
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
    )
    return Result(proc.returncode, proc.stdout, proc.stderr)


@pytest.fixture
def server(database_url: str, tmp_path: Path) -> Iterator[Server]:
    port = free_port()
    log = tmp_path / "serve.log"
    env = clean_env(
        TIDINGS_DATABASE_URL=database_url,
        TIDINGS_PLATFORM_KEY=PLATFORM_KEY,
        TIDINGS_ALLOW_PRIVATE_URLS="true",
        TIDINGS_RETRY_SCHEDULE="1,1",
        TIDINGS_RETRY_JITTER="0",
    )
    with log.open("wb") as fh:
        proc = subprocess.Popen(
            [*TIDINGS, "serve", "--port", str(port)],
            cwd=tmp_path,
            env=env,
            stdout=fh,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"

    def healthy() -> bool:
        if proc.poll() is not None:
            raise RuntimeError(f"tidings serve exited: {log.read_text(errors='replace')}")
        try:
            return httpx.get(url + "/healthz", timeout=1.0).status_code == 200
        except httpx.HTTPError:
            return False

    try:
        wait_until(healthy, 30.0, "tidings serve")
        yield Server(url, proc, log)
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


@dataclass
class Background:
    """A long-running `tidings` subprocess whose stdout lines are collected by a thread."""

    proc: subprocess.Popen[str]
    lines: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def text(self) -> str:
        return "".join(self.lines)

    def wait_for(self, needle: str, timeout: float = 30.0) -> str:
        def found() -> str | None:
            for line in list(self.lines):
                if needle in line:
                    return line
            if self.proc.poll() is not None and needle not in self.text():
                raise RuntimeError(
                    f"exited {self.proc.returncode} before {needle!r}:\n{self.text()}"
                    f"\n{''.join(self.errors)}"
                )
            return None

        return str(wait_until(found, timeout, needle))

    def json_lines(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in list(self.lines) if line.startswith("{")]

    def interrupt(self, timeout: float = 30.0) -> int:
        self.proc.send_signal(signal.SIGINT)
        return self.proc.wait(timeout=timeout)


def default_sigint() -> None:
    """In the child before exec: SIGINT back to its default. A suite started in the background
    (`scripts/test &`, CI runners) ignores SIGINT, children inherit an ignored signal through
    exec, and `Background.interrupt` would then stop nothing."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


@pytest.fixture
def background() -> Iterator[Callable[..., Background]]:
    import threading

    started: list[Background] = []

    def start(*args: str, env: dict[str, str] | None = None) -> Background:
        proc = subprocess.Popen(
            [*TIDINGS, *args],
            env=env if env is not None else clean_env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            bufsize=1,
            preexec_fn=default_sigint,
        )
        bg = Background(proc)

        def pump(stream: IO[str] | None, into: list[str]) -> None:
            assert stream is not None
            for line in stream:
                into.append(line)

        threading.Thread(target=pump, args=(proc.stdout, bg.lines), daemon=True).start()
        threading.Thread(target=pump, args=(proc.stderr, bg.errors), daemon=True).start()
        started.append(bg)
        return bg

    yield start
    for bg in started:
        if bg.proc.poll() is None:
            bg.proc.kill()
            bg.proc.wait()
