"""Endpoint filters (issue 26 item 8), the pure part: the shape a filter must have (each problem
named by its JSON path), what each operator means on an event (a path that leads nowhere makes
eq, in and prefix false; booleans are not numbers), all/any nesting, the paths a catalog must
declare, and compiled filters shared by their canonical JSON."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from tidings.filters import check_filter, compile_filter, stored_filter, unknown_paths
from tidings.models import Event

EVENT = Event(
    id="evt_1",
    organization_id="org",
    type="onboarding.entitlementFailed",
    schema_version=1,
    source="SYSTEM",
    created_at=0.0,
    data={"code": "FL0001", "score": 3, "flag": True, "nested": {"level": "high"}, "none": None},
    partner_uuid=None,
    subject="owner-1",
    attributes={"owner_type": "company", "external_id": "ext-77"},
)


def holds(spec: dict[str, Any], event: Event = EVENT) -> bool:
    return compile_filter(spec).test(event)


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ({"path": "attributes.owner_type", "eq": "company"}, True),
        ({"path": "attributes.owner_type", "eq": "person"}, False),
        ({"path": "data.code", "in": ["R0003", "FL0001"]}, True),
        ({"path": "data.code", "in": ["R0003"]}, False),
        ({"path": "data.nested.level", "eq": "high"}, True),
        ({"path": "data.nested.level.deeper", "exists": True}, False),  # not an object on the way
        ({"path": "data.missing", "eq": None}, False),  # nowhere is not null
        ({"path": "data.none", "eq": None}, True),
        ({"path": "data.none", "exists": True}, True),  # null is a value
        ({"path": "data.missing", "exists": False}, True),
        ({"path": "data.score", "eq": 3.0}, True),  # numbers by value
        ({"path": "data.flag", "eq": 1}, False),  # a boolean is no number
        ({"path": "data.score", "eq": True}, False),
        ({"path": "data.flag", "eq": True}, True),
        ({"path": "attributes.external_id", "prefix": "ext-"}, True),
        ({"path": "data.score", "prefix": "3"}, False),  # prefix is for strings
        ({"path": "subject", "eq": "owner-1"}, True),
        ({"path": "partnerUuid", "exists": False}, True),  # the event has none
        ({"path": "source", "in": ["WEB_APP", "SYSTEM"]}, True),
        ({"path": "type", "prefix": "onboarding."}, True),
        ({"path": "correlationId", "exists": True}, False),
    ],
)
def test_each_operator(spec: dict[str, Any], expected: bool) -> None:
    assert holds(spec) is expected


def test_all_and_any_nest() -> None:
    company = {"path": "attributes.owner_type", "eq": "company"}
    person = {"path": "attributes.owner_type", "eq": "person"}
    code = {"path": "data.code", "eq": "FL0001"}
    assert holds({"all": [company, code]})
    assert not holds({"all": [person, code]})
    assert holds({"any": [person, code]})
    assert not holds({"any": [person, {"path": "data.code", "eq": "X"}]})
    assert holds({"all": [{"any": [person, company]}, {"all": [code]}]})
    someone = replace(EVENT, attributes={"owner_type": "person"})
    assert holds({"any": [person, company]}, someone)
    assert not holds({"all": [company]}, someone)


@pytest.mark.parametrize(
    ("spec", "path", "words"),
    [
        ([], "$.filter", "must be an object"),
        ({"all": []}, "$.filter.all", "non-empty list"),
        ({"all": [{"path": "data.x"}]}, "$.filter.all[0]", "exactly one of"),
        ({"path": "data.x", "eq": 1, "in": [1]}, "$.filter", "exactly one of"),
        ({"path": "data.x", "like": "a"}, "$.filter.like", "unknown key"),
        ({"path": "payload.x", "eq": 1}, "$.filter.path", "attributes.NAME or data.NAME"),
        ({"path": "data.", "eq": 1}, "$.filter.path", "attributes.NAME"),
        ({"path": "data.x", "eq": {"a": 1}}, "$.filter.eq", "a string, a number"),
        ({"path": "data.x", "in": []}, "$.filter.in", "1 to 100 values"),
        ({"path": "data.x", "in": [1, [2]]}, "$.filter.in[1]", "a string, a number"),
        ({"path": "data.x", "exists": "yes"}, "$.filter.exists", "true or false"),
        ({"path": "data.x", "prefix": ""}, "$.filter.prefix", "non-empty string"),
        ({"all": [{"path": "data.x", "eq": 1}], "any": []}, "$.filter", "only key"),
        (
            {"all": [{"all": [{"all": [{"all": [{"path": "data.x", "eq": 1}]}]}]}]},
            "$.filter.all[0].all[0].all[0].all",
            "deeper than 4",
        ),
    ],
)
def test_bad_filters_are_named_by_their_path(spec: Any, path: str, words: str) -> None:
    problems = check_filter(spec)
    assert problems, spec
    assert problems[0].path == path and words in problems[0].message, problems
    with pytest.raises(ValueError):
        compile_filter(spec) if isinstance(spec, dict) else stored_filter("[]")


def test_too_many_conditions() -> None:
    spec = {"any": [{"path": "data.x", "eq": n} for n in range(51)]}
    assert [p.message for p in check_filter(spec)] == ["at most 50 conditions"]


def test_the_catalog_must_declare_attribute_and_data_paths() -> None:
    attributes: list[dict[str, Any] | None] = [{"properties": {"owner_type": {}}}, None]
    data: list[dict[str, Any]] = [
        {"properties": {"status": {}, "nested": {"properties": {"level": {}}}}}
    ]
    paths = ("attributes.owner_type", "attributes.nope", "data.status", "data.nested.level",
             "data.nested.nope", "data.status.deeper", "subject", "source")  # fmt: skip
    assert unknown_paths(paths, attributes, data) == [
        "attributes.nope",
        "data.nested.nope",
        "data.status.deeper",
    ]


def test_compiled_filters_are_shared_and_keep_their_spec() -> None:
    spec = {"all": [{"path": "data.code", "eq": "FL0001"}, {"path": "subject", "exists": True}]}
    first = compile_filter(spec)
    assert compile_filter(dict(reversed(list(spec.items())))) is first  # canonical JSON
    assert stored_filter('{"all": [{"path": "data.code", "eq": "FL0001"}, '
                         '{"path": "subject", "exists": true}]}') is first  # fmt: skip
    assert first.spec == spec and first.paths == ("data.code", "subject")
