"""Structured logging for every tidings process.

`TIDINGS_LOG_FORMAT=json` writes one JSON object a line; `text` writes readable lines. Log calls
carry a stable `action` key (`extra={"action": "delivery.failed"}`) so logs can be queried.
A filter redacts anything that looks like a credential, as a second line of defence: code must
never pass secrets or keys to a logger in the first place.
"""

from __future__ import annotations

import logging
import re
import sys
from typing import Any

import orjson

from tidings.clock import to_rfc3339

_STANDARD_ATTRS = frozenset(
    vars(logging.LogRecord("x", logging.INFO, "x", 0, "x", None, None)).keys()
) | {"message", "asctime", "taskName"}
_SENSITIVE_KEYS = re.compile(r"(secret|password|authorization|api_?key|token|platform_key)", re.I)
_SENSITIVE_VALUES = re.compile(r"\b(whsec_|ntsec_|dltsec_|tdk_)[A-Za-z0-9+/=_\-]+")
REDACTED = "[redacted]"


def redact_text(text: str) -> str:
    return _SENSITIVE_VALUES.sub(lambda m: m.group(1) + REDACTED, text)


def _extras(record: logging.LogRecord) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in vars(record).items():
        if key in _STANDARD_ATTRS or key.startswith("_"):
            continue
        out[key] = REDACTED if _SENSITIVE_KEYS.search(key) else value
    return out


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        doc: dict[str, Any] = {
            "ts": to_rfc3339(record.created),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": redact_text(record.getMessage()),
        }
        doc.update(_extras(record))
        if record.exc_info:
            doc["exc"] = redact_text(self.formatException(record.exc_info))
        return orjson.dumps(doc, default=str).decode()


class TextFormatter(logging.Formatter):
    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)-7s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        base = redact_text(super().format(record))
        extras = _extras(record)
        if extras:
            base += " " + " ".join(f"{k}={v}" for k, v in extras.items())
        return base


def configure_logging(log_format: str = "text", level: str = "INFO") -> None:
    """Route tidings' and uvicorn's loggers to stderr in the chosen format."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if log_format == "json" else TextFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        lg = logging.getLogger(name)
        lg.handlers[:] = []
        lg.propagate = True
    # Access lines are noisy under load; operators who want them can raise the level.
    logging.getLogger("uvicorn.access").setLevel(logging.WARNING)
