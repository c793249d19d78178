"""The worker's settings object (delivery/settings.py): the lease and shutdown grace derived from
it, the limits it refuses, and `from_settings`, the one place TIDINGS_* reach the worker."""

from __future__ import annotations

import pytest

from tidings.config import Settings
from tidings.delivery.settings import WorkerSettings, lease_seconds_for


def test_lease_outlives_the_timeout_but_stays_inside_the_contract() -> None:
    lease = lease_seconds_for(15.0, 30.0)
    assert 15.0 < lease < 15.0 + 30.0 - 1.0  # one idle poll still fits
    assert WorkerSettings(worker_id="w").lease_seconds == lease  # the defaults


# (Settings field, WorkerSettings field, a value other than the default of either)
CARRIED = [
    ("delivery_timeout_seconds", "delivery_timeout_seconds", 7.0),
    ("retry_schedule_seconds", "retry_schedule", (1.0, 2.0)),
    ("retry_jitter_fraction", "jitter_fraction", 0.25),
    ("pause_after_failures", "pause_after_failures", 3),
    ("pause_after_seconds", "pause_after_seconds", 60.0),
    ("worker_concurrency", "concurrency", 17),
    ("claim_batch_size", "claim_batch_size", 9),
    ("endpoint_max_in_flight", "endpoint_max_in_flight", 5),
    ("retention_days", "retention_days", 2.0),
    ("lease_margin_seconds", "lease_margin_seconds", 11.0),
]


def test_from_settings_carries_every_worker_setting() -> None:
    settings = Settings(**{name: value for name, _, value in CARRIED})  # type: ignore[arg-type]
    worker = WorkerSettings.from_settings(settings, worker_id="host:1")
    expected = {name: value for _, name, value in CARRIED}
    assert worker == WorkerSettings(worker_id="host:1", **expected)  # type: ignore[arg-type]
    defaults = WorkerSettings(worker_id="host:1")
    assert all(getattr(defaults, name) != value for name, value in expected.items())
    assert worker.lease_seconds == lease_seconds_for(7.0, 11.0)


def test_the_shutdown_grace_defaults_to_just_over_the_delivery_timeout() -> None:
    assert WorkerSettings(worker_id="w", delivery_timeout_seconds=4.0).grace_seconds == 5.0
    assert WorkerSettings(worker_id="w", shutdown_grace_seconds=0.5).grace_seconds == 0.5


@pytest.mark.parametrize("field", ["concurrency", "claim_batch_size", "endpoint_max_in_flight"])
def test_limits_below_one_are_refused(field: str) -> None:
    with pytest.raises(ValueError, match="must be >= 1"):
        WorkerSettings(worker_id="w", **{field: 0})  # type: ignore[arg-type]


def test_a_schedule_given_as_a_list_is_kept_as_a_tuple() -> None:
    settings = WorkerSettings(worker_id="w", retry_schedule=[1.0, 2.0])  # type: ignore[arg-type]
    assert settings.retry_schedule == (1.0, 2.0)
    assert WorkerSettings(worker_id="w", flush_max_outcomes=0).flush_max_outcomes == 1
