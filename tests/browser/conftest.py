"""Browser tests: Playwright driving Debian's Chromium (/usr/bin/chromium, installed by
scripts/bootstrap; Playwright downloads no browser) against a real `tidings serve` on SQLite and
on PostgreSQL (the `backend` fixture), like the acceptance tests. Launched headless with the flags
that work on these machines (no sandbox, no GPU, no QUIC, nothing fetched in the background).

- `chromium`: one headless browser per test module; `page`: a new context (its own cookies) and
  page per test, 1280 x 900. `console(backend)` starts `tidings serve` on a fresh database and
  answers a `Console` (its URL, the platform key, an API client).
- `shot(page, name)`: a screenshot. They go to a temporary folder, or to the folder named by
  TIDINGS_CONSOLE_SCREENSHOTS (the README's ones: `TIDINGS_CONSOLE_SCREENSHOTS=docs/console`),
  so a test run leaves the work tree as it was.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.acceptance.conftest import Served, clean_env, serve_process

__all__ = ["serve_process"]  # the fixture, shared with the acceptance tests

CHROMIUM = os.environ.get("TIDINGS_TEST_CHROMIUM", "/usr/bin/chromium")
LAUNCH_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
PLATFORM_KEY = "tdk_platform_browser_tests_0123456789abcdef"
WIDE = {"width": 1280, "height": 900}
NARROW = {"width": 400, "height": 860}

pytestmark = pytest.mark.browser


@dataclass
class Console:
    served: Served
    platform_key: str = PLATFORM_KEY

    @property
    def url(self) -> str:
        return self.served.url

    def api(self, method: str, path: str, key: str | None = None, **kw: Any) -> httpx.Response:
        headers = {"Authorization": f"Bearer {key or self.platform_key}"}
        return httpx.request(method, self.url + path, headers=headers, timeout=10, **kw)

    def org(self, name: str = "Acme Exports") -> dict[str, Any]:
        r = self.api("POST", "/v1/organizations", json={"name": name})
        assert r.status_code == 201, r.text
        return dict(r.json())

    def portal_link(self, org_id: str, **body: Any) -> dict[str, Any]:
        r = self.api("POST", f"/v1/organizations/{org_id}/portal-sessions", json=body)
        assert r.status_code == 201, r.text
        return dict(r.json())


# Generous waits: the suite shares two cores with everything else a CI run or a machine does.
ACTION_TIMEOUT_MS = 15_000


# One browser per module, not per session: Playwright's sync API keeps its event loop running
# in this thread while it is open, and the async tests that follow need the thread's loop free.
@pytest.fixture(scope="module")
def chromium() -> Iterator[Any]:
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: scripts/bootstrap installs Debian's chromium")
    from playwright.sync_api import expect, sync_playwright

    expect.set_options(timeout=ACTION_TIMEOUT_MS)
    # Playwright gives each launch a new, empty --user-data-dir of its own (it refuses one in
    # `args`), so every run starts from a clean profile.
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=LAUNCH_FLAGS)
        yield browser
        browser.close()


@pytest.fixture
def page(chromium: Any) -> Iterator[Any]:
    context = chromium.new_context(viewport=WIDE)
    context.set_default_timeout(ACTION_TIMEOUT_MS)
    page = context.new_page()
    yield page
    context.close()


@pytest.fixture
def console(
    backend: str, fresh_database_url_factory: Callable[..., str], serve_process: Any
) -> Console:
    env = clean_env(
        TIDINGS_DATABASE_URL=fresh_database_url_factory(backend),
        TIDINGS_PLATFORM_KEY=PLATFORM_KEY,
        TIDINGS_ALLOW_PRIVATE_URLS="true",
    )
    return Console(serve_process(env=env))


@pytest.fixture(scope="session")
def screenshot_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    chosen = os.environ.get("TIDINGS_CONSOLE_SCREENSHOTS")
    path = Path(chosen) if chosen else tmp_path_factory.mktemp("screenshots")
    path.mkdir(parents=True, exist_ok=True)
    return path


@pytest.fixture
def shot(screenshot_dir: Path, backend: str) -> Callable[..., None]:
    def take(page: Any, name: str, *, full_page: bool = True) -> None:
        if backend == "sqlite":  # one set: both backends draw the same pages
            page.screenshot(path=str(screenshot_dir / f"{name}.png"), full_page=full_page)

    return take
