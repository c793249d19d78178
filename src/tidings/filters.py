"""Endpoint filters (issue 26 item 8), pure: conditions on what an event says, checked when an
endpoint is registered and evaluated for every event the endpoint subscribes to.

Syntax (JSON)
    filter     := {"all": [filter, ...]} | {"any": [filter, ...]} | condition
    condition  := {"path": PATH, "eq": SCALAR} | {"path": PATH, "in": [SCALAR, ...]}
                | {"path": PATH, "exists": true|false} | {"path": PATH, "prefix": STRING}
    PATH       := an envelope field: "type", "source", "partnerUuid", "subject", "correlationId"
                | "attributes." NAME ("." NAME)*  | "data." NAME ("." NAME)*
    SCALAR     := a string, a number, true, false or null

    e.g. {"all": [{"path": "attributes.owner_type", "eq": "company"},
                  {"path": "data.status", "in": ["VALID", "INVALID"]}]}

Meaning
    - `eq` holds when the value at PATH is that JSON value (1 and 1.0 are equal; true is not 1);
      `in` when it is one of them; `prefix` when it is a string starting with it; `exists`
      when PATH leads to a value (null counts as a value) or, with false, when it does not.
    - A PATH that leads nowhere (a field missing, or not an object on the way) makes `eq`, `in`
      and `prefix` false: a condition on something the event does not say does not hold.
    - `all` of nothing is true, `any` of nothing false (both refused at registration).
    Limits: nesting depth 4, 50 conditions, 100 values in an `in`, 200 characters in a PATH.

A filter is compiled once into closures (`compile_filter`, remembered by its canonical JSON);
evaluating it reads only the paths it names.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Final

import orjson

from tidings.models import Event, EventFilter

MAX_DEPTH: Final = 4
MAX_CONDITIONS: Final = 50
MAX_VALUES: Final = 100
MAX_PATH_CHARS: Final = 200
OPERATORS: Final = ("eq", "in", "exists", "prefix")
ENVELOPE_PATHS: Final = {
    "type": "type",
    "source": "source",
    "partnerUuid": "partner_uuid",
    "subject": "subject",
    "correlationId": "correlation_id",
}
ROOTS: Final = ("attributes", "data")
_MISSING: Final = object()

Test = Callable[[Event], bool]  # the type of EventFilter.test
Getter = Callable[[Event], Any]


@dataclass(frozen=True, slots=True)
class FilterIssue:
    path: str  # where in the request: "$.filter.all[1].in"
    message: str


def check_filter(spec: Any, at: str = "$.filter") -> list[FilterIssue]:
    """Every problem of a filter's shape (not yet whether the catalog has its paths)."""
    issues: list[FilterIssue] = []
    count = [0]
    _check_node(spec, at, 1, issues, count)
    if count[0] > MAX_CONDITIONS:
        issues.append(FilterIssue(at, f"at most {MAX_CONDITIONS} conditions"))
    return issues


def _check_node(
    node: Any, at: str, depth: int, issues: list[FilterIssue], count: list[int]
) -> None:
    if not isinstance(node, dict):
        issues.append(FilterIssue(at, 'must be an object: {"all": [...]}, {"any": [...]} or a '
                                      'condition {"path": ..., "eq": ...}'))  # fmt: skip
        return
    groups = [k for k in ("all", "any") if k in node]
    if groups:
        if len(node) != 1:
            issues.append(FilterIssue(at, f'"{groups[0]}" must be the only key of its object'))
            return
        key = groups[0]
        children = node[key]
        if not isinstance(children, list) or not children:
            issues.append(FilterIssue(f"{at}.{key}", "must be a non-empty list"))
            return
        if depth >= MAX_DEPTH:
            issues.append(FilterIssue(f"{at}.{key}", f"nesting deeper than {MAX_DEPTH} levels"))
            return
        for index, child in enumerate(children):
            _check_node(child, f"{at}.{key}[{index}]", depth + 1, issues, count)
        return
    count[0] += 1
    _check_condition(node, at, issues)


def _check_condition(node: dict[str, Any], at: str, issues: list[FilterIssue]) -> None:
    ops = [k for k in node if k in OPERATORS]
    unknown = [k for k in node if k != "path" and k not in OPERATORS]
    if unknown:
        issues.append(FilterIssue(f"{at}.{unknown[0]}", "unknown key: a condition has "
                                  f"path and one of {', '.join(OPERATORS)}"))  # fmt: skip
        return
    if len(ops) != 1:
        issues.append(FilterIssue(at, f"a condition needs exactly one of {', '.join(OPERATORS)}"))
        return
    problem = path_problem(node.get("path"))
    if problem is not None:
        issues.append(FilterIssue(f"{at}.path", problem))
    op = ops[0]
    value = node[op]
    if op == "eq" and not _is_scalar(value):
        issues.append(FilterIssue(f"{at}.eq", "must be a string, a number, true, false or null"))
    elif op == "in":
        if not isinstance(value, list) or not 0 < len(value) <= MAX_VALUES:
            issues.append(FilterIssue(f"{at}.in", f"must be a list of 1 to {MAX_VALUES} values"))
        else:
            for index, item in enumerate(value):
                if not _is_scalar(item):
                    issues.append(FilterIssue(f"{at}.in[{index}]", "must be a string, a number, "
                                              "true, false or null"))  # fmt: skip
    elif op == "exists" and not isinstance(value, bool):
        issues.append(FilterIssue(f"{at}.exists", "must be true or false"))
    elif op == "prefix" and (not isinstance(value, str) or not value):
        issues.append(FilterIssue(f"{at}.prefix", "must be a non-empty string"))


def path_problem(path: Any) -> str | None:
    if not isinstance(path, str) or not path:
        return "must be a non-empty string"
    if len(path) > MAX_PATH_CHARS:
        return f"at most {MAX_PATH_CHARS} characters"
    if path in ENVELOPE_PATHS:
        return None
    root, _, rest = path.partition(".")
    if root not in ROOTS or not rest or "" in rest.split("."):
        names = ", ".join(ENVELOPE_PATHS)
        return f"must be one of {names}, or attributes.NAME or data.NAME (dots go deeper)"
    return None


def _is_scalar(value: Any) -> bool:
    return value is None or isinstance(value, str | int | float | bool)


def paths_of(spec: Any) -> tuple[str, ...]:
    """The paths a (checked) filter reads, in order, each once."""
    found: list[str] = []

    def walk(node: Any) -> None:
        for key in ("all", "any"):
            if key in node:
                for child in node[key]:
                    walk(child)
                return
        if node["path"] not in found:
            found.append(node["path"])

    walk(spec)
    return tuple(found)


def compile_filter(spec: Mapping[str, Any]) -> EventFilter:
    """The filter, compiled (ValueError for one `check_filter` refuses); remembered by its
    canonical JSON, so endpoints read again from the database share their compiled filter."""
    return _compiled(orjson.dumps(spec, option=orjson.OPT_SORT_KEYS))


@lru_cache(maxsize=4096)
def stored_filter(text: str) -> EventFilter:
    """A stored filter (its column's JSON text), compiled once per text: endpoints are read
    from the database often (claims, planning), their filters rarely change."""
    return compile_filter(orjson.loads(text))


@lru_cache(maxsize=4096)
def _compiled(canonical: bytes) -> EventFilter:
    spec = orjson.loads(canonical)
    problems = check_filter(spec)
    if problems:
        raise ValueError(f"invalid filter: {problems[0].path}: {problems[0].message}")
    return EventFilter(spec=spec, paths=paths_of(spec), test=_node(spec))


def _node(node: dict[str, Any]) -> Test:
    if "all" in node:
        tests = tuple(_node(child) for child in node["all"])
        return lambda event: all(t(event) for t in tests)
    if "any" in node:
        tests = tuple(_node(child) for child in node["any"])
        return lambda event: any(t(event) for t in tests)
    get = _getter(node["path"])
    if "exists" in node:
        want = bool(node["exists"])
        return lambda event: (get(event) is not _MISSING) is want
    if "prefix" in node:
        prefix = node["prefix"]
        return lambda event: isinstance(v := get(event), str) and v.startswith(prefix)
    if "eq" in node:
        expected = node["eq"]
        return lambda event: _same(get(event), expected)
    choices = tuple(node["in"])
    return lambda event: any(_same(get(event), c) for c in choices)


def _same(value: Any, expected: Any) -> bool:
    """JSON equality: numbers by value, but a boolean is never a number."""
    if value is _MISSING:
        return False
    if isinstance(value, bool) or isinstance(expected, bool):
        return isinstance(value, bool) and isinstance(expected, bool) and value is expected
    if isinstance(value, int | float) and isinstance(expected, int | float):
        return value == expected
    return type(value) is type(expected) and bool(value == expected)


def _getter(path: str) -> Getter:
    if path in ENVELOPE_PATHS:
        attribute = ENVELOPE_PATHS[path]

        def envelope_field(event: Event) -> Any:
            value = getattr(event, attribute)
            return _MISSING if value is None and attribute != "type" else value

        return envelope_field
    root, _, rest = path.partition(".")
    names = tuple(rest.split("."))

    def nested(event: Event) -> Any:
        value: Any = event.attributes if root == "attributes" else event.data
        for name in names:
            if not isinstance(value, dict) or name not in value:
                return _MISSING
            value = value[name]
        return value

    return nested


def unknown_paths(
    filter_paths: Sequence[str],
    attributes_schemas: Sequence[Mapping[str, Any] | None],
    data_schemas: Sequence[Mapping[str, Any]],
) -> list[str]:
    """The paths no subscribed type has: an `attributes.` path none of their attribute schemas
    declares, a `data.` path none of their data schemas (any version) declares, property by
    property. Envelope fields every type has."""
    missing = []
    for path in filter_paths:
        root, _, rest = path.partition(".")
        if root not in ROOTS:
            continue
        schemas = attributes_schemas if root == "attributes" else data_schemas
        if not any(s is not None and _declares(s, rest.split(".")) for s in schemas):
            missing.append(path)
    return missing


def _declares(schema: Mapping[str, Any], names: Sequence[str]) -> bool:
    node: Any = schema
    for name in names:
        properties = node.get("properties") if isinstance(node, dict) else None
        if not isinstance(properties, dict) or name not in properties:
            return False
        node = properties[name]
    return True
