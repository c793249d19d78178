"""The fast validator (jsonschema-rs) gives the reference's (jsonschema) answer on every schema of
the default catalog: its examples and many broken variants of them. The catalog trusts a "valid"
from the fast one without asking the reference, so a disagreement would let through data the
reference refuses."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from typing import Any

import pytest

from tidings.catalog.registry import Catalog, _compile, _fast_is_valid, _fast_validator

ODD_VALUES: list[Any] = [
    None,
    True,
    0,
    -1,
    1.5,
    2**70,
    "",
    "x",
    "VALID",
    "2026-01-01T00:00:00Z",
    "2026-01-01t00:00:00z",
    "2026-01-01 00:00:00+02:00",
    "2026-01-01T00:00:00",
    "2026-13-01T00:00:00Z",
    "2026-02-30",
    "2026-01-01",
    "not a uri",
    "https://example.com/x",
    "AB1234",
    "a@b",
    [],
    [1],
    {},
    {"unexpected": 1},
]


def _variants(value: Any, depth: int = 0) -> Iterator[Any]:
    """The value itself, then copies with one place changed: a key removed or added, a value
    replaced by each odd value (recursively, a few levels deep)."""
    yield value
    if depth > 3:
        return
    if isinstance(value, dict):
        yield {**value, "unexpectedField": 1}
        for key in value:
            yield {k: v for k, v in value.items() if k != key}
            for odd in ODD_VALUES:
                yield {**value, key: odd}
            for inner in _variants(value[key], depth + 1):
                changed = copy.copy(value)
                changed[key] = inner
                yield changed
    elif isinstance(value, list) and value:
        yield []
        yield value + value[:1]
        for odd in ODD_VALUES[:6]:
            yield [odd, *value[1:]]
        for inner in _variants(value[0], depth + 1):
            yield [inner, *value[1:]]


def _schemas() -> Iterator[tuple[str, dict[str, Any], list[Any]]]:
    catalog = Catalog.load_default()
    for event_type in catalog._types.values():
        for number, version in event_type.versions.items():
            yield f"{event_type.name} v{number}", version.schema, version.examples
        if event_type.attributes_schema is not None:
            names = event_type.attributes_schema.get("properties", {})
            yield (
                f"{event_type.name} attributes",
                event_type.attributes_schema,
                [{}, {name: (spec.get("enum") or ["x"])[0] for name, spec in names.items()}],
            )


@pytest.mark.parametrize(
    ("label", "schema", "examples"), [pytest.param(*s, id=s[0]) for s in _schemas()]
)
def test_fast_and_reference_validators_agree(
    label: str, schema: dict[str, Any], examples: list[Any]
) -> None:
    reference = _compile(schema, label, "schema")
    fast = _fast_validator(schema)
    checked = refused = 0
    for example in examples:
        for instance in _variants(example):
            assert _fast_is_valid(fast, instance) == reference.is_valid(instance), (
                label,
                instance,
            )
            checked += 1
            refused += not reference.is_valid(instance)
    assert refused < checked  # some accepted
    assert refused > 0 or schema.get("additionalProperties") is not False
