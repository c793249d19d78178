"""The claims' endpoint memo (store.rows.EndpointMemo): a row seen again gives the endpoint
built before; one whose health columns moved gives it with the new ones; any other change
builds it anew; and every column endpoint_from_row reads is either part of the memo's key or
one of the three it sets anew (a column added to one and not the other would serve stale
endpoints)."""

from __future__ import annotations

from typing import Any

import orjson

from tidings.store.rows import ENDPOINT_STABLE_COLUMNS, EndpointMemo, endpoint_from_row

HEALTH = {"failure_streak", "failing_since", "last_success_at"}


def row(**overrides: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "id": "ep_1",
        "organization_id": "org_1",
        "url": "https://hooks.example/a",
        "event_types": orjson.dumps(["order.created"]).decode(),
        "format": "novatrade",
        "secrets": orjson.dumps([{"secret": "whsec_a", "created_at": 1.0}]).decode(),
        "status": "active",
        "partner_ids": None,
        "accepted_schema_versions": None,
        "sources": "[]",
        "description": None,
        "headers": "{}",
        "rate_limit_per_second": None,
        "trace_context": False,
        "filter": None,
        "record_filtered": False,
        "ordering": "none",
        "pause_reason": None,
        "failure_streak": 0,
        "failing_since": None,
        "last_success_at": None,
        "created_at": 1.0,
        "updated_at": 1.0,
        "deleted_at": None,
    }
    return base | overrides


class Reads(dict[str, Any]):
    """A row that notes the columns read from it."""

    def __init__(self, values: dict[str, Any]) -> None:
        super().__init__(values)
        self.read: set[str] = set()

    def __getitem__(self, key: str) -> Any:
        self.read.add(key)
        return super().__getitem__(key)


def test_every_column_read_is_in_the_key_or_set_anew() -> None:
    seen = Reads(row())
    endpoint_from_row(seen)
    assert seen.read == set(ENDPOINT_STABLE_COLUMNS) | HEALTH


def test_a_row_seen_again_gives_the_same_endpoint() -> None:
    memo = EndpointMemo()
    first = memo.endpoint(row())
    assert memo.endpoint(row()) is first


def test_health_columns_are_set_anew() -> None:
    memo = EndpointMemo()
    first = memo.endpoint(row())
    later = memo.endpoint(row(failure_streak=3, failing_since=5.0, last_success_at=2.0))
    assert (later.failure_streak, later.failing_since, later.last_success_at) == (3, 5.0, 2.0)
    assert later.secrets == first.secrets and later.url == first.url
    assert memo.endpoint(row(failure_streak=3, failing_since=5.0, last_success_at=2.0)) is later


def test_any_other_change_builds_the_endpoint_anew() -> None:
    memo = EndpointMemo()
    memo.endpoint(row())
    moved = memo.endpoint(row(url="https://hooks.example/b", updated_at=2.0))
    assert moved.url == "https://hooks.example/b"
    paused = memo.endpoint(row(status="paused", pause_reason="manual"))
    assert paused.status == "paused"


def test_the_memo_is_bounded() -> None:
    memo = EndpointMemo(size=3)
    for n in range(10):
        memo.endpoint(row(id=f"ep_{n}"))
    assert len(memo._kept) <= 3
