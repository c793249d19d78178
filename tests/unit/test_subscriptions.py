from __future__ import annotations

from collections.abc import Callable, Collection
from dataclasses import replace
from itertools import count

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tidings.models import DeliveryStatus, Endpoint, EndpointSecret, EndpointStatus, Event
from tidings.subscriptions import (
    choose_format,
    endpoint_wants,
    matches_any,
    pattern_matches,
    plan_deliveries,
    plan_key,
    plan_targets,
    to_type_filter,
    unmatched_patterns,
    validate_pattern,
)

ORG = "org-1"


class FakeCatalog:
    """Versions per type; an accepted set picks the highest accepted version <= reachable.
    Here every type has versions 1 and 2 with conversions both ways, except
    `compliance.decision_made`, which only has version 1."""

    def best_version(
        self, type_name: str, from_version: int, accepted: Collection[int] | None
    ) -> int | None:
        versions = {1} if type_name == "compliance.decision_made" else {1, 2}
        if accepted is None:
            return max(versions)
        usable = versions & set(accepted)
        return max(usable) if usable else None


def make_endpoint(**kw: object) -> Endpoint:
    base = Endpoint(
        id="ep_1",
        organization_id=ORG,
        url="https://example.com/hook",
        event_types=("compliance.*",),
        format="novatrade",
        secrets=(EndpointSecret("ntsec_x", 0.0),),
    )
    return replace(base, **kw)  # type: ignore[arg-type]


def make_event(**kw: object) -> Event:
    base = Event(
        id="evt_1",
        organization_id=ORG,
        type="compliance.status_changed",
        schema_version=1,
        source="WEB_APP",
        created_at=1_700_000_000.0,
        data={"orderId": "o1", "previousStatus": "A", "status": "B"},
    )
    return replace(base, **kw)  # type: ignore[arg-type]


def ids() -> Callable[[str], str]:
    counter = count(1)
    return lambda prefix: f"{prefix}_{next(counter)}"


# ---- pattern rules -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "pattern",
    [
        "compliance.status_changed",
        "compliance.*",
        "kyc.*",
        "onboarding.*",
        "onboarding.requirementsIDV",
        "account_locks.applyFundingLock",
        "webhook.*",
        "a.b.*",
        "single",
    ],
)
def test_valid_patterns(pattern: str) -> None:
    assert validate_pattern(pattern) is None


@pytest.mark.parametrize(
    "pattern",
    [
        "",
        "*",
        "**",
        "a*",
        "*.x",
        "a.*.b",
        "a.**",
        "a..b",
        ".a",
        "a.",
        "a. b",
        " a.b",
        "a.b ",
        "a\tb",
        "kyc.*x",
        "kyc.x*",
        "a/b",
        "x" * 201,
    ],
)
def test_invalid_patterns(pattern: str) -> None:
    reason = validate_pattern(pattern)
    assert isinstance(reason, str) and reason
    # an invalid pattern matches nothing and cannot be compiled for the store
    assert not pattern_matches(pattern, "a.b")
    with pytest.raises(ValueError):
        to_type_filter([pattern])


def test_segment_wildcard_examples() -> None:
    assert pattern_matches("compliance.*", "compliance.status_changed")
    assert pattern_matches("compliance.*", "compliance.a.b")
    assert not pattern_matches("compliance.*", "compliance")
    assert not pattern_matches("compliance.*", "compliance_x.y")
    assert not pattern_matches("compliance.*", "compliancex.status_changed")
    assert not pattern_matches("kyc.*", "compliance.status_changed")
    assert pattern_matches("compliance.status_changed", "compliance.status_changed")
    assert not pattern_matches("compliance.status_changed", "compliance.status_changed.x")
    assert matches_any(["kyc.*", "compliance.decision_made"], "compliance.decision_made")
    assert not matches_any([], "compliance.decision_made")


segment = st.text(alphabet="abcxyz_-0", min_size=1, max_size=4)
segments = st.lists(segment, min_size=1, max_size=4)


def _filter_selects(patterns: list[str], type_name: str) -> bool:
    flt = to_type_filter(patterns)
    return type_name in flt.exact or any(type_name.startswith(p) for p in flt.prefixes)


@given(prefix=segments, type_segments=segments, wildcard=st.booleans())
def test_pattern_matches_by_segment_rule(
    prefix: list[str], type_segments: list[str], wildcard: bool
) -> None:
    type_name = ".".join(type_segments)
    if wildcard:
        pattern = ".".join([*prefix, "*"])
        expected = len(type_segments) > len(prefix) and type_segments[: len(prefix)] == prefix
    else:
        pattern = ".".join(prefix)
        expected = type_segments == prefix
    assert validate_pattern(pattern) is None
    assert pattern_matches(pattern, type_name) is expected
    assert _filter_selects([pattern], type_name) is expected


@given(
    patterns=st.lists(
        st.tuples(segments, st.booleans()).map(
            lambda t: ".".join([*t[0], "*"]) if t[1] else ".".join(t[0])
        ),
        max_size=5,
    ),
    type_segments=segments,
)
def test_type_filter_agrees_with_matches_any(patterns: list[str], type_segments: list[str]) -> None:
    type_name = ".".join(type_segments)
    assert _filter_selects(patterns, type_name) is matches_any(patterns, type_name)


def test_type_filter_shape() -> None:
    flt = to_type_filter(["compliance.*", "kyc.vies_check_failed", "compliance.*"])
    assert flt.exact == ("kyc.vies_check_failed",)
    assert flt.prefixes == ("compliance.",)
    assert to_type_filter([]).empty


# ---- endpoint_wants ------------------------------------------------------------------------


def test_wants_matching_type_and_default_sources() -> None:
    ep = make_endpoint()
    assert endpoint_wants(ep, make_event())
    assert endpoint_wants(ep, make_event(source="SYSTEM"))
    assert not endpoint_wants(ep, make_event(source="API"))  # no echo by default
    assert not endpoint_wants(ep, make_event(type="kyc.vies_check_failed"))


def test_sources_can_include_api() -> None:
    ep = make_endpoint(sources=("API",))
    assert endpoint_wants(ep, make_event(source="API"))
    assert not endpoint_wants(ep, make_event(source="WEB_APP"))


def test_partner_filter() -> None:
    all_partners = make_endpoint(partner_ids=None)
    only_p1 = make_endpoint(partner_ids=("p1",))
    none_allowed = make_endpoint(partner_ids=())
    assert endpoint_wants(all_partners, make_event(partner_uuid="p2"))
    assert endpoint_wants(all_partners, make_event(partner_uuid=None))
    assert endpoint_wants(only_p1, make_event(partner_uuid="p1"))
    assert not endpoint_wants(only_p1, make_event(partner_uuid="p2"))
    # an event without a partner is not delivered to a partner-filtered endpoint
    assert not endpoint_wants(only_p1, make_event(partner_uuid=None))
    assert not endpoint_wants(none_allowed, make_event(partner_uuid="p1"))


def test_deleted_disabled_and_foreign_endpoints_never_want() -> None:
    assert not endpoint_wants(make_endpoint(deleted_at=5.0), make_event())
    assert not endpoint_wants(make_endpoint(status=EndpointStatus.DISABLED), make_event())
    assert not endpoint_wants(make_endpoint(organization_id="other"), make_event())
    assert endpoint_wants(make_endpoint(status=EndpointStatus.PAUSED), make_event())


def test_meta_event_not_delivered_to_its_own_endpoint() -> None:
    meta = make_event(
        type="webhook.endpoint_auto_paused",
        source="SYSTEM",
        data={"endpointId": "ep_1", "reason": "consecutive_failures"},
    )
    assert not endpoint_wants(make_endpoint(id="ep_1", event_types=("webhook.*",)), meta)
    assert endpoint_wants(make_endpoint(id="ep_2", event_types=("webhook.*",)), meta)
    # a non-meta event carrying endpointId in its data is not affected
    other = make_event(data={"endpointId": "ep_1"})
    assert endpoint_wants(make_endpoint(id="ep_1"), other)


# ---- plan_deliveries ------------------------------------------------------------------------


def test_plan_statuses_versions_and_skips() -> None:
    endpoints = [
        make_endpoint(id="ep_active"),
        make_endpoint(id="ep_paused", status=EndpointStatus.PAUSED),
        make_endpoint(id="ep_v1", accepted_schema_versions=(1,)),
        make_endpoint(id="ep_v3", accepted_schema_versions=(3,)),
        make_endpoint(id="ep_kyc", event_types=("kyc.*",)),
        make_endpoint(id="ep_deleted", deleted_at=1.0),
    ]
    planned = plan_deliveries(make_event(), endpoints, FakeCatalog(), ids())
    by_ep = {d.endpoint_id: d for d in planned}
    assert [d.endpoint_id for d in planned] == ["ep_active", "ep_paused", "ep_v1", "ep_v3"]
    assert by_ep["ep_active"].status == DeliveryStatus.PENDING
    assert by_ep["ep_active"].schema_version == 2
    assert by_ep["ep_paused"].status == DeliveryStatus.HELD
    assert by_ep["ep_paused"].schema_version == 2
    assert by_ep["ep_v1"].status == DeliveryStatus.PENDING
    assert by_ep["ep_v1"].schema_version == 1
    assert by_ep["ep_v3"].status == DeliveryStatus.SKIPPED
    assert by_ep["ep_v3"].schema_version is None
    assert by_ep["ep_v3"].skip_reason == "schema_version_not_accepted"
    assert all(not d.is_meta for d in planned)
    assert len({d.id for d in planned}) == len(planned)
    assert all(d.id.startswith("dlv_") for d in planned)


def test_plan_meta_event() -> None:
    meta = make_event(
        type="webhook.delivery_failed_terminal",
        source="SYSTEM",
        data={"endpointId": "ep_a", "deliveryId": "dlv_1"},
    )
    endpoints = [
        make_endpoint(id="ep_a", event_types=("webhook.*",)),
        make_endpoint(id="ep_b", event_types=("webhook.*",)),
        make_endpoint(id="ep_c", event_types=("webhook.delivery_failed_terminal",)),
        make_endpoint(id="ep_d", event_types=("compliance.*",)),
    ]
    planned = plan_deliveries(meta, endpoints, FakeCatalog(), ids())
    assert [d.endpoint_id for d in planned] == ["ep_b", "ep_c"]
    assert all(d.is_meta for d in planned)


def test_plan_nothing_wanted() -> None:
    assert plan_deliveries(make_event(source="API"), [make_endpoint()], FakeCatalog(), ids()) == []


_PLAN_ENDPOINTS = [
    make_endpoint(id="ep_all"),
    make_endpoint(id="ep_paused", status=EndpointStatus.PAUSED),
    make_endpoint(id="ep_v1", accepted_schema_versions=(1,)),
    make_endpoint(id="ep_p1", partner_ids=("p1",)),
    make_endpoint(id="ep_api", sources=("API",)),
    make_endpoint(id="ep_kyc", event_types=("kyc.*",)),
    make_endpoint(id="ep_meta", event_types=("webhook.*",)),
    make_endpoint(id="ep_other_org", organization_id="org-2"),
]


@given(
    st.lists(
        st.fixed_dictionaries(
            {
                "organization_id": st.sampled_from([ORG, "org-2"]),
                "type": st.sampled_from(
                    [
                        "compliance.status_changed",
                        "compliance.decision_made",
                        "kyc.vies_check_failed",
                        "webhook.endpoint_auto_paused",
                    ]
                ),
                "schema_version": st.sampled_from([1, 2]),
                "partner_uuid": st.sampled_from([None, "p1", "p2"]),
                "source": st.sampled_from(["WEB_APP", "SYSTEM", "API"]),
                "data": st.sampled_from(
                    [{}, {"endpointId": "ep_meta"}, {"endpointId": "ep_all"}, {"x": 1}]
                ),
                "subject": st.sampled_from([None, "s1"]),
                "id": st.sampled_from(["evt_1", "evt_2"]),
            }
        ),
        min_size=2,
        max_size=2,
    )
)
def test_alike_events_plan_alike(fields: list[dict[str, object]]) -> None:
    """The publisher plans a batch's alike events once (`plan_key`): the key must hold every
    field planning reads, so two events with one key always get the same targets."""
    a, b = (make_event(**f) for f in fields)
    if plan_key(a) == plan_key(b):
        assert plan_targets(a, _PLAN_ENDPOINTS, FakeCatalog()) == plan_targets(
            b, _PLAN_ENDPOINTS, FakeCatalog()
        )
    for ev in (a, b):  # and the targets are what plan_deliveries makes, without the ids
        planned = plan_deliveries(ev, _PLAN_ENDPOINTS, FakeCatalog(), ids())
        assert [
            (d.endpoint_id, d.status, d.schema_version, d.skip_reason, d.is_meta) for d in planned
        ] == list(plan_targets(ev, _PLAN_ENDPOINTS, FakeCatalog()))


# ---- catalog-level checks ------------------------------------------------------------------


class FakeFormatCatalog:
    NATIVE = {
        "compliance.status_changed": "novatrade",
        "compliance.decision_made": "novatrade",
        "kyc.vies_check_failed": "novatrade",
        "onboarding.requirementsIDV": "dlt",
        "rfi.reminder": "dlt",
        "webhook.endpoint_auto_paused": None,
        "webhook.delivery_failed_terminal": None,
    }

    def names(self) -> list[str]:
        return list(self.NATIVE)

    def native_format(self, type_name: str) -> str | None:
        return self.NATIVE[type_name]


def test_unmatched_patterns() -> None:
    names = FakeFormatCatalog().names()
    assert unmatched_patterns(["compliance.*", "rfi.reminder"], names) == []
    assert unmatched_patterns(["compliance.*", "nope.*", "kyc.x"], names) == ["nope.*", "kyc.x"]


@pytest.mark.parametrize(
    ("patterns", "requested", "expected"),
    [
        (["compliance.*"], None, "novatrade"),
        (["compliance.*", "webhook.*"], None, "novatrade"),
        (["onboarding.*", "rfi.*"], None, "dlt"),
        (["webhook.*"], None, "standard"),
        (["webhook.*"], "dlt", "dlt"),
        (["compliance.*", "onboarding.*"], "standard", "standard"),
        (["compliance.*"], "standard", "standard"),
        (["compliance.*"], "novatrade", "novatrade"),
    ],
)
def test_choose_format_ok(patterns: list[str], requested: str | None, expected: str) -> None:
    assert choose_format(patterns, FakeFormatCatalog(), requested) == (expected, None)


@pytest.mark.parametrize(
    ("patterns", "requested"),
    [
        (["compliance.*", "onboarding.*"], None),
        (["compliance.*", "onboarding.*"], "dlt"),
        (["compliance.*"], "dlt"),
        (["rfi.reminder"], "novatrade"),
        (["compliance.*"], "xml"),
    ],
)
def test_choose_format_refused(patterns: list[str], requested: str | None) -> None:
    fmt, reason = choose_format(patterns, FakeFormatCatalog(), requested)
    assert fmt is None and isinstance(reason, str) and reason
