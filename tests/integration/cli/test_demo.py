"""`tidings demo` runs to completion (exit 0) and shows signed deliveries in all three formats, a
retried delivery with its attempts, the history, a replay and the state; Ctrl-C (SIGINT)
mid-story stops it cleanly. It runs its own embedded service (SQLite in a temp dir), so it is
not parametrized over backends."""

from __future__ import annotations

import re
from collections.abc import Callable

from tests.integration.cli.conftest import Background, run_cli


def test_demo_runs_to_completion() -> None:
    result = run_cli("demo")
    out = result.out
    assert result.code == 0, f"{out}\n{result.err}"
    assert "Traceback" not in out + result.err
    # deliveries in all three formats, each verified by the receiver
    for fmt, type_name in (
        ("novatrade", "compliance.status_changed"),
        ("dlt", "onboarding.failedIDV"),
        ("standard", "webhook.endpoint_auto_paused"),
    ):
        pattern = rf"✓ verified\s+{fmt}\s+.*{re.escape(type_name)}.*→ 200"
        assert re.search(pattern, out), f"no verified {fmt} {type_name} delivery:\n{out}"
    # the ERP failed twice and got the decision on the third attempt
    assert re.search(r"erp\s+compliance\.decision_made .*attempt 1 → 500", out)
    assert re.search(r"erp\s+compliance\.decision_made .*attempt 3 → 200", out)
    assert "retried delivery" in out
    assert re.search(r"attempt 1 at .*: 500", out) and re.search(r"attempt 3 at .*: 200", out)
    # the 410 paused the retired endpoint
    assert "legacy-crm is now paused" in out
    # the replay: the dashboard's four deliveries again, each marked a duplicate by its receiver
    assert re.search(r"↻ replay POST /v1/endpoints/ep_\w+/replay .*: 4 deliveries", out)
    assert len(re.findall(r"compliance-dashboard .*→ 200 \(duplicate: already handled\)", out)) == 4
    assert "4 of 4 marked as duplicates" in out
    assert "Delivery history" in out
    # the state tidings built from the events
    assert "decision=VALID_EXPORT" in out
    assert "funding_locked=True" in out
    assert "still waiting" not in out
    assert "done" in out


def test_demo_stops_cleanly_on_sigint(background: Callable[..., Background]) -> None:
    demo = background("demo", "--keep-running")
    demo.wait_for("registers endpoints", timeout=60)
    code = demo.interrupt()
    assert code == 0, demo.text() + "".join(demo.errors)
    assert "demo stopped" in demo.text()
    assert "Traceback" not in demo.text() + "".join(demo.errors)
