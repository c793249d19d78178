"""The README's walk-through, run as written (issue 23, item 3).

The shell blocks of the README's "Five minutes with tidings" section are read from README.md at
each run, so the test follows the text. They run the way a person runs them: the first block
(starting the service) in a terminal of its own, the others typed block by block into one bash
session, in a fresh directory that has what the checkout gives (`scripts/`, `.venv/`) and
nothing else; between blocks the test waits for what the text says to wait for. The only change
to the text: the ports 8080 and 9000 become free ones (tests never bind fixed ports). `tidings`
is not on the PATH the session starts with: the README's own commands must put it there.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from tests.acceptance.conftest import clean_env, free_port, wait_http

ROOT = Path(__file__).resolve().parents[2]
SECTION = "## Five minutes with tidings"
BLOCK_SECONDS = 60.0  # a bound for one block, not a timing goal

pytestmark = pytest.mark.timeout(300)  # seven blocks on a busy machine


def readme_blocks() -> list[str]:
    """The ```sh blocks of the walk-through section, in order."""
    text = (ROOT / "README.md").read_text()
    start = text.index(SECTION)
    end = text.find("\n## ", start + len(SECTION))
    section = text[start : end if end != -1 else len(text)]
    return re.findall(r"^```sh\n(.*?)^```", section, flags=re.DOTALL | re.MULTILINE)


def test_the_walkthrough_has_the_blocks_this_test_drives() -> None:
    blocks = readme_blocks()
    assert len(blocks) >= 5, blocks
    assert "tidings serve --dev" in blocks[0]
    assert any("events publish" in b for b in blocks) and any("replay" in b for b in blocks)


@dataclass
class Session:
    """One bash reading the blocks from stdin; everything it and its children print."""

    proc: subprocess.Popen[str]
    lines: list[str] = field(default_factory=list)

    def text(self) -> str:
        return "".join(self.lines)

    def run(self, number: int, block: str) -> str:
        assert self.proc.stdin is not None
        marker = f"@@ block {number} done"
        seen = len(self.lines)
        self.proc.stdin.write(f"{block}\necho '{marker}'\n")
        self.proc.stdin.flush()
        self.wait(lambda: marker in self.text(), f"block {number}:\n{block}")
        # `export X=$(cmd)` hides a failing cmd from `set -e`: read what the block printed
        failed = [ln for ln in self.lines[seen:] if re.match(r"(error\b|bash: )", ln)]
        assert not failed, f"block {number} failed:\n{block}\n{self.text()}"
        return self.text()

    def wait(self, done: Callable[[], bool], what: str) -> None:
        deadline = time.monotonic() + BLOCK_SECONDS
        while not done():
            if self.proc.poll() is not None:
                raise AssertionError(
                    f"bash stopped ({self.proc.returncode}) in {what}\n{self.text()}"
                )
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out waiting for {what}\n{self.text()}")
            time.sleep(0.05)


def _pump(proc: subprocess.Popen[str], into: list[str]) -> None:
    assert proc.stdout is not None
    for line in proc.stdout:
        into.append(line)


def _env(**overrides: str) -> dict[str, str]:
    """A terminal's environment: no TIDINGS_* settings, no virtualenv on the PATH."""
    env = clean_env(**overrides)
    env.pop("VIRTUAL_ENV", None)
    env["PATH"] = os.pathsep.join(
        p for p in env.get("PATH", "").split(os.pathsep) if ".venv" not in p
    )
    env.update({"COLUMNS": "100", "NO_COLOR": "1", "TERM": "dumb"})
    return env


@pytest.fixture
def directory(tmp_path: Path) -> Path:
    """What a checkout gives the walk-through: scripts/ and the .venv the first command made."""
    (tmp_path / "scripts").symlink_to(ROOT / "scripts")
    (tmp_path / ".venv").symlink_to(ROOT / ".venv")
    return tmp_path


def _start(command: list[str], cwd: Path, env: dict[str, str]) -> Session:
    proc = subprocess.Popen(
        command,
        cwd=cwd,
        env=env,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        bufsize=1,
        start_new_session=True,  # its own process group: the listener it starts goes with it
    )
    session = Session(proc)
    threading.Thread(target=_pump, args=(proc, session.lines), daemon=True).start()
    return session


def _stop(session: Session) -> None:
    """SIGTERM to its whole group (bash may be gone while the listener it started is not)."""
    try:
        os.killpg(session.proc.pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    try:
        session.proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        os.killpg(session.proc.pid, signal.SIGKILL)
        session.proc.wait()


@pytest.fixture
def sessions() -> Iterator[list[Session]]:
    started: list[Session] = []
    yield started
    for session in reversed(started):
        _stop(session)


def test_the_readme_walkthrough_runs_as_written(directory: Path, sessions: list[Session]) -> None:
    api_port, listener_port = free_port(), free_port()

    def ported(block: str) -> str:
        return block.replace("8080", str(api_port)).replace("9000", str(listener_port))

    blocks = [ported(b) for b in readme_blocks()]
    url = f"http://127.0.0.1:{api_port}"

    # terminal 1: the service (it listens on TIDINGS_PORT, as its first block gives no port)
    service = _start(["bash", "-c", blocks[0]], directory, _env(TIDINGS_PORT=str(api_port)))
    sessions.append(service)
    wait_http(url + "/healthz", timeout=BLOCK_SECONDS, proc=service.proc)

    # terminal 2: the rest, block by block
    shell = _start(["bash", "--noprofile", "--norc"], directory, _env())
    sessions.append(shell)
    assert shell.proc.stdin is not None
    shell.proc.stdin.write("set -e -o pipefail\n")
    org_key = ""
    for number, block in enumerate(blocks[1:], start=1):
        shell.run(number, block)
        if "listen" in block:
            shell.wait(lambda: "listening on" in shell.text(), "the listener to start")
            org_key = _org_key(directory, url)
        if "events publish" in block:
            shell.wait(lambda: _verified(shell) >= 1, "the listener's first verified delivery")
            _wait_succeeded(url, org_key, shell)
        if "replay" in block:
            shell.wait(lambda: "duplicate: already handled" in shell.text(), "the replay")
        if "curl" in block:
            shell.wait(lambda: _verified(shell) >= 3, "the delivery of the curl publish")

    out = shell.text()
    assert "command not found" not in out and "Traceback" not in out, out
    assert "✗ rejected" not in out and "? unverified" not in out, out
    assert re.search(r"✓ verified\s+novatrade\s+compliance\.status_changed .*attempt 1 → 200", out)
    assert "published: evt_" in out
    assert "succeeded" in out  # deliveries list
    assert re.search(r"status\s+VALID", out)  # state compliance
    assert "replayed 1 deliveries" in out
    compact = out.replace(" ", "")
    assert '"action":"endpoint.create"' in compact and '"action":"endpoint.replay"' in compact
    assert "audit entries exported" in out
    assert '"compliance.status_changed"' in out and '"status":"VALID"' in out.replace(" ", "")
    assert "tidings-data" in os.listdir(directory) and (directory / "event.json").exists()


def _verified(session: Session) -> int:
    return session.text().count("✓ verified")


def _org_key(directory: Path, url: str) -> str:
    """The organization key the walk-through made, read the way the test may: as the platform."""
    platform = (directory / "tidings-data" / "platform-key").read_text().strip()
    headers = {"Authorization": f"Bearer {platform}"}
    org = httpx.post(url + "/v1/organizations/acme-exports/api-keys", headers=headers)
    assert org.status_code == 201, org.text
    return str(org.json()["apiKey"])


def _wait_succeeded(url: str, org_key: str, session: Session) -> None:
    """A person reads the listener's line, then types the next block: by then the service has
    recorded the delivery."""
    headers = {"Authorization": f"Bearer {org_key}"}

    def succeeded() -> bool:
        items = httpx.get(url + "/v1/deliveries", headers=headers).json()["items"]
        return bool(items) and all(d["status"] == "succeeded" for d in items)

    session.wait(succeeded, "the delivery to be recorded as succeeded")
