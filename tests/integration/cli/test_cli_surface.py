"""The CLI as people meet it (issue 23, "The CLI"): `--version`; one name per concept; help that
names real types and defaults; tables that fit 80 columns with a way to see ids whole; a `--url`
without a scheme, an answer that is not tidings', and every validation detail, each said
plainly; `--field` for shell variables."""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from tests.integration.cli.conftest import Server, clean_env, run_cli
from tidings import __version__


def _ok(result: object) -> object:
    assert getattr(result, "code", None) == 0, result
    return result


def test_version() -> None:
    result = run_cli("--version")
    assert result.code == 0 and result.out.strip() == f"tidings {__version__}"


def _help(*command: str) -> str:
    result = run_cli(*command, "--help", env=clean_env(COLUMNS="100"))
    assert result.code == 0, result
    return result.out


def test_help_names_types_and_defaults_not_python_annotations() -> None:
    for command in (
        ("endpoints", "create"),
        ("events", "publish"),
        ("events", "list"),
        ("replay",),
        ("listen",),
        ("serve",),
        ("deliveries", "list"),
    ):
        text = _help(*command)
        assert not re.search(r"<(bool|str|int|float|list\[)", text), (command, text)
        assert "{" not in text.splitlines()[1], text  # no {arg} in the usage line
    create = _help("endpoints", "create")
    assert "--schema-version" in create and "--version" not in create
    assert re.search(r"--types\s+-t\s+PATTERNS", create)
    assert re.search(r"--url\s+URL", create) and "TIDINGS_URL" in create
    assert "default: http://127.0.0.1:8080" in create
    publish = _help("events", "publish")
    assert "--schema-version" in publish and re.search(r"--file\s+FILE", publish)
    assert not re.search(r"-f\b", publish)  # -f is --follow, only in `events list`
    assert re.search(r"--follow\s+-f", _help("events", "list"))
    replay = _help("replay")
    assert "ran out of attempts" in replay and "default: (failed)" in replay
    assert re.search(r"--since\s+TIME", replay)
    serve = _help("serve")
    assert re.search(r"--host\s+ADDRESS .*TIDINGS_HOST.*default: \(127\.0\.0\.1\)", serve)
    assert re.search(r"--port\s+PORT .*default: \(8080\)", serve)
    listen = _help("listen")
    assert "repeat" in listen and "default: 4000" in listen


def test_a_url_without_a_scheme_is_a_clear_usage_error() -> None:
    result = run_cli("endpoints", "list", env=clean_env(TIDINGS_URL="127.0.0.1:8080"))
    assert result.code == 2
    assert result.err.strip() == (
        "error: --url (TIDINGS_URL) must start with http:// or https://, not '127.0.0.1:8080' "
        "(for example http://127.0.0.1:8080)"
    )


class _NotTidings(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        status = 200 if self.path.startswith("/v1/endpoints") else 404
        body = b"<html><body>Welcome to nginx!</body></html>"
        self.send_response(status)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def other_server() -> Iterator[str]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _NotTidings)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()


def test_an_answer_that_is_not_tidings_says_so(other_server: str) -> None:
    env = clean_env(TIDINGS_URL=other_server, TIDINGS_KEY="k")
    for args, status in ((("endpoints", "list"), 200), (("deliveries", "get", "dlv_1"), 404)):
        result = run_cli(*args, env=env)
        assert result.code == 1, result
        assert result.err.strip() == (
            f"error: {other_server} answered {status} (text/html), which is not an answer of "
            "the tidings API; is --url (TIDINGS_URL) the tidings API?"
        )


def test_every_validation_detail_is_shown(server: Server) -> None:
    org = json.loads(_ok(server.cli("orgs", "create", "Acme", "--json")).out)  # type: ignore[attr-defined]
    result = server.cli(
        "events", "publish", "--type", "compliance.status_changed", "--org",
        org["organizationUuid"], "--data", json.dumps({"status": 7, "extra": True}),
    )  # fmt: skip
    assert result.code == 1
    lines = result.err.strip().splitlines()
    assert lines[0].startswith("error 422 validation_failed: $.data")
    details = [line.strip() for line in lines[1:]]
    assert len(details) >= 3, result.err  # orderId and previousStatus missing, status a number
    assert all(d.startswith("$.data") for d in details), details
    assert any("orderId" in d for d in details) and any(
        d.startswith("$.data.status") for d in details
    )


def test_field_prints_one_bare_value_for_shell_variables(server: Server) -> None:
    key = server.cli("orgs", "create", "Acme", "--uuid", "acme", "--field", "apiKey")
    assert key.code == 0 and re.fullmatch(r"tdk_org_\S+\n", key.out), key
    missing = server.cli("orgs", "create", "Acme 2", "--field", "nope")
    assert missing.code == 2
    assert "the answer has no field 'nope' (it has: organizationUuid, name, apiKey)" in missing.err


def test_tables_fit_80_columns_and_wide_shows_ids_whole(server: Server) -> None:
    org_key = _ok(server.cli("orgs", "create", "Acme", "--field", "apiKey")).out.strip()  # type: ignore[attr-defined]
    endpoint = _ok(
        server.cli(
            "endpoints",
            "create",
            "http://127.0.0.1:9/hooks",
            "--types",
            "compliance.*",
            "--field",
            "id",
            key=org_key,
        )
    ).out.strip()  # type: ignore[attr-defined]
    org_id = json.loads(_ok(server.cli("orgs", "list", "--json")).out)["items"][0]  # type: ignore[attr-defined]
    for n in range(2):
        data = json.dumps({"orderId": f"o{n}", "previousStatus": None, "status": "VALID"})
        _ok(
            server.cli(
                "events", "publish", "--type", "compliance.status_changed",
                "--org", org_id["organizationUuid"], "--data", data,
            )
        )  # fmt: skip
    env = clean_env(TIDINGS_URL=server.url, TIDINGS_KEY=org_key, COLUMNS="80")
    narrow = run_cli("deliveries", "list", env=env)
    assert narrow.code == 0, narrow
    lines = narrow.out.splitlines()
    assert len(lines) >= 6 and all(len(line) <= 80 for line in lines), narrow.out
    assert endpoint not in narrow.out and f"…{endpoint[-6:]}" in narrow.out
    assert "--wide shows them whole" in narrow.err
    wide = run_cli("deliveries", "list", "--wide", env=env)
    assert endpoint in wide.out and "shortened" not in wide.err
    full = json.loads(run_cli("deliveries", "list", "--json", env=env).out)
    assert {d["endpointId"] for d in full["items"]} == {endpoint}
