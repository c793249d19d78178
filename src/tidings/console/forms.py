"""Forms that show the API's own validation errors next to their field.

The service layer refuses bad input with `ValidationFailed`, whose details name JSON paths
(`$.ttlSeconds`, `$.eventTypes[0]`): the very answer the API gives. `field_errors` files each
message under the form field its path starts with, so a page re-renders the form with the
message beside the field it concerns, and whatever names no field of the form above it."""

from __future__ import annotations

import re
from collections.abc import Collection
from dataclasses import dataclass, field
from typing import Any

from tidings.errors import ValidationFailed

_FIRST_SEGMENT = re.compile(r"^\$\.([A-Za-z0-9_]+)")
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
        errors.by_field.setdefault(name, []).append(
            message if name != FORM_LEVEL else f"{path}: {message}"
        )
    return errors
