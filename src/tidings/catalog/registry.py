"""The catalog registry: event types loaded from data files, compiled validators, versions.

One JSON file per event type in ``data/<catalog>/<type>.json``. Loading checks every file
(schemas, examples, conversions) and refuses a malformed one with a `CatalogError` naming it,
so a running process only ever holds a consistent catalog. Validators are compiled once.
"""

from __future__ import annotations

import datetime as dt
import functools
import json
import re
from collections import deque
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Any

import jsonschema_rs
from jsonschema import Draft202012Validator, FormatChecker
from jsonschema.exceptions import SchemaError, ValidationError, best_match

from tidings.catalog.conversions import apply_ops, check_op
from tidings.catalog.error_codes import ERROR_CODES_FILE, ErrorCode, code_warnings, load_error_codes

_TYPE_NAME = re.compile(r"[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)+")
_RFC3339 = re.compile(
    r"\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})",
)
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_DISCRIMINATORS = {"const", "enum", "pattern", "not"}
_ALLOWED_KEYS = {
    "type",
    "catalog",
    "format",
    "nativeFormat",
    "description",
    "subject",
    "attributes",
    "versions",
    "conversions",
}


class CatalogError(ValueError):
    """A catalog file is malformed; the message names the file."""


@dataclass(frozen=True)
class ValidationIssue:
    """One failure: where (``$.data.orderId``, ``$.attributes.owner_id``) and why."""

    path: str
    message: str

    def to_dict(self) -> dict[str, str]:
        return {"path": self.path, "message": self.message}


@dataclass(frozen=True)
class EventTypeVersion:
    schema_version: int
    schema: dict[str, Any]
    examples: list[dict[str, Any]]
    validator: Draft202012Validator = field(repr=False, compare=False)
    fast: Any = field(default=None, repr=False, compare=False)  # _fast_validator(schema)


@dataclass(frozen=True)
class Conversion:
    from_version: int
    to_version: int
    ops: list[dict[str, Any]]


@dataclass(frozen=True)
class EventType:
    name: str
    catalog: str
    format: str
    description: str
    latest_version: int
    versions: dict[int, EventTypeVersion]
    attributes_schema: dict[str, Any] | None
    subject: str | None = None
    native_format: str | None = None
    conversions: tuple[Conversion, ...] = ()
    attributes_validator: Draft202012Validator | None = field(
        default=None, repr=False, compare=False
    )
    attributes_fast: Any = field(default=None, repr=False, compare=False)

    def reachable(self, from_version: int) -> dict[int, list[Conversion]]:
        """Every version reachable from `from_version`, with the shortest conversion chain."""
        if from_version not in self.versions:
            return {}
        paths: dict[int, list[Conversion]] = {from_version: []}
        queue = deque([from_version])
        while queue:
            current = queue.popleft()
            for conv in self.conversions:
                if conv.from_version == current and conv.to_version not in paths:
                    paths[conv.to_version] = [*paths[current], conv]
                    queue.append(conv.to_version)
        return paths


def _is_date(value: object) -> bool:
    if not isinstance(value, str):
        return True
    if not _DATE.fullmatch(value):
        return False
    try:
        dt.date.fromisoformat(value)
    except ValueError:
        return False
    return True


def _is_date_time(value: object) -> bool:
    if not isinstance(value, str):
        return True
    if not _RFC3339.fullmatch(value):
        return False
    try:
        dt.datetime.fromisoformat(value.replace("z", "Z").replace("t", "T"))
    except ValueError:
        return False
    return True


FORMAT_CHECKER = FormatChecker(formats=())
FORMAT_CHECKER.checks("date")(_is_date)
FORMAT_CHECKER.checks("date-time")(_is_date_time)


# Validity is first asked of jsonschema-rs (compiled, in Rust): a profile of batch publishing
# showed the jsonschema package's is_valid as a quarter of the API's time per event. The
# jsonschema package stays the reference: it names the issues of an instance the fast validator
# refuses, and accepts one it finds no issue with. The fast one checks the same formats the same
# way (date and date-time by the functions above; every other format named in a schema is not
# checked, as FORMAT_CHECKER does not check it); tests/unit/test_catalog_fast_validation.py
# holds the two to the same answers over every catalog schema.
def _any_value(_: object) -> bool:
    return True


def _format_names(schema: Any) -> set[str]:
    found: set[str] = set()
    if isinstance(schema, dict):
        if isinstance(schema.get("format"), str):
            found.add(schema["format"])
        for value in schema.values():
            found |= _format_names(value)
    elif isinstance(schema, list):
        for value in schema:
            found |= _format_names(value)
    return found


_CHECKED_FORMATS = {"date": _is_date, "date-time": _is_date_time}


def _fast_validator(schema: dict[str, Any]) -> Any:
    formats = {name: _CHECKED_FORMATS.get(name, _any_value) for name in _format_names(schema)}
    return jsonschema_rs.Draft202012Validator(schema, formats=formats, validate_formats=True)


def _fast_is_valid(fast: Any, instance: Any) -> bool:
    """False also when jsonschema-rs cannot take the instance (e.g. an integer beyond 64 bits):
    the reference then decides."""
    try:
        return bool(fast.is_valid(instance))
    except (ValueError, OverflowError, TypeError):
        return False


def _json_path(root: str, parts: Iterable[object]) -> str:
    out = root
    for part in parts:
        if isinstance(part, int):
            out += f"[{part}]"
        elif isinstance(part, str) and re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", part):
            out += f".{part}"
        else:
            out += "[" + json.dumps(part) + "]"
    return out


def _issues(validator: Draft202012Validator, instance: Any, root: str) -> list[ValidationIssue]:
    issues: list[ValidationIssue] = []
    seen: set[str] = set()
    for error in sorted(validator.iter_errors(instance), key=lambda e: e.json_path):
        for issue in _error_issues(error, root):
            if issue.path not in seen:  # one issue per path: the first is the clearest
                seen.add(issue.path)
                issues.append(issue)
    return issues


def _error_issues(error: ValidationError, root: str) -> list[ValidationIssue]:
    if error.validator in ("oneOf", "anyOf") and error.context:
        # Explain the variant that came closest: one whose discriminating values (const,
        # enum, pattern) matched, then the fewest failures, then jsonschema's pick.
        branches: dict[object, list[ValidationError]] = {}
        for sub in error.context:
            key = sub.relative_schema_path[0] if sub.relative_schema_path else None
            branches.setdefault(key, []).append(sub)

        def rank(errors: list[ValidationError]) -> tuple[bool, int]:
            return (any(e.validator in _DISCRIMINATORS for e in errors), len(errors))

        closest = min(rank(errors) for errors in branches.values())
        candidates = [e for errs in branches.values() if rank(errs) == closest for e in errs]
        chosen = best_match(candidates)
        if chosen is not None:
            key = chosen.relative_schema_path[0] if chosen.relative_schema_path else None
            return [
                ValidationIssue(i.path, f"{i.message} (no variant matched)")
                for sub in branches[key]
                for i in _error_issues(sub, root)
            ]
    path = list(error.absolute_path)
    instance = error.instance
    if error.validator == "required" and isinstance(instance, dict):
        required = error.validator_value if isinstance(error.validator_value, list) else []
        for name in required:
            if name not in instance and error.message.startswith(repr(name) + " "):
                return [ValidationIssue(_json_path(root, [*path, name]), "is required")]
    if (
        error.validator == "additionalProperties"
        and error.validator_value is False
        and isinstance(instance, dict)
    ):
        declared = error.schema.get("properties", {}) if isinstance(error.schema, dict) else {}
        extras = [key for key in instance if key not in declared]
        if extras:
            return [
                ValidationIssue(_json_path(root, [*path, key]), "is not an allowed property")
                for key in extras
            ]
    return [ValidationIssue(_json_path(root, path), error.message)]


class Catalog:
    """Every event type tidings knows, indexed by name."""

    def __init__(self, types: Iterable[EventType], error_codes: Iterable[ErrorCode] = ()) -> None:
        self._types: dict[str, EventType] = {}
        for event_type in types:
            if event_type.name in self._types:
                raise CatalogError(f"event type {event_type.name!r} is defined twice")
            self._types[event_type.name] = event_type
        self._names = sorted(self._types)
        self._best: dict[tuple[str, int, tuple[int, ...] | None], int | None] = {}
        self._codes = {c.code: c for c in error_codes}
        self._coded_types = frozenset(_coded_types(self._types.values()))

    # ---- loading --------------------------------------------------------------------------

    @classmethod
    def load_default(cls) -> Catalog:
        """The catalogs shipped in the package (``tidings/catalog/data``), loaded once."""
        return _load_default()

    @classmethod
    def load(cls, path: str | Path | Traversable) -> Catalog:
        """Every ``<catalog>/<type>.json`` under the directory `path`."""
        root: Traversable = Path(path) if isinstance(path, str | Path) else path
        if not root.is_dir():
            raise CatalogError(f"catalog directory {root} does not exist")
        types: list[EventType] = []
        for folder in sorted(root.iterdir(), key=lambda p: p.name):
            if not folder.is_dir() or folder.name.startswith((".", "_")):
                continue
            for file in sorted(folder.iterdir(), key=lambda p: p.name):
                if file.is_file() and file.name.endswith(".json"):
                    label = f"{folder.name}/{file.name}"
                    types.append(_load_file(file, label, folder.name))
        if not types:
            raise CatalogError(f"catalog directory {root} holds no event type files")
        codes_file = root.joinpath(ERROR_CODES_FILE)
        if not codes_file.is_file():
            return cls(types)
        try:
            codes = load_error_codes(codes_file, _coded_types(types))
        except ValueError as exc:
            raise CatalogError(str(exc)) from None
        return cls(types, codes)

    # ---- lookups --------------------------------------------------------------------------

    def get(self, type_name: str) -> EventType | None:
        return self._types.get(type_name)

    def types(self) -> list[EventType]:
        return [self._types[name] for name in self._names]

    def names(self) -> list[str]:
        return list(self._names)

    def native_format(self, type_name: str) -> str | None:
        """The wire format the type's catalog is delivered in; None when the type is
        deliverable in every format (the ``webhook.*`` meta types) or unknown."""
        event_type = self._types.get(type_name)
        return None if event_type is None else event_type.native_format

    # ---- validation -----------------------------------------------------------------------

    def validate_data(
        self, type_name: str, schema_version: int, data: Any
    ) -> list[ValidationIssue]:
        """No issues when `data` is valid for that type and version. Unknown type or version
        is an issue at ``$.type`` / ``$.schemaVersion``."""
        event_type = self._types.get(type_name)
        if event_type is None:
            return [ValidationIssue("$.type", f"unknown event type {type_name!r}")]
        version = (
            event_type.versions.get(schema_version)
            if isinstance(schema_version, int) and not isinstance(schema_version, bool)
            else None
        )
        if version is None:
            known = ", ".join(str(v) for v in sorted(event_type.versions))
            return [
                ValidationIssue(
                    "$.schemaVersion",
                    f"unknown schemaVersion {schema_version!r} for {type_name} (known: {known})",
                )
            ]
        if _fast_is_valid(version.fast, data):
            return []
        return _issues(version.validator, data, "$.data")

    def validate_attributes(self, type_name: str, attributes: Any) -> list[ValidationIssue]:
        """No issues when the envelope `attributes` satisfy the type's attributes schema
        (a type without one accepts any object, or none). Missing attributes are checked as
        an empty object, so each required attribute is named."""
        event_type = self._types.get(type_name)
        if event_type is None:
            return [ValidationIssue("$.type", f"unknown event type {type_name!r}")]
        validator = event_type.attributes_validator
        if validator is None:
            if attributes is None or isinstance(attributes, dict):
                return []
            return [ValidationIssue("$.attributes", "attributes must be an object")]
        instance = {} if attributes is None else attributes
        if _fast_is_valid(event_type.attributes_fast, instance):
            return []
        return _issues(validator, instance, "$.attributes")

    # ---- versions -------------------------------------------------------------------------

    def best_version(
        self, type_name: str, from_version: int, accepted: Collection[int] | None
    ) -> int | None:
        """The version to deliver an event of `from_version` in.

        With `accepted`: the highest accepted version reachable from `from_version` through
        the declared conversions (`from_version` itself counts), or None when none is.
        With `accepted` None (the endpoint's default, "the newest of each type"): the type's
        latest version when it is reachable, else `from_version` itself (an event published
        in an older version that cannot be upgraded is delivered as published).
        None for an unknown type or version.
        """
        key = (type_name, from_version, None if accepted is None else tuple(accepted))
        if key in self._best:
            return self._best[key]
        answer = self._best_version(type_name, from_version, accepted)
        if len(self._best) < 100_000:  # (type, version, accepted) triples are few in practice
            self._best[key] = answer
        return answer

    def _best_version(
        self, type_name: str, from_version: int, accepted: Collection[int] | None
    ) -> int | None:
        event_type = self._types.get(type_name)
        if event_type is None:
            return None
        reachable = event_type.reachable(from_version)
        if not reachable:
            return None
        if accepted is None:
            latest = event_type.latest_version
            return latest if latest in reachable else from_version
        usable = [v for v in accepted if v in reachable]
        return max(usable) if usable else None

    def convert(
        self, type_name: str, data: Mapping[str, Any], from_version: int, to_version: int
    ) -> dict[str, Any]:
        """`data` of `from_version` rewritten as `to_version` through the shortest chain of
        declared conversions (a copy; the input is untouched). ValueError when unreachable."""
        event_type = self._types.get(type_name)
        if event_type is None:
            raise ValueError(f"unknown event type {type_name!r}")
        chain = event_type.reachable(from_version).get(to_version)
        if chain is None:
            raise ValueError(
                f"{type_name}: no conversion from schemaVersion {from_version} to {to_version}"
            )
        result = apply_ops(data, [])  # a deep copy, even for the same version
        for conversion in chain:
            result = apply_ops(result, conversion.ops)
        return result

    # ---- error codes ----------------------------------------------------------------------

    def error_codes(self, type_name: str | None = None) -> list[ErrorCode]:
        """The error-code reference, sorted by code; with `type_name`, the codes its events
        carry."""
        codes = sorted(self._codes.values(), key=lambda c: c.code)
        return codes if type_name is None else [c for c in codes if type_name in c.event_types]

    def error_code(self, code: str) -> ErrorCode | None:
        return self._codes.get(code)

    def warnings(self, type_name: str, data: object) -> list[dict[str, str]]:
        """What is worth flagging in a stored event of this type (an error code the reference
        does not know); empty for almost every event."""
        return code_warnings(type_name, data, self._codes, self._coded_types)

    # ---- listing --------------------------------------------------------------------------

    def to_json(self) -> list[dict[str, Any]]:
        """The ``GET /v1/event-types`` items, sorted by type."""
        items: list[dict[str, Any]] = []
        for event_type in self.types():
            item: dict[str, Any] = {
                "type": event_type.name,
                "catalog": event_type.catalog,
                "format": event_type.format,
                "description": event_type.description,
                "versions": [
                    {
                        "schemaVersion": v.schema_version,
                        "schema": v.schema,
                        "examples": v.examples,
                    }
                    for _, v in sorted(event_type.versions.items())
                ],
            }
            if event_type.attributes_schema is not None:
                item["attributes"] = event_type.attributes_schema
            if event_type.name in self._coded_types:
                item["errorCodes"] = [c.to_json() for c in self.error_codes(event_type.name)]
            items.append(item)
        return items

    def type_json(self, type_name: str) -> dict[str, Any] | None:
        """One ``GET /v1/event-types/{type}`` item; None for a type no catalog has."""
        if type_name not in self._types:
            return None
        return next(item for item in self.to_json() if item["type"] == type_name)


def _coded_types(types: Iterable[EventType]) -> list[str]:
    """The types whose data has a ``code`` property in some version (failures that carry an
    error code)."""
    return [
        t.name
        for t in types
        if any("code" in v.schema.get("properties", {}) for v in t.versions.values())
    ]


@functools.cache
def _load_default() -> Catalog:
    return Catalog.load(resources.files("tidings.catalog") / "data")


# ---- file loading ---------------------------------------------------------------------------


def _compile(schema: Any, label: str, what: str) -> Draft202012Validator:
    if not isinstance(schema, dict):
        raise CatalogError(f"{label}: {what} must be a JSON Schema object")
    try:
        Draft202012Validator.check_schema(schema)
    except SchemaError as exc:
        raise CatalogError(f"{label}: {what} is not a valid JSON Schema: {exc.message}") from None
    return Draft202012Validator(schema, format_checker=FORMAT_CHECKER)


def _load_file(file: Traversable, label: str, folder: str) -> EventType:
    try:
        doc = json.loads(file.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as exc:
        raise CatalogError(f"{label}: not valid JSON: {exc}") from None
    if not isinstance(doc, dict):
        raise CatalogError(f"{label}: must hold a JSON object")
    unknown = set(doc) - _ALLOWED_KEYS
    if unknown:
        raise CatalogError(f"{label}: unknown keys {sorted(unknown)}")
    for key in ("type", "catalog", "format", "description"):
        if not isinstance(doc.get(key), str) or not doc[key]:
            raise CatalogError(f"{label}: {key!r} must be a non-empty string")
    name: str = doc["type"]
    if not _TYPE_NAME.fullmatch(name):
        raise CatalogError(f"{label}: type {name!r} is not a dotted name")
    if file.name != f"{name}.json":
        raise CatalogError(f"{label}: file name must be {name}.json")
    if doc["catalog"] != folder:
        raise CatalogError(f"{label}: catalog {doc['catalog']!r} must match its folder {folder!r}")
    native = doc.get("nativeFormat", doc["format"])
    if native is not None and not isinstance(native, str):
        raise CatalogError(f"{label}: 'nativeFormat' must be a string or null")
    subject = doc.get("subject")
    if subject is not None and not isinstance(subject, str):
        raise CatalogError(f"{label}: 'subject' must be a string")

    versions = _load_versions(doc.get("versions"), label)
    if subject is not None:
        for number, version in versions.items():
            if subject not in version.schema.get("properties", {}):
                raise CatalogError(
                    f"{label}: subject {subject!r} is not a property of schemaVersion {number}"
                )
    attributes_schema = doc.get("attributes")
    attributes_validator = (
        None if attributes_schema is None else _compile(attributes_schema, label, "'attributes'")
    )
    conversions = _load_conversions(doc.get("conversions", []), versions, label)
    return EventType(
        name=name,
        catalog=doc["catalog"],
        format=doc["format"],
        description=doc["description"],
        latest_version=max(versions),
        versions=versions,
        attributes_schema=attributes_schema,
        subject=subject,
        native_format=native,
        conversions=conversions,
        attributes_validator=attributes_validator,
        attributes_fast=None if attributes_schema is None else _fast_validator(attributes_schema),
    )


def _load_versions(raw: Any, label: str) -> dict[int, EventTypeVersion]:
    if not isinstance(raw, list) or not raw:
        raise CatalogError(f"{label}: 'versions' must be a non-empty list")
    versions: dict[int, EventTypeVersion] = {}
    for entry in raw:
        if not isinstance(entry, dict):
            raise CatalogError(f"{label}: each version must be an object")
        number = entry.get("schemaVersion")
        if not isinstance(number, int) or isinstance(number, bool) or number < 1:
            raise CatalogError(f"{label}: schemaVersion must be a positive integer")
        if number in versions:
            raise CatalogError(f"{label}: schemaVersion {number} is declared twice")
        where = f"schemaVersion {number}"
        validator = _compile(entry.get("schema"), label, f"{where} schema")
        examples = entry.get("examples")
        if not isinstance(examples, list) or not examples:
            raise CatalogError(f"{label}: {where} needs at least one example")
        for index, example in enumerate(examples):
            issues = _issues(validator, example, "$.data")
            if issues:
                first = issues[0]
                raise CatalogError(
                    f"{label}: {where} example {index} does not validate: "
                    f"{first.path}: {first.message}"
                )
        versions[number] = EventTypeVersion(
            schema_version=number,
            schema=entry["schema"],
            examples=examples,
            validator=validator,
            fast=_fast_validator(entry["schema"]),
        )
    return versions


def _load_conversions(
    raw: Any, versions: dict[int, EventTypeVersion], label: str
) -> tuple[Conversion, ...]:
    if not isinstance(raw, list):
        raise CatalogError(f"{label}: 'conversions' must be a list")
    conversions: list[Conversion] = []
    seen: set[tuple[int, int]] = set()
    for entry in raw:
        if not isinstance(entry, dict):
            raise CatalogError(f"{label}: each conversion must be an object")
        source, target, ops = entry.get("from"), entry.get("to"), entry.get("ops")
        if source not in versions or target not in versions:
            raise CatalogError(
                f"{label}: conversion {source!r} -> {target!r} names an unknown schemaVersion"
            )
        if source == target or (source, target) in seen:
            raise CatalogError(f"{label}: conversion {source} -> {target} is redundant")
        seen.add((source, target))
        if not isinstance(ops, list):
            raise CatalogError(f"{label}: conversion {source} -> {target} needs a list 'ops'")
        for op in ops:
            problem = check_op(op)
            if problem is not None:
                raise CatalogError(f"{label}: conversion {source} -> {target}: {problem}")
        target_validator = versions[target].validator
        for index, example in enumerate(versions[source].examples):
            try:
                converted = apply_ops(example, ops)
            except ValueError as exc:
                raise CatalogError(
                    f"{label}: conversion {source} -> {target} fails on example {index}: {exc}"
                ) from None
            issues = _issues(target_validator, converted, "$.data")
            if issues:
                raise CatalogError(
                    f"{label}: conversion {source} -> {target} of example {index} does not "
                    f"validate as {target}: {issues[0].path}: {issues[0].message}"
                )
        conversions.append(Conversion(source, target, ops))
    return tuple(conversions)
