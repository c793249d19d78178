"""The receiver's hand-written typed classes checked against the catalog JSON Schemas
(`src/tidings/catalog/data/<catalog>/<type>.json`), so that a drift on either side fails here:

- every (type, schemaVersion) with a typed class exists in the catalog;
- every property the schema requires is a field of the class, every field is a schema
  property, and every field the class requires is required by the schema;
- every catalog example parses into the class and converts back to the same dict;
- every example of every catalog type parses (into the generic event where there is no class),
  including after a round trip through the sending side (`tidings.formats`).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from tidings.receiver import verify_and_parse
from tidings.receiver.models import EventData, parse_data, registered_types

CATALOG_DIR = Path(
    os.environ.get("TIDINGS_TEST_CATALOG_DIR")
    or Path(__file__).resolve().parents[2] / "src" / "tidings" / "catalog" / "data"
)
NOW = 1_790_000_000.0


def _load_catalog() -> dict[str, dict[str, Any]]:
    entries: dict[str, dict[str, Any]] = {}
    for path in sorted(CATALOG_DIR.glob("*/*.json")):
        doc = json.loads(path.read_text())
        if isinstance(doc, dict) and "type" in doc and "versions" in doc:
            entries[doc["type"]] = doc
    return entries


CATALOG = _load_catalog()
needs_catalog = pytest.mark.skipif(
    not CATALOG, reason=f"no catalog files under {CATALOG_DIR} yet (written by the catalog owner)"
)
REGISTERED = sorted(registered_types().items())


def _version(type_name: str, version: int) -> dict[str, Any]:
    entry = CATALOG.get(type_name)
    assert entry is not None, f"typed class for {type_name!r}, which is not in the catalog"
    for item in entry["versions"]:
        if item["schemaVersion"] == version:
            return dict(item)
    raise AssertionError(f"{type_name!r} has no schemaVersion {version} in the catalog")


def _assert_round_trip(typed: EventData, example: dict[str, Any]) -> None:
    """Every property of the example survives; absent optional properties come back as None."""
    back = typed.to_dict()
    assert {k: back[k] for k in example} == example
    assert all(back[k] is None for k in set(back) - set(example)), back


def _ids(item: tuple[tuple[str, int], type[EventData]]) -> str:
    (type_name, version), _ = item
    return f"{type_name}@v{version}"


@needs_catalog
@pytest.mark.parametrize("item", REGISTERED, ids=[_ids(i) for i in REGISTERED])
def test_typed_class_matches_the_catalog_schema(
    item: tuple[tuple[str, int], type[EventData]],
) -> None:
    (type_name, version), cls = item
    schema = _version(type_name, version)["schema"]
    properties = set(schema.get("properties", {}))
    required = set(schema.get("required", []))
    fields = set(cls.wire_fields())
    assert required <= fields, f"{cls.__name__} lacks schema-required {sorted(required - fields)}"
    assert fields <= properties, (
        f"{cls.__name__} has fields not in the schema: {fields - properties}"
    )
    class_required = set(cls.required_wire_fields())
    assert class_required <= required, (
        f"{cls.__name__} requires {sorted(class_required - required)}, optional in the schema"
    )


@needs_catalog
@pytest.mark.parametrize("item", REGISTERED, ids=[_ids(i) for i in REGISTERED])
def test_every_catalog_example_parses_into_the_typed_class(
    item: tuple[tuple[str, int], type[EventData]],
) -> None:
    (type_name, version), cls = item
    examples = _version(type_name, version)["examples"]
    assert examples, f"{type_name} v{version} has no example"
    for example in examples:
        typed = parse_data(type_name, version, example)
        assert isinstance(typed, cls)
        _assert_round_trip(typed, example)


def _all_examples() -> list[tuple[str, str, int, Any]]:
    out: list[tuple[str, str, int, Any]] = []
    for type_name, entry in CATALOG.items():
        for item in entry["versions"]:
            for example in item.get("examples", []):
                out.append((entry.get("format", ""), type_name, item["schemaVersion"], example))
    return out


@needs_catalog
def test_every_catalog_example_of_every_type_parses() -> None:
    examples = _all_examples()
    assert examples
    for _, type_name, version, example in examples:
        typed = parse_data(type_name, version, example)
        if typed is not None:
            _assert_round_trip(typed, example)


@needs_catalog
def test_catalog_examples_delivered_by_tidings_formats_verify_and_parse() -> None:
    try:
        from tidings import formats, signing
        from tidings.models import Event
    except ImportError as exc:  # pragma: no cover - only before the sending side exists
        pytest.skip(f"tidings.formats / tidings.signing not importable yet: {exc}")
    checked = 0
    for index, (native, type_name, version, example) in enumerate(_all_examples()):
        # webhook.* meta types are deliverable in every format, the others natively or standard
        wanted = set(formats.FORMATS) if type_name.startswith("webhook.") else {native, "standard"}
        for fmt in sorted(wanted & set(formats.FORMATS)):
            secret = signing.generate_secret(fmt)
            event = Event(
                id=f"evt_{index}",
                organization_id="org-1",
                type=type_name,
                schema_version=version,
                source="SYSTEM",
                created_at=NOW,
                data=example,
                attributes={"owner_id": "own-1", "owner_type": "person"},
            )
            rendered = formats.render(
                fmt,
                event=event,
                data=example,
                schema_version=version,
                delivery_id="dlv_1",
                attempt=1,
                secrets=[secret],
                now=NOW,
            )
            received = verify_and_parse(fmt, rendered.body, rendered.headers, secret, now=NOW)
            assert (received.id, received.type, received.schema_version) == (
                event.id,
                type_name,
                version,
            )
            assert received.data == example
            typed = received.typed
            expected_cls = registered_types().get((type_name, version))
            assert (typed is None) == (expected_cls is None), type_name
            checked += 1
    assert checked > 0


@needs_catalog
def test_every_catalog_type_and_version_has_a_typed_class() -> None:
    # Receivers of an unknown type get the generic event, so this is not about safety: it keeps
    # the SDK complete for the catalogs tidings ships. A new type or version needs a class.
    missing = [
        f"{type_name} v{item['schemaVersion']}"
        for type_name, entry in CATALOG.items()
        for item in entry["versions"]
        if (type_name, item["schemaVersion"]) not in registered_types()
    ]
    assert missing == []
