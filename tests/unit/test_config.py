import pytest

from tidings.config import (
    DEFAULT_RETRY_SCHEDULE_SECONDS,
    Settings,
    SettingsError,
    parse_schedule,
)


def test_defaults_without_any_variable() -> None:
    s = Settings.from_env({})
    assert s.database_url.startswith("sqlite:///")
    assert s.is_sqlite
    assert s.platform_key is None
    assert s.delivery_timeout_seconds == 15.0
    assert s.max_attempts == 10
    assert s.pause_after_failures == 20
    assert s.pause_after_seconds == 72 * 3600
    assert s.retention_days == 30
    assert not s.allow_private_urls and not s.allow_http and not s.http_allowed
    assert s.fast_lane and s.worker_concurrency == 512


def test_default_schedule_is_ten_attempts_over_about_72_hours() -> None:
    total = sum(DEFAULT_RETRY_SCHEDULE_SECONDS)
    assert len(DEFAULT_RETRY_SCHEDULE_SECONDS) + 1 == 10
    assert 71 * 3600 <= total <= 73 * 3600
    assert list(DEFAULT_RETRY_SCHEDULE_SECONDS) == sorted(DEFAULT_RETRY_SCHEDULE_SECONDS)


def test_every_variable_is_read() -> None:
    s = Settings.from_env(
        {
            "TIDINGS_DATABASE_URL": "postgresql://u@h/db",
            "TIDINGS_PLATFORM_KEY": "pk",
            "TIDINGS_PORT": "9999",
            "TIDINGS_LOG_FORMAT": "json",
            "TIDINGS_DELIVERY_TIMEOUT": "2.5",
            "TIDINGS_RETRY_SCHEDULE": "1, 2,3",
            "TIDINGS_PAUSE_AFTER_FAILURES": "3",
            "TIDINGS_PAUSE_AFTER_SECONDS": "60",
            "TIDINGS_RETENTION_DAYS": "7",
            "TIDINGS_ALLOW_PRIVATE_URLS": "true",
            "TIDINGS_ALLOW_HTTP": "0",
            "TIDINGS_MAX_BODY_BYTES": "100",
            "TIDINGS_FAST_LANE": "false",
        }
    )
    assert not s.is_sqlite
    assert s.port == 9999 and s.log_format == "json" and s.delivery_timeout_seconds == 2.5
    assert s.retry_schedule_seconds == (1.0, 2.0, 3.0) and s.max_attempts == 4
    assert s.pause_after_failures == 3 and s.pause_after_seconds == 60
    assert s.retention_days == 7 and s.allow_private_urls and s.http_allowed
    assert s.max_body_bytes == 100
    assert not s.fast_lane


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("TIDINGS_RETRY_SCHEDULE", "1,x"),
        ("TIDINGS_RETRY_SCHEDULE", "-1"),
        ("TIDINGS_RETRY_SCHEDULE", " , "),
        ("TIDINGS_ALLOW_HTTP", "maybe"),
        ("TIDINGS_LOG_FORMAT", "xml"),
        ("TIDINGS_DELIVERY_TIMEOUT", "soon"),
    ],
)
def test_bad_values_are_refused_with_the_variable_name(name: str, value: str) -> None:
    with pytest.raises(SettingsError, match=name):
        Settings.from_env({name: value})


def test_parse_schedule() -> None:
    assert parse_schedule("5") == (5.0,)
