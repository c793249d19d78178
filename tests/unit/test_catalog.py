"""The shipped catalogs (novatrade, webhook meta, dlt) and the catalog machinery."""

from __future__ import annotations

import copy
import datetime as dt
import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tidings.catalog import Catalog, CatalogError, ValidationIssue

# Every type of both seeds, written out from the seeds (not derived from the data files), so a
# missing file fails this test.
NOVATRADE_TYPES = {
    "compliance.status_changed",
    "compliance.decision_made",
    "kyc.vies_check_failed",
    "kyc.verification_completed",
    "export_file.generated",
    "prospect.submitted",
    "self_service_invitation.used",
    "self_service_invitation.expired",
}
WEBHOOK_TYPES = {
    "webhook.endpoint_auto_paused",
    "webhook.delivery_failed_terminal",
    "webhook.subject_blocked",
}
DLT_TYPES = {
    "onboarding.requirementsQuestionnaire",
    "onboarding.requirementsIDV",
    "onboarding.completedIDV",
    "onboarding.failedIDV",
    "onboarding.errorIDV",
    "onboarding.entitlementCompleted",
    "onboarding.entitlementFailed",
    "adhoc_edd.entitlementStarted",
    "adhoc_edd.entitlementCompleted",
    "adhoc_edd.entitlementFailed",
    "posof.requirementsQuestionnaire",
    "posof.entitlementCompleted",
    "posof.entitlementFailed",
    "derivatives.requirementsQuestionnaire",
    "derivatives.entitlementCompleted",
    "derivatives.entitlementFailed",
    "rfi.entitlementStarted",
    "rfi.requirementsQuestionnaire",
    "rfi.reminder",
    "rfi.entitlementCompleted",
    "account_locks.applyTradingLock",
    "account_locks.releaseTradingLock",
    "account_locks.applyFundingLock",
    "account_locks.releaseFundingLock",
}
DLT_ATTRS = {
    "owner_id": "8e9b9a45-6212-4a77-bb43-4b8d123a5e42",
    "owner_type": "person",
    "external_id": "client_id_123",
    "entitlement_trigger_id": "8e9b9a45-6212-4a77-bb43-4b8d123a5e42",
    "entitlement_id": "9a9b9a45-6212-4a77-bb43-4b8d123a5e42",
}

CATALOG = Catalog.load_default()


def paths(issues: list[ValidationIssue]) -> list[str]:
    return [issue.path for issue in issues]


def all_versions() -> list[tuple[str, int]]:
    return [(t.name, v) for t in CATALOG.types() for v in sorted(t.versions)]


# ---- the shipped data ----------------------------------------------------------------------


def test_every_seed_type_is_present_in_its_catalog() -> None:
    assert set(CATALOG.names()) == NOVATRADE_TYPES | WEBHOOK_TYPES | DLT_TYPES
    for name in NOVATRADE_TYPES:
        event_type = CATALOG.get(name)
        assert event_type is not None
        assert (event_type.catalog, event_type.format) == ("novatrade", "novatrade")
        assert CATALOG.native_format(name) == "novatrade"
    for name in DLT_TYPES:
        event_type = CATALOG.get(name)
        assert event_type is not None
        assert (event_type.catalog, event_type.format) == ("dlt", "dlt")
        assert CATALOG.native_format(name) == "dlt"
    for name in WEBHOOK_TYPES:
        event_type = CATALOG.get(name)
        assert event_type is not None and event_type.catalog == "webhook"
        assert CATALOG.native_format(name) is None
    assert CATALOG.get("nope.nothing") is None
    assert CATALOG.native_format("nope.nothing") is None


def test_names_and_types_are_sorted() -> None:
    assert CATALOG.names() == sorted(CATALOG.names())
    assert [t.name for t in CATALOG.types()] == CATALOG.names()


def test_load_default_is_cached() -> None:
    assert Catalog.load_default() is Catalog.load_default()


@pytest.mark.parametrize(("type_name", "version"), all_versions())
def test_every_example_of_every_version_validates(type_name: str, version: int) -> None:
    event_type = CATALOG.get(type_name)
    assert event_type is not None
    examples = event_type.versions[version].examples
    assert examples
    for example in examples:
        assert CATALOG.validate_data(type_name, version, example) == []


@pytest.mark.parametrize(("type_name", "version"), all_versions())
def test_examples_convert_to_every_reachable_version_validly(type_name: str, version: int) -> None:
    event_type = CATALOG.get(type_name)
    assert event_type is not None
    for target in event_type.reachable(version):
        for example in event_type.versions[version].examples:
            converted = CATALOG.convert(type_name, example, version, target)
            assert CATALOG.validate_data(type_name, target, converted) == []


def test_compliance_status_changed_has_version_2_and_a_conversion_to_1() -> None:
    event_type = CATALOG.get("compliance.status_changed")
    assert event_type is not None
    assert sorted(event_type.versions) == [1, 2]
    assert event_type.latest_version == 2
    v2 = event_type.versions[2].examples[0]
    v1 = CATALOG.convert("compliance.status_changed", v2, 2, 1)
    assert v1 == {k: v2[k] for k in ("orderId", "previousStatus", "status")}
    assert "reason" in v2  # the input is untouched
    # a v2 document is not valid v1 (v1 is closed), so the conversion is what makes it deliverable
    assert "$.data.reason" in paths(CATALOG.validate_data("compliance.status_changed", 1, v2))


def test_contract_pins_of_compliance_types() -> None:
    ok = {"orderId": "o1", "previousStatus": "INCOMPLETE", "status": "VALID"}
    assert CATALOG.validate_data("compliance.status_changed", 1, ok) == []
    for decision in ("VALID_EXPORT", "VAT_APPLICABLE"):
        data = {"orderId": "o1", "decision": decision}
        assert CATALOG.validate_data("compliance.decision_made", 1, data) == []
    bad = CATALOG.validate_data("compliance.decision_made", 1, {"orderId": "o1", "decision": "X"})
    assert paths(bad) == ["$.data.decision"]


def test_dlt_shapes_follow_the_seed() -> None:
    derivatives = CATALOG.get("derivatives.entitlementFailed")
    assert derivatives is not None
    codes = {ex["code"] for ex in derivatives.versions[1].examples}
    assert codes == {"R0003", "retailDerivatives30DaysBlacklist"}
    reminder = CATALOG.get("rfi.reminder")
    assert reminder is not None
    kinds = {ex["type"] for ex in reminder.versions[1].examples}
    assert kinds == {"rfi_2_week_reminder", "rfi_4_week_reminder"}
    for level in ("Level 1", "Level 2", "Level 3"):
        data = {"posof_level": level}
        assert CATALOG.validate_data("posof.entitlementCompleted", 1, data) == []
    bad = CATALOG.validate_data("posof.entitlementCompleted", 1, {"posof_level": "Level 4"})
    assert paths(bad) == ["$.data.posof_level"]
    failed = {"code": "FL0001", "description": "Unacceptable IDV risk"}
    assert CATALOG.validate_data("onboarding.entitlementFailed", 1, failed) == []
    for name in ("adhoc_edd.entitlementFailed", "rfi.entitlementCompleted"):
        event_type = CATALOG.get(name)
        assert event_type is not None
        example = event_type.versions[1].examples[0]
        assert isinstance(example["funding_locked"], bool)
        broken = {**example, "trading_locked": "yes"}
        assert paths(CATALOG.validate_data(name, 1, broken)) == ["$.data.trading_locked"]
    for name in DLT_TYPES:
        if name.startswith("account_locks."):
            assert CATALOG.validate_data(name, 1, {}) == []
            assert paths(CATALOG.validate_data(name, 1, {"x": 1})) == ["$.data.x"]


def test_blacklist_dates_are_checked_as_dates() -> None:
    data = {
        "code": "retailDerivatives30DaysBlacklist",
        "description": "locked",
        "lock_date": "2024-10-29",
        "lock_release_date": "2024-02-30",
    }
    issues = CATALOG.validate_data("derivatives.entitlementFailed", 1, data)
    assert paths(issues) == ["$.data.lock_release_date"]
    missing = {"code": "retailDerivatives30DaysBlacklist", "description": "locked"}
    issues = CATALOG.validate_data("derivatives.entitlementFailed", 1, missing)
    assert paths(issues) == ["$.data.lock_date", "$.data.lock_release_date"]
    # error codes are open (issue 26): one the reference does not list is accepted (and
    # flagged by Catalog.warnings), an empty or non-string one is not
    unknown_code = {"code": "retailDerivatives90DaysBlacklist", "description": "x"}
    assert CATALOG.validate_data("derivatives.entitlementFailed", 1, unknown_code) == []
    for bad in ("", 7):
        issues = CATALOG.validate_data(
            "derivatives.entitlementFailed", 1, {"code": bad, "description": "x"}
        )
        assert paths(issues) == ["$.data.code"]


def test_date_time_format_is_enforced() -> None:
    event_type = CATALOG.get("onboarding.completedIDV")
    assert event_type is not None
    data = copy.deepcopy(event_type.versions[1].examples[0])
    data["messages"][0]["timestamp"] = "yesterday"
    issues = CATALOG.validate_data("onboarding.completedIDV", 1, data)
    assert paths(issues) == ["$.data.messages[0].timestamp"]
    data["messages"][0]["timestamp"] = "2024-09-03T14:55:26+02:00"
    assert CATALOG.validate_data("onboarding.completedIDV", 1, data) == []


# ---- validation paths ----------------------------------------------------------------------


def test_missing_required_property_is_named() -> None:
    issues = CATALOG.validate_data("compliance.status_changed", 1, {"status": "VALID"})
    assert paths(issues) == ["$.data.orderId", "$.data.previousStatus"]
    assert all(issue.message for issue in issues)


def test_wrong_enum_at_a_nested_path() -> None:
    event_type = CATALOG.get("compliance.status_changed")
    assert event_type is not None
    data = copy.deepcopy(event_type.versions[2].examples[0])
    data["changedBy"]["kind"] = "ROBOT"
    issues = CATALOG.validate_data("compliance.status_changed", 2, data)
    assert paths(issues) == ["$.data.changedBy.kind"]
    assert "ROBOT" in issues[0].message


def test_unexpected_property_is_named_on_closed_schemas() -> None:
    data = {"orderId": "o1", "previousStatus": None, "status": "VALID", "surprise": 1}
    issues = CATALOG.validate_data("compliance.status_changed", 1, data)
    assert paths(issues) == ["$.data.surprise"]


def test_dlt_details_tolerate_unknown_keys() -> None:
    data = {"posof_level": "Level 1", "added_upstream_later": True}
    assert CATALOG.validate_data("posof.entitlementCompleted", 1, data) == []


def test_unknown_type_version_and_non_object_data() -> None:
    assert paths(CATALOG.validate_data("nope.x", 1, {})) == ["$.type"]
    assert paths(CATALOG.validate_data("compliance.decision_made", 7, {})) == ["$.schemaVersion"]
    assert paths(CATALOG.validate_data("compliance.decision_made", True, {})) == [  # type: ignore[arg-type]
        "$.schemaVersion"
    ]
    assert paths(CATALOG.validate_data("compliance.decision_made", 1, [])) == ["$.data"]


def test_odd_property_names_are_quoted_in_paths() -> None:
    data = {"posof_level": "Level 1"}
    ok = CATALOG.validate_data("posof.entitlementCompleted", 1, data)
    assert ok == []
    issues = CATALOG.validate_data(
        "compliance.status_changed",
        1,
        {"orderId": "o", "previousStatus": None, "status": "VALID", "a b": 1},
    )
    assert paths(issues) == ['$.data["a b"]']


# ---- attributes ----------------------------------------------------------------------------


@pytest.mark.parametrize("type_name", sorted(DLT_TYPES))
def test_dlt_attributes_are_required(type_name: str) -> None:
    assert CATALOG.validate_attributes(type_name, DLT_ATTRS) == []
    for key in DLT_ATTRS:
        partial = {k: v for k, v in DLT_ATTRS.items() if k != key}
        assert paths(CATALOG.validate_attributes(type_name, partial)) == [f"$.attributes.{key}"]
    assert sorted(paths(CATALOG.validate_attributes(type_name, None))) == sorted(
        f"$.attributes.{key}" for key in DLT_ATTRS
    )


def test_dlt_owner_type_is_an_enum() -> None:
    for owner_type in ("person", "company"):
        attrs = {**DLT_ATTRS, "owner_type": owner_type}
        assert CATALOG.validate_attributes("rfi.reminder", attrs) == []
    attrs = {**DLT_ATTRS, "owner_type": "robot"}
    assert paths(CATALOG.validate_attributes("rfi.reminder", attrs)) == ["$.attributes.owner_type"]


def test_types_without_attribute_schema_accept_any_object() -> None:
    assert CATALOG.validate_attributes("compliance.status_changed", None) == []
    assert CATALOG.validate_attributes("compliance.status_changed", {"x": 1}) == []
    issues = CATALOG.validate_attributes("compliance.status_changed", ["x"])
    assert paths(issues) == ["$.attributes"]
    assert paths(CATALOG.validate_attributes("nope.x", {})) == ["$.type"]


# ---- versions ------------------------------------------------------------------------------


def test_best_version_with_explicit_accepted() -> None:
    name = "compliance.status_changed"
    assert CATALOG.best_version(name, 2, [1, 2]) == 2
    assert CATALOG.best_version(name, 2, [1]) == 1  # through the 2 -> 1 conversion
    assert CATALOG.best_version(name, 1, [1, 2]) == 1  # no 1 -> 2 conversion is declared
    assert CATALOG.best_version(name, 1, [2]) is None
    assert CATALOG.best_version(name, 2, []) is None
    assert CATALOG.best_version(name, 2, [3, 7]) is None
    assert CATALOG.best_version("compliance.decision_made", 1, [1, 2]) == 1
    assert CATALOG.best_version("compliance.decision_made", 1, [2]) is None


def test_best_version_default_is_the_newest_reachable() -> None:
    name = "compliance.status_changed"
    assert CATALOG.best_version(name, 2, None) == 2
    assert CATALOG.best_version(name, 1, None) == 1  # cannot upgrade: delivered as published
    assert CATALOG.best_version("compliance.decision_made", 1, None) == 1


def test_best_version_unknown_type_or_version() -> None:
    assert CATALOG.best_version("nope.x", 1, None) is None
    assert CATALOG.best_version("compliance.status_changed", 9, None) is None
    assert CATALOG.best_version("compliance.status_changed", 9, [9]) is None


def test_convert_refuses_unreachable_versions() -> None:
    name = "compliance.status_changed"
    v1 = {"orderId": "o1", "previousStatus": None, "status": "INCOMPLETE"}
    with pytest.raises(ValueError, match="no conversion"):
        CATALOG.convert(name, v1, 1, 2)
    with pytest.raises(ValueError, match="unknown event type"):
        CATALOG.convert("nope.x", v1, 1, 1)
    same = CATALOG.convert(name, v1, 1, 1)
    assert same == v1 and same is not v1


_STATUS = st.sampled_from(["INCOMPLETE", "VALID", "INVALID", "VALID_EXPORT", "VAT_APPLICABLE"])
_V2 = st.fixed_dictionaries(
    {
        "orderId": st.text(min_size=1, max_size=20),
        "previousStatus": st.none() | _STATUS,
        "status": _STATUS,
        "reason": st.none() | st.text(max_size=30),
        "changedBy": st.fixed_dictionaries(
            {
                "kind": st.sampled_from(["SYSTEM", "STAFF", "PARTNER", "BUYER"]),
                "id": st.none() | st.text(max_size=10),
            }
        ),
        "changedAt": st.datetimes(timezones=st.just(dt.UTC)).map(
            lambda d: d.isoformat().replace("+00:00", "Z")
        ),
    }
)


@settings(max_examples=60, deadline=None)
@given(_V2)
def test_any_valid_v2_status_change_converts_to_valid_v1(doc: dict[str, Any]) -> None:
    name = "compliance.status_changed"
    assert CATALOG.validate_data(name, 2, doc) == []
    converted = CATALOG.convert(name, doc, 2, 1)
    assert CATALOG.validate_data(name, 1, converted) == []
    assert converted["orderId"] == doc["orderId"] and converted["status"] == doc["status"]


# ---- listing -------------------------------------------------------------------------------


def test_to_json_lists_every_type_with_versions_and_examples() -> None:
    items = CATALOG.to_json()
    assert [item["type"] for item in items] == CATALOG.names()
    json.dumps(items)  # serializable as is
    by_type = {item["type"]: item for item in items}
    status = by_type["compliance.status_changed"]
    assert {"type", "catalog", "format", "versions"} <= set(status)
    assert [v["schemaVersion"] for v in status["versions"]] == [1, 2]
    for item in items:
        for version in item["versions"]:
            assert set(version) == {"schemaVersion", "schema", "examples"}
            assert version["examples"]
    assert by_type["onboarding.requirementsIDV"]["format"] == "dlt"
    assert "owner_id" in by_type["onboarding.requirementsIDV"]["attributes"]["required"]


# ---- loading custom and malformed catalogs -------------------------------------------------


def _type_doc(**overrides: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "type": "demo.thing_happened",
        "catalog": "demo",
        "format": "novatrade",
        "description": "a test type",
        "versions": [
            {
                "schemaVersion": 1,
                "schema": {
                    "type": "object",
                    "properties": {"id": {"type": "string"}, "state": {"enum": ["A", "B"]}},
                    "required": ["id", "state"],
                    "additionalProperties": False,
                },
                "examples": [{"id": "x", "state": "A"}],
            },
            {
                "schemaVersion": 2,
                "schema": {
                    "type": "object",
                    "properties": {
                        "thing": {
                            "type": "object",
                            "properties": {"id": {"type": "string"}},
                            "required": ["id"],
                        },
                        "state": {"enum": ["ALPHA", "BETA"]},
                        "note": {"type": "string"},
                    },
                    "required": ["thing", "state"],
                    "additionalProperties": False,
                },
                "examples": [{"thing": {"id": "x"}, "state": "BETA", "note": "n"}],
            },
            {
                "schemaVersion": 3,
                "schema": {"type": "object"},
                "examples": [{}],
            },
        ],
        "conversions": [
            {
                "from": 2,
                "to": 1,
                "ops": [
                    {"op": "rename", "from": "/thing/id", "to": "/id"},
                    {"op": "remove", "path": "/thing"},
                    {"op": "remove", "path": "/note"},
                    {"op": "map", "path": "/state", "values": {"ALPHA": "A", "BETA": "B"}},
                ],
            },
            {
                "from": 3,
                "to": 2,
                "ops": [
                    {"op": "default", "path": "/thing/id", "value": "unknown"},
                    {"op": "set", "path": "/state", "value": "ALPHA"},
                    {"op": "copy", "from": "/state", "to": "/note"},
                ],
            },
        ],
    }
    doc.update(overrides)
    return doc


def _write(root: Path, doc: Any, folder: str = "demo", name: str = "demo.thing_happened") -> Path:
    path = root / folder / f"{name}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(doc if isinstance(doc, str) else json.dumps(doc))
    return path


def test_custom_catalog_with_a_conversion_chain(tmp_path: Path) -> None:
    _write(tmp_path, _type_doc())
    catalog = Catalog.load(tmp_path)
    assert catalog.names() == ["demo.thing_happened"]
    name = "demo.thing_happened"
    assert catalog.best_version(name, 3, [1]) == 1  # 3 -> 2 -> 1
    assert catalog.best_version(name, 3, None) == 3
    assert catalog.best_version(name, 2, [1, 3]) == 1
    assert catalog.convert(name, {"thing": {"id": "q"}, "state": "ALPHA"}, 2, 1) == {
        "id": "q",
        "state": "A",
    }
    converted = catalog.convert(name, {"extra": True}, 3, 1)
    assert converted == {"id": "unknown", "state": "A", "extra": True}
    assert paths(catalog.validate_data(name, 1, converted)) == ["$.data.extra"]
    assert catalog.native_format(name) == "novatrade"


@pytest.mark.parametrize(
    ("doc", "expected"),
    [
        ("{not json", "not valid JSON"),
        (_type_doc(versions=[]), "non-empty list"),
        (
            _type_doc(
                versions=[{"schemaVersion": 1, "schema": {"type": "nope"}, "examples": [{}]}],
                conversions=[],
            ),
            "not a valid JSON Schema",
        ),
        (
            _type_doc(
                versions=[
                    {"schemaVersion": 1, "schema": {"required": ["a"]}, "examples": [{"b": 1}]}
                ],
                conversions=[],
            ),
            r"example 0 does not validate: \$\.data\.a",
        ),
        (
            _type_doc(
                versions=[{"schemaVersion": 1, "schema": {"type": "object"}, "examples": []}],
                conversions=[],
            ),
            "at least one example",
        ),
        (
            _type_doc(
                versions=[{"schemaVersion": 1, "schema": {"type": "object"}, "examples": [{}]}],
                conversions=[{"from": 1, "to": 5, "ops": []}],
            ),
            "unknown schemaVersion",
        ),
        (
            _type_doc(conversions=[{"from": 2, "to": 1, "ops": [{"op": "explode", "path": "/x"}]}]),
            "unknown op",
        ),
        (
            _type_doc(conversions=[{"from": 2, "to": 1, "ops": [{"op": "remove", "path": "x"}]}]),
            "JSON pointer",
        ),
        (
            _type_doc(conversions=[{"from": 2, "to": 1, "ops": []}]),
            "does not validate as 1",
        ),
        (_type_doc(catalog="other"), "must match its folder"),
        (_type_doc(type="demo.other"), "file name must be"),
        (_type_doc(surprise=1), "unknown keys"),
        (_type_doc(description=""), "'description'"),
        (_type_doc(attributes={"type": 5}), "'attributes' is not a valid JSON Schema"),
        (_type_doc(subject="orderId"), "subject 'orderId' is not a property"),
    ],
)
def test_malformed_catalog_file_is_refused_naming_the_file(
    tmp_path: Path, doc: Any, expected: str
) -> None:
    _write(tmp_path, doc)
    with pytest.raises(CatalogError, match=expected) as info:
        Catalog.load(tmp_path)
    assert "demo/demo.thing_happened.json" in str(info.value)


def test_empty_or_missing_directory_is_refused(tmp_path: Path) -> None:
    with pytest.raises(CatalogError):
        Catalog.load(tmp_path / "missing")
    with pytest.raises(CatalogError, match="no event type files"):
        Catalog.load(tmp_path)


def test_duplicate_type_across_folders_is_refused(tmp_path: Path) -> None:
    _write(tmp_path, _type_doc())
    _write(tmp_path, _type_doc(catalog="again"), folder="again")
    with pytest.raises(CatalogError, match="defined twice"):
        Catalog.load(tmp_path)


def test_subjects_name_a_property_of_the_data() -> None:
    status = CATALOG.get("compliance.status_changed")
    assert status is not None and status.subject == "orderId"
    for event_type in CATALOG.types():
        if event_type.subject is not None:
            for version in event_type.versions.values():
                for example in version.examples:
                    assert event_type.subject in example


def test_shipped_data_directory_loads_from_a_plain_path() -> None:
    root = Path(__file__).resolve().parents[2] / "src" / "tidings" / "catalog" / "data"
    assert Catalog.load(root).names() == CATALOG.names()
