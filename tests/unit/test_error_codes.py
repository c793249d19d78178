"""The DLT error-code reference as data (issue 26 item 1): loaded and checked with the catalog,
listed per type, unknown codes flagged not refused, and the receiver SDK's meanings read from
the same file."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tidings.catalog import Catalog, CatalogError
from tidings.catalog.error_codes import UNKNOWN_ERROR_CODE

CATALOG = Catalog.load_default()
DATA = Path(__file__).resolve().parents[2] / "src" / "tidings" / "catalog" / "data"


def test_the_reference_holds_the_seeds_codes() -> None:
    codes = {c.code: c for c in CATALOG.error_codes()}
    assert {"FL0001", "R0003", "retailDerivatives30DaysBlacklist"} <= set(codes)
    assert codes["FL0001"].workflows == ("onboarding",)
    assert codes["retailDerivatives30DaysBlacklist"].locks_until == "lock_release_date"
    assert [c.code for c in CATALOG.error_codes("derivatives.entitlementFailed")] == [
        "R0003",
        "retailDerivatives30DaysBlacklist",
    ]
    assert CATALOG.error_codes("kyc.verification_completed") == []


def test_unknown_codes_are_flagged_and_known_ones_are_not() -> None:
    assert CATALOG.warnings("onboarding.entitlementFailed", {"code": "FL0001"}) == []
    flagged = CATALOG.warnings("onboarding.entitlementFailed", {"code": "FL9999"})
    assert [(w["code"], w["path"]) for w in flagged] == [(UNKNOWN_ERROR_CODE, "$.data.code")]
    # a code listed for another workflow is unknown for this one
    assert CATALOG.warnings("onboarding.entitlementFailed", {"code": "R0003"}) != []
    # types without codes, and failures without one, have nothing to flag
    assert CATALOG.warnings("compliance.status_changed", {"code": "x"}) == []
    assert CATALOG.warnings("posof.entitlementFailed", {}) == []


def test_the_type_json_carries_its_codes() -> None:
    item = CATALOG.type_json("derivatives.entitlementFailed")
    assert item is not None
    assert [c["code"] for c in item["errorCodes"]] == ["R0003", "retailDerivatives30DaysBlacklist"]
    plain = CATALOG.type_json("kyc.verification_completed")
    assert plain is not None and "errorCodes" not in plain
    assert CATALOG.type_json("no.such") is None


def _catalog_with(tmp_path: Path, codes: object) -> Path:
    root = tmp_path / "data"
    (root / "dlt").mkdir(parents=True)
    for name in ("onboarding.entitlementFailed.json", "rfi.reminder.json"):
        (root / "dlt" / name).write_text((DATA / "dlt" / name).read_text())
    (root / "error-codes.json").write_text(json.dumps({"codes": codes}))
    return root


def test_a_code_is_added_by_adding_an_entry(tmp_path: Path) -> None:
    entry = {
        "code": "FL0002",
        "meaning": "m",
        "category": "c",
        "eventTypes": ["onboarding.entitlementFailed"],
    }
    catalog = Catalog.load(_catalog_with(tmp_path, [entry]))
    assert catalog.warnings("onboarding.entitlementFailed", {"code": "FL0002"}) == []


@pytest.mark.parametrize(
    ("codes", "says"),
    [
        ([{"code": "X", "meaning": "m", "category": "c", "eventTypes": ["rfi.reminder"]}], "code"),
        ([{"code": "X", "meaning": "", "category": "c", "eventTypes": []}], "meaning"),
        ([{"code": "X", "meaning": "m", "category": "c", "eventTypes": ["a.b"], "x": 1}], "x"),
        ("not a list", "codes"),
    ],
)
def test_a_malformed_reference_is_refused(tmp_path: Path, codes: object, says: str) -> None:
    with pytest.raises(CatalogError, match=says):
        Catalog.load(_catalog_with(tmp_path, codes))


def test_the_receiver_sdk_tells_what_a_code_means() -> None:
    from tidings.receiver.models import DerivativesEntitlementFailed, EntitlementFailed

    known = EntitlementFailed.from_dict({"code": "FL0001", "description": "Unacceptable IDV risk"})
    assert known.meaning is not None and "IDV risk" in known.meaning
    unknown = DerivativesEntitlementFailed.from_dict({"code": "Z0001", "description": "x"})
    assert unknown.meaning is None
