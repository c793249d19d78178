"""The worker's counters (delivery/metrics.py): attempts by status class."""

from __future__ import annotations

import pytest

from tidings.delivery.metrics import status_class


@pytest.mark.parametrize(
    ("code", "cls"), [(200, "2xx"), (302, "3xx"), (404, "4xx"), (503, "5xx"), (None, "error")]
)
def test_status_class(code: int | None, cls: str) -> None:
    assert status_class(code) == cls
