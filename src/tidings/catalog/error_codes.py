"""The DLT error-code reference as data (``data/error-codes.json``): each code with its meaning,
its category and the event types that carry it in ``data.code``.

A code the reference does not know is not refused: upstream workflows add codes before anyone
tells us, and refusing a real failure notification would lose it. Such an event is stored and
delivered as published, and `code_warnings` flags it (``unknown_error_code``) where the event is
read back (the API's event views, the feed, the console).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from importlib.resources.abc import Traversable
from typing import Any

ERROR_CODES_FILE = "error-codes.json"
UNKNOWN_ERROR_CODE = "unknown_error_code"
_ENTRY_KEYS = {"code", "meaning", "category", "eventTypes", "locksUntil"}


@dataclass(frozen=True, slots=True)
class ErrorCode:
    code: str
    meaning: str
    category: str
    event_types: tuple[str, ...]
    locks_until: str | None = None  # the details field that says until when the user is locked

    @property
    def workflows(self) -> tuple[str, ...]:
        """The workflows (the type's first segment) whose failures carry this code."""
        return tuple(sorted({name.partition(".")[0] for name in self.event_types}))

    def to_json(self) -> dict[str, Any]:
        item: dict[str, Any] = {
            "code": self.code,
            "meaning": self.meaning,
            "category": self.category,
            "workflows": list(self.workflows),
            "eventTypes": list(self.event_types),
        }
        if self.locks_until is not None:
            item["locksUntil"] = self.locks_until
        return item


def load_error_codes(file: Traversable, coded_types: Iterable[str]) -> tuple[ErrorCode, ...]:
    """The reference in `file`; a malformed entry, a repeated code or an event type that has no
    ``code`` property (`coded_types` are those that do) raises ValueError naming it."""
    label = file.name
    try:
        doc = json.loads(file.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as exc:
        raise ValueError(f"{label}: not valid JSON: {exc}") from None
    entries = doc.get("codes") if isinstance(doc, dict) else None
    if not isinstance(entries, list):
        raise ValueError(f"{label}: must hold {{'codes': [...]}}")
    allowed = set(coded_types)
    codes: dict[str, ErrorCode] = {}
    for i, entry in enumerate(entries):
        where = f"{label}: codes[{i}]"
        if not isinstance(entry, dict):
            raise ValueError(f"{where}: must be an object")
        unknown = set(entry) - _ENTRY_KEYS
        if unknown:
            raise ValueError(f"{where}: unknown keys {sorted(unknown)}")
        for key in ("code", "meaning", "category"):
            if not isinstance(entry.get(key), str) or not entry[key]:
                raise ValueError(f"{where}: {key!r} must be a non-empty string")
        types = entry.get("eventTypes")
        if not isinstance(types, list) or not types or not all(isinstance(t, str) for t in types):
            raise ValueError(f"{where}: 'eventTypes' must be a non-empty list of type names")
        for name in types:
            if name not in allowed:
                raise ValueError(f"{where}: {name!r} is not a catalog type with a 'code' property")
        locks_until = entry.get("locksUntil")
        if locks_until is not None and not isinstance(locks_until, str):
            raise ValueError(f"{where}: 'locksUntil' must be a details field name")
        if entry["code"] in codes:
            raise ValueError(f"{where}: code {entry['code']!r} is listed twice")
        codes[entry["code"]] = ErrorCode(
            code=entry["code"],
            meaning=entry["meaning"],
            category=entry["category"],
            event_types=tuple(types),
            locks_until=locks_until,
        )
    return tuple(codes.values())


def code_warnings(
    type_name: str, data: object, known: Mapping[str, ErrorCode], coded_types: frozenset[str]
) -> list[dict[str, str]]:
    """``[{"code": "unknown_error_code", "path": "$.data.code", "message": ...}]`` when an event
    of a type that carries error codes has a ``data.code`` the reference does not list (or lists
    for other types only); otherwise empty."""
    if type_name not in coded_types or not isinstance(data, dict):
        return []
    code = data.get("code")
    if not isinstance(code, str):
        return []
    entry = known.get(code)
    if entry is not None and type_name in entry.event_types:
        return []
    return [
        {
            "code": UNKNOWN_ERROR_CODE,
            "path": "$.data.code",
            "message": f"{code!r} is not in the error-code reference for {type_name} "
            "(GET /v1/error-codes); the event was accepted and delivered as published",
        }
    ]
