"""Every TIDINGS_* setting, read once into one frozen Settings object.

Only the edges (the service entry points and the CLI) read the environment; the core takes
explicit arguments whose defaults are the named constants below.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass

DEFAULT_DATABASE_URL = "sqlite:///tidings-data/tidings.db"
DELIVERY_TIMEOUT_SECONDS = 15.0
# 10 attempts in all: the first at once, then 9 waits. Sum = 259,320 s = 72.03 h (~72 h).
DEFAULT_RETRY_SCHEDULE_SECONDS: tuple[float, ...] = (
    30.0,
    120.0,
    600.0,
    1800.0,
    3600.0,
    10800.0,
    21600.0,
    43200.0,
    177_570.0,
)
RETRY_JITTER_FRACTION = 0.1
PAUSE_AFTER_FAILURES = 20
PAUSE_AFTER_SECONDS = 72 * 3600.0
# an ordered subject held back this long tells the organization (webhook.subject_blocked)
SUBJECT_BLOCKED_AFTER_SECONDS = 900.0
RETENTION_DAYS = 30
AUDIT_RETENTION_DAYS = 365  # the audit trail (issue 22), apart from delivery history
MAX_BODY_BYTES = 1024 * 1024
MAX_BATCH_EVENTS = 500
SECRET_ROTATION_GRACE_SECONDS = 24 * 3600.0
RESPONSE_EXCERPT_BYTES = 4096
ENDPOINT_MAX_IN_FLIGHT = 8
# in flight per worker: at 50 ms away, 512 carry ~10,000 deliveries/s (256 capped the wan drain
# near 4,600/s once the fast lane had taken the send's cost off the worker's thread)
WORKER_CONCURRENCY = 512
CLAIM_BATCH_SIZE = 200
LEASE_MARGIN_SECONDS = 30.0
CONSOLE_FRAME_ANCESTORS = "'none'"
METRICS_ENDPOINTS = 50


class SettingsError(ValueError):
    """A TIDINGS_* variable holds a value tidings cannot use."""


def _bool(value: str, name: str) -> bool:
    lowered = value.strip().lower()
    if lowered in {"1", "true", "yes", "on"}:
        return True
    if lowered in {"0", "false", "no", "off", ""}:
        return False
    raise SettingsError(f"{name} must be true or false, not {value!r}")


def _float(value: str, name: str) -> float:
    try:
        return float(value)
    except ValueError as exc:
        raise SettingsError(f"{name} must be a number, not {value!r}") from exc


def parse_schedule(value: str, name: str = "TIDINGS_RETRY_SCHEDULE") -> tuple[float, ...]:
    """Comma-separated seconds between attempts: N values mean N + 1 attempts in all."""
    parts = [p.strip() for p in value.split(",") if p.strip()]
    if not parts:
        raise SettingsError(f"{name} must list at least one number of seconds")
    delays = tuple(_float(p, name) for p in parts)
    if any(d < 0 for d in delays):
        raise SettingsError(f"{name} must not hold negative delays")
    return delays


@dataclass(frozen=True)
class Settings:
    """The whole configuration of one tidings process. Defaults are the documented ones."""

    database_url: str = DEFAULT_DATABASE_URL
    platform_key: str | None = None
    # the key-encryption key of endpoint secrets (base64 of 32 bytes; on SQLite generated into
    # tidings-data/ when unset, required for PostgreSQL) and, during a rotation, the old ones
    encryption_key: str | None = None
    encryption_keys_old: tuple[str, ...] = ()
    host: str = "127.0.0.1"
    port: int = 8080
    log_format: str = "text"  # "text" or "json"
    log_level: str = "INFO"
    delivery_timeout_seconds: float = DELIVERY_TIMEOUT_SECONDS
    retry_schedule_seconds: tuple[float, ...] = DEFAULT_RETRY_SCHEDULE_SECONDS
    retry_jitter_fraction: float = RETRY_JITTER_FRACTION
    pause_after_failures: int = PAUSE_AFTER_FAILURES
    pause_after_seconds: float = PAUSE_AFTER_SECONDS
    subject_blocked_after_seconds: float = SUBJECT_BLOCKED_AFTER_SECONDS
    retention_days: float = RETENTION_DAYS
    audit_retention_days: float = AUDIT_RETENTION_DAYS
    allow_private_urls: bool = False
    allow_http: bool = False
    max_body_bytes: int = MAX_BODY_BYTES
    endpoint_max_in_flight: int = ENDPOINT_MAX_IN_FLIGHT
    worker_concurrency: int = WORKER_CONCURRENCY
    claim_batch_size: int = CLAIM_BATCH_SIZE
    worker_id: str | None = None
    lease_margin_seconds: float = LEASE_MARGIN_SECONDS
    # a PEM file of CA certificates trusted beside the system's roots (private PKI endpoints)
    ca_bundle: str | None = None
    # busy HTTPS hosts are sent to through pyreqwest (delivery/fast_lane.py); false: aiohttp alone
    fast_lane: bool = True
    # the console's CSP frame-ancestors: who may frame it (default nobody)
    console_frame_ancestors: str = CONSOLE_FRAME_ANCESTORS
    # where people reach this service (portal links are made under it); default: the request's
    public_url: str | None = None
    # who may read /metrics: anyone when unset, else `Authorization: Bearer <token>`
    metrics_token: str | None = None
    # `tidings worker` answers /healthz, /readyz and /metrics on this port (off when unset)
    worker_health_port: int | None = None
    # per-endpoint metric series: at most this many endpoints labelled (0: none)
    metrics_endpoints: int = METRICS_ENDPOINTS
    # inbound requests per second per API key and process (0: no limit), the burst allowed,
    # and whether platform keys (the platform's own publisher) are limited too
    api_rate_per_second: float = 0.0
    api_rate_burst: float | None = None  # default: max(1, 2 x the rate)
    api_rate_platform_keys: bool = False

    @property
    def max_attempts(self) -> int:
        return len(self.retry_schedule_seconds) + 1

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        e = os.environ if env is None else env
        kwargs: dict[str, object] = {}
        for name, (attr, parse) in _ENV_FIELDS.items():
            value = e.get(name)
            if value not in (None, ""):
                kwargs[attr] = parse(str(value), name)
        return cls(**kwargs)  # type: ignore[arg-type]

    @property
    def http_allowed(self) -> bool:
        return self.allow_http or self.allow_private_urls


def _str(value: str, name: str) -> str:
    return value


def _key_list(value: str, name: str) -> tuple[str, ...]:
    return tuple(k.strip() for k in value.split(",") if k.strip())


def _int(value: str, name: str) -> int:
    return int(_float(value, name))


def _port(value: str, name: str) -> int:
    port = _int(value, name)
    if not 0 < port < 65536:
        raise SettingsError(f"{name} must be a port number (1-65535), not {value!r}")
    return port


def _count(value: str, name: str) -> int:
    n = _int(value, name)
    if n < 0:
        raise SettingsError(f"{name} must be 0 or more, not {value!r}")
    return n


def _pem_file(value: str, name: str) -> str:
    """A path to a file that exists; its certificates are read by the sender at start-up."""
    if not os.path.isfile(value):
        raise SettingsError(
            f"{name} must name a PEM file of CA certificates; {value!r} is not a file"
        )
    return value


def _log_format(value: str, name: str) -> str:
    if value not in {"text", "json"}:
        raise SettingsError(f"{name} must be text or json")
    return value


def _upper(value: str, name: str) -> str:
    return value.upper()


def _frame_ancestors(value: str, name: str) -> str:
    """A CSP source list ('none', 'self', https://app.example.com ...): one directive's value,
    so no `;` or `,` that would start another, and no line break."""
    cleaned = " ".join(value.split())
    if any(c in cleaned for c in ";,") or not cleaned:
        raise SettingsError(
            f"{name} must be CSP sources separated by spaces, like 'self' https://app.example.com"
        )
    return cleaned


def _public_url(value: str, name: str) -> str:
    if not value.startswith(("https://", "http://")) or any(c.isspace() for c in value):
        raise SettingsError(f"{name} must be an http(s) URL, like https://webhooks.example.com")
    return value.rstrip("/")


_ENV_FIELDS: dict[str, tuple[str, Callable[[str, str], object]]] = {
    "TIDINGS_DATABASE_URL": ("database_url", _str),
    "TIDINGS_PLATFORM_KEY": ("platform_key", _str),
    "TIDINGS_ENCRYPTION_KEY": ("encryption_key", _str),
    "TIDINGS_ENCRYPTION_KEYS_OLD": ("encryption_keys_old", _key_list),
    "TIDINGS_HOST": ("host", _str),
    "TIDINGS_PORT": ("port", _int),
    "TIDINGS_LOG_FORMAT": ("log_format", _log_format),
    "TIDINGS_LOG_LEVEL": ("log_level", _upper),
    "TIDINGS_DELIVERY_TIMEOUT": ("delivery_timeout_seconds", _float),
    "TIDINGS_RETRY_SCHEDULE": ("retry_schedule_seconds", parse_schedule),
    "TIDINGS_RETRY_JITTER": ("retry_jitter_fraction", _float),
    "TIDINGS_PAUSE_AFTER_FAILURES": ("pause_after_failures", _int),
    "TIDINGS_PAUSE_AFTER_SECONDS": ("pause_after_seconds", _float),
    "TIDINGS_SUBJECT_BLOCKED_AFTER_SECONDS": ("subject_blocked_after_seconds", _float),
    "TIDINGS_RETENTION_DAYS": ("retention_days", _float),
    "TIDINGS_AUDIT_RETENTION_DAYS": ("audit_retention_days", _float),
    "TIDINGS_ALLOW_PRIVATE_URLS": ("allow_private_urls", _bool),
    "TIDINGS_ALLOW_HTTP": ("allow_http", _bool),
    "TIDINGS_MAX_BODY_BYTES": ("max_body_bytes", _int),
    "TIDINGS_ENDPOINT_MAX_IN_FLIGHT": ("endpoint_max_in_flight", _int),
    "TIDINGS_WORKER_CONCURRENCY": ("worker_concurrency", _int),
    "TIDINGS_CLAIM_BATCH_SIZE": ("claim_batch_size", _int),
    "TIDINGS_WORKER_ID": ("worker_id", _str),
    "TIDINGS_LEASE_MARGIN": ("lease_margin_seconds", _float),
    "TIDINGS_CA_BUNDLE": ("ca_bundle", _pem_file),
    "TIDINGS_FAST_LANE": ("fast_lane", _bool),
    "TIDINGS_CONSOLE_FRAME_ANCESTORS": ("console_frame_ancestors", _frame_ancestors),
    "TIDINGS_PUBLIC_URL": ("public_url", _public_url),
    "TIDINGS_METRICS_TOKEN": ("metrics_token", _str),
    "TIDINGS_WORKER_HEALTH_PORT": ("worker_health_port", _port),
    "TIDINGS_METRICS_ENDPOINTS": ("metrics_endpoints", _count),
    "TIDINGS_API_RATE_PER_SECOND": ("api_rate_per_second", _float),
    "TIDINGS_API_RATE_BURST": ("api_rate_burst", _float),
    "TIDINGS_API_RATE_PLATFORM_KEYS": ("api_rate_platform_keys", _bool),
}
