"""A real `tidings serve` per test (tests/acceptance's `serve_process`), on SQLite and on
PostgreSQL, for the checks of the served OpenAPI description."""

from __future__ import annotations

from tests.acceptance.conftest import serve_process

__all__ = ["serve_process"]
