"""Forms that show the API's own validation errors next to their field.

The service layer refuses bad input with `ValidationFailed`, whose details name JSON paths
(`$.ttlSeconds`, `$.eventTypes[0]`): the very answer the API gives. `field_errors` files each
message under the form field its path starts with, so a page re-renders the form with the
message beside the field it concerns (a list field's messages name their line), and whatever
names no field of the form above it. What a form cannot even read (a number that is not one) is
reported the same way, at the path the service would use."""

from __future__ import annotations

import re
from collections.abc import Collection
from dataclasses import dataclass, field
from typing import Any

from tidings.clock import parse_rfc3339
from tidings.errors import Issues, ValidationFailed

_FIRST_SEGMENT = re.compile(r"^\$\.([A-Za-z0-9_]+)(?:\[(\d+)\])?")
FORM_LEVEL = "_form"


@dataclass
class FormErrors:
    by_field: dict[str, list[str]] = field(default_factory=dict)

    def __bool__(self) -> bool:
        return bool(self.by_field)

    def of(self, name: str) -> list[str]:
        return self.by_field.get(name, [])

    @property
    def form_level(self) -> list[str]:
        return self.by_field.get(FORM_LEVEL, [])


def field_errors(exc: ValidationFailed, fields: Collection[str]) -> FormErrors:
    errors = FormErrors()
    details: Any = exc.details if isinstance(exc.details, list) else []
    for issue in details or [{"path": "$", "message": exc.message}]:
        path = str(issue.get("path", "$")) if isinstance(issue, dict) else "$"
        message = str(issue.get("message", "")) if isinstance(issue, dict) else str(issue)
        match = _FIRST_SEGMENT.match(path)
        name = match.group(1) if match and match.group(1) in fields else FORM_LEVEL
        if name == FORM_LEVEL:
            message = f"{path}: {message}"
        elif match and match.group(2) is not None:  # a list field: one entry (line) of it
            message = f"line {int(match.group(2)) + 1}: {message}"
        elif match and len(path) > match.end():  # within a structured field: say where
            message = f"{path[match.end() :].lstrip('.')}: {message}"
        errors.by_field.setdefault(name, []).append(message)
    return errors


# ---- reading form fields into service inputs; what cannot be read is an issue at its path ----


def lines(text: str) -> list[str]:
    """One entry per non-empty line (a textarea of patterns, partner ids, ...)."""
    return [line.strip() for line in text.splitlines() if line.strip()]


def optional_number(text: str, path: str, issues: Issues) -> float | None:
    if not text.strip():
        return None
    try:
        return float(text)
    except ValueError:
        issues.add(path, "must be a number")
        return None


def optional_integers(text: str, path: str, issues: Issues) -> list[int] | None:
    """Comma- or space-separated whole numbers; empty: None (the service's default)."""
    parts = text.replace(",", " ").split()
    if not parts:
        return None
    if not all(p.isdigit() for p in parts):
        issues.add(path, "must be whole numbers separated by commas")
        return None
    return [int(p) for p in parts]


def header_lines(text: str, path: str, issues: Issues) -> dict[str, str]:
    """`Name: value`, one a line."""
    headers: dict[str, str] = {}
    for number, line in enumerate(lines(text), start=1):
        name, colon, value = line.partition(":")
        if not colon or not name.strip():
            issues.add(path, f"line {number}: write it as Name: value")
            continue
        headers[name.strip()] = value.strip()
    return headers


_AGE = re.compile(r"(\d{1,6})\s*([mhd])")
_AGE_SECONDS = {"m": 60, "h": 3600, "d": 86400}


def time_field(text: str, path: str, issues: Issues, now: float) -> float | None:
    """A time typed in a filter: RFC 3339 (`2026-01-01T00:00:00Z`), a date and time taken as
    UTC (`2026-01-01 10:00`), or an age before `now` (`30m`, `2h`, `7d`); empty: None."""
    value = text.strip()
    if not value:
        return None
    age = _AGE.fullmatch(value)
    if age is not None:
        return now - int(age.group(1)) * _AGE_SECONDS[age.group(2)]
    try:
        return parse_rfc3339(value)
    except ValueError:
        issues.add(path, "not a time: write 2026-01-01T10:00:00Z, 2026-01-01 10:00 (UTC) or 2h")
        return None
