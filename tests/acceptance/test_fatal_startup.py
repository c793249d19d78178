"""A `tidings serve` that cannot start stops at once: one line on stderr, a non-zero exit code,
no traceback and no log loop (issue 23, item 7: a busy port used to log `address already in use`
and then loop `store is not connected` for ever)."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

from tests.acceptance.conftest import clean_env, free_port

# A bound on how long a failed start may take, not a timing goal: without the fix the process
# never exits at all.
EXIT_WITHIN_SECONDS = 30.0


def _serve(tmp_path: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tidings", "serve", *args],
        cwd=tmp_path,
        env=clean_env(**env),
        capture_output=True,
        text=True,
        timeout=EXIT_WITHIN_SECONDS,
    )


def _one_line_error(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 1, result
    assert "Traceback" not in result.stdout + result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ")
    return lines[0]


def test_a_busy_port_stops_serve_with_one_line(tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = _serve(tmp_path, "--port", str(port))
    line = _one_line_error(result)
    assert f"cannot listen on 127.0.0.1:{port}" in line
    assert "already in use" in line.lower()
    # it stopped before doing anything else: nothing was logged, no database was made
    assert result.stdout == ""
    assert not (tmp_path / "tidings-data").exists()


def test_an_unreachable_database_stops_serve_with_one_line(tmp_path: Path) -> None:
    url = f"postgresql://tidings:s3cret-pw@127.0.0.1:{free_port()}/tidings"
    result = _serve(
        tmp_path, TIDINGS_DATABASE_URL=url, TIDINGS_PLATFORM_KEY="tdk_platform_fatal_test"
    )
    line = _one_line_error(result)
    assert line.startswith("error: cannot open the database (TIDINGS_DATABASE_URL)")
    assert "s3cret-pw" not in result.stdout + result.stderr


def test_an_address_that_cannot_be_bound_stops_serve_with_one_line(tmp_path: Path) -> None:
    result = _serve(tmp_path, "--host", "192.0.2.1", "--port", str(free_port()))
    line = _one_line_error(result)
    assert "cannot listen on 192.0.2.1" in line
