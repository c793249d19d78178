"""The service layer called directly, as the console and the CLI will call it, on both backends:
the rules hold without the API in front (which key an operation needs, tenant scoping, every
endpoint rule with its JSON path, the SSRF guard, replay windows, pages), and a key
authenticates to the actor it was made for."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import replace
from typing import Any

import pytest

from tests.integration.services.conftest import World
from tidings.auth import Actor
from tidings.errors import (
    ApiError,
    ConflictError,
    Forbidden,
    NotFoundError,
    Unauthorized,
    ValidationFailed,
)
from tidings.models import DeliveryStatus, EndpointStatus, KeyKind
from tidings.services import deliveries, endpoints, events, keys, organizations, replay, state
from tidings.services.endpoints import UNSET, EndpointInput, EndpointPatch
from tidings.store.base import DeliveryFilter


async def raises(kind: type[ApiError], call: Awaitable[Any]) -> ApiError:
    with pytest.raises(kind) as caught:
        await call
    return caught.value


def paths(error: ApiError) -> list[str]:
    return [d["path"] for d in error.details]


async def test_a_new_organizations_key_authenticates_to_its_actor(world: World) -> None:
    made = await organizations.create_organization(world.deps, world.platform, "acme")
    actor = await keys.authenticate(world.deps, made.api_key)
    assert actor.kind is KeyKind.ORGANIZATION
    assert actor.organization_id == made.organization.id
    another = await keys.create_key(world.deps, world.platform, actor.organization_id)
    again = await keys.authenticate(world.deps, another.api_key)
    assert again.organization_id == made.organization.id and again.key_id == another.record.id
    await raises(Unauthorized, keys.authenticate(world.deps, "tdk_org_nobody"))


async def test_each_operation_checks_the_kind_of_key(world: World) -> None:
    org = await world.org()
    cases: list[Callable[[Actor], Awaitable[Any]]] = [
        lambda a: organizations.create_organization(world.deps, a, "x"),
        lambda a: organizations.list_partners(world.deps, a, org.organization_id or ""),
        lambda a: events.publish_event(world.deps, a, {}),
        lambda a: events.publish_batch(world.deps, a, {"events": []}),
    ]
    for case in cases:
        error = await raises(Forbidden, case(org))
        assert error.code == "platform_key_required"
    org_cases: list[Callable[[Actor], Awaitable[Any]]] = [
        lambda a: endpoints.create_endpoint(world.deps, a, EndpointInput("https://x", ["kyc.*"])),
        lambda a: endpoints.list_endpoints(world.deps, a, limit=10, cursor=None),
        lambda a: endpoints.read_secrets(world.deps, a, "ep_x"),
        lambda a: replay.replay_delivery(world.deps, a, "dl_x"),
        lambda a: deliveries.get_event(world.deps, a, "evt_x"),
        lambda a: state.get_state(world.deps, a, "compliance", "ord_1"),
    ]
    for case in org_cases:
        error = await raises(Forbidden, case(world.platform))
        assert error.code == "organization_key_required"


async def test_another_organizations_endpoint_is_not_found(world: World) -> None:
    acme, globex = await world.org("acme"), await world.org("globex")
    created = await endpoints.create_endpoint(world.deps, acme, world.endpoint_input())
    foreign: list[Awaitable[Any]] = [
        endpoints.get_endpoint(world.deps, globex, created.id),
        endpoints.read_secrets(world.deps, globex, created.id),
        endpoints.rotate_secret(world.deps, globex, created.id),
        endpoints.pause_endpoint(world.deps, globex, created.id),
        endpoints.resume_endpoint(world.deps, globex, created.id),
        endpoints.update_endpoint(world.deps, globex, created.id, EndpointPatch(url="https://y")),
        endpoints.delete_endpoint(world.deps, globex, created.id),
        replay.replay_endpoint(world.deps, globex, created.id, replay.ReplayWindow(since=0.0)),
    ]
    for call in foreign:
        await raises(NotFoundError, call)
    page = await endpoints.list_endpoints(world.deps, globex, limit=50, cursor=None)
    assert page.items == []
    assert (await endpoints.get_endpoint(world.deps, acme, created.id)).id == created.id


async def test_create_collects_every_rule_with_its_path(world: World) -> None:
    org = await world.org()
    bad = EndpointInput(
        url="https://hooks.example.com/" + "x" * 2100,
        event_types=["*", "nothing.matches", "y" * 201],
        partner_ids=["not-a-partner"],
        sources=["WEB_APP", "EMAIL"],
        description="d" * 1001,
        headers={"X-Tidings-Attempt": "9"},
        rate_limit_per_second=0,
    )
    error = await raises(ValidationFailed, endpoints.create_endpoint(world.deps, org, bad))
    assert paths(error) == [
        "$.url",
        "$.eventTypes[2]",
        "$.sources[1]",
        "$.description",
        "$.rateLimitPerSecond",
        "$.eventTypes[0]",
        "$.eventTypes[1]",
        "$.eventTypes[2]",
        "$.partnerIds[0]",
        "$.headers.X-Tidings-Attempt",
    ]
    assert (await endpoints.list_endpoints(world.deps, org, limit=50, cursor=None)).items == []
    empty = await raises(
        ValidationFailed,
        endpoints.create_endpoint(world.deps, org, EndpointInput("https://x.example", [])),
    )
    assert paths(empty) == ["$.eventTypes"]


async def test_the_ssrf_guard_holds_for_every_face(make_world: Callable[..., World]) -> None:
    answers = {
        "rebind.example.com": ["93.184.216.34", "10.0.0.7"],
        "ok.example.com": ["93.184.216.34"],
        "hooks.example.com": ["93.184.216.34"],  # public: refused for its http:// alone
    }

    async def resolver(host: str, port: int) -> list[str]:
        return answers[host]

    world = make_world(allow_private=False, resolver=resolver)
    org = await world.org()
    for url in ("https://127.0.0.1/x", "http://hooks.example.com/x", "https://rebind.example.com"):
        error = await raises(
            ValidationFailed,
            endpoints.create_endpoint(world.deps, org, world.endpoint_input(url=url)),
        )
        assert paths(error) == ["$.url"], url
    created = await endpoints.create_endpoint(
        world.deps, org, world.endpoint_input(url="https://ok.example.com/x")
    )
    moved = EndpointPatch(url="https://rebind.example.com/x")
    error = await raises(
        ValidationFailed, endpoints.update_endpoint(world.deps, org, created.id, moved)
    )
    assert "10.0.0.7" in error.message


async def test_patch_changes_only_what_is_given(world: World) -> None:
    org = await world.org()
    created = await endpoints.create_endpoint(
        world.deps, org, world.endpoint_input(description="desk", rate_limit_per_second=5)
    )
    update = await endpoints.update_endpoint(
        world.deps, org, created.id, EndpointPatch(description=None, event_types=["kyc.*"])
    )
    changed = update.endpoint
    assert changed.description is None and changed.event_types == ("kyc.*",)
    assert changed.rate_limit_per_second == 5 and changed.url == created.url
    assert update.new_secret is None and changed.secrets == created.secrets
    for name in ("url", "event_types", "sources", "headers"):
        error = await raises(
            ValidationFailed,
            endpoints.update_endpoint(world.deps, org, created.id, EndpointPatch(**{name: None})),
        )
        assert error.details[0]["message"] == "must not be null"
    to_standard = await endpoints.update_endpoint(
        world.deps, org, created.id, EndpointPatch(format="standard", url=UNSET)
    )
    assert to_standard.new_secret is not None and to_standard.new_secret.startswith("whsec_")


async def test_secrets_rotate_with_a_grace_period(world: World) -> None:
    org = await world.org()
    created = await endpoints.create_endpoint(world.deps, org, world.endpoint_input())
    rotated = await endpoints.rotate_secret(world.deps, org, created.id, grace_seconds=60)
    assert rotated.current != created.secrets[0].secret
    assert [s.secret for s in rotated.signing] == [rotated.current, created.secrets[0].secret]
    world.clock.advance(61)
    read = await endpoints.read_secrets(world.deps, org, created.id)
    assert [s.secret for s in read.signing] == [rotated.current]
    error = await raises(
        ValidationFailed,
        endpoints.rotate_secret(world.deps, org, created.id, grace_seconds=-1),
    )
    assert paths(error) == ["$.graceSeconds"]


async def test_pause_holds_and_resume_releases(world: World) -> None:
    org = await world.org()
    created = await endpoints.create_endpoint(world.deps, org, world.endpoint_input())
    paused = await endpoints.pause_endpoint(world.deps, org, created.id)
    assert paused.status is EndpointStatus.PAUSED and paused.pause_reason == "paused by hand"
    await world.publish(org)
    held = DeliveryFilter(endpoint_id=created.id, status=DeliveryStatus.HELD)
    assert (
        len((await deliveries.list_deliveries(world.deps, org, held, limit=10, cursor=None)).items)
        == 1
    )
    resumed = await endpoints.resume_endpoint(world.deps, org, created.id)
    assert resumed.released == 1 and resumed.endpoint.status is EndpointStatus.ACTIVE


async def test_replay_rules(world: World) -> None:
    org = await world.org()
    created = await endpoints.create_endpoint(world.deps, org, world.endpoint_input())
    event_id = await world.publish(org)
    found = await deliveries.get_event(world.deps, org, event_id)
    (delivery,) = found.deliveries
    replayed = await replay.replay_delivery(world.deps, org, delivery.id)
    assert replayed.series == delivery.series + 1
    window = replay.ReplayWindow(since=0.0, status=["pending", "skipped", "lost"])
    error = await raises(
        ValidationFailed, replay.replay_endpoint(world.deps, org, created.id, window)
    )
    assert paths(error) == ["$.status[1]", "$.status[2]"]
    backwards = replay.ReplayWindow(since=10.0, until=5.0)
    error = await raises(
        ValidationFailed, replay.replay_endpoint(world.deps, org, created.id, backwards)
    )
    assert paths(error) == ["$.until"]
    counts = await replay.replay_endpoint(
        world.deps, org, created.id, replay.ReplayWindow(since=0.0, status="pending")
    )
    assert counts.replayed == 1
    await endpoints.pause_endpoint(world.deps, org, created.id)
    paused = await raises(ConflictError, replay.replay_delivery(world.deps, org, delivery.id))
    assert paused.code == "endpoint_paused"


async def test_pages_and_feeds_name_their_query_inputs(world: World) -> None:
    org = await world.org()
    error = await raises(
        ValidationFailed,
        endpoints.list_endpoints(world.deps, org, limit=501, cursor=None),
    )
    assert paths(error) == ["query.limit"]
    error = await raises(
        ValidationFailed,
        deliveries.list_deliveries(world.deps, org, DeliveryFilter(), limit=5, cursor="zz"),
    )
    assert paths(error) == ["query.cursor"]
    with pytest.raises(ValidationFailed) as caught:
        events.feed(org, after=None, types="kyc.*,*", limit=10)
    assert paths(caught.value) == ["query.types"]
    first = events.feed(org, after=None, types="kyc.*, compliance.*", limit=10)
    before = await events.feed_version(world.deps, first)
    event_id = await world.publish(org)
    after = await events.feed_version(world.deps, first)
    assert before != after
    assert [e.id for e in (await events.feed_page(world.deps, first)).items] == [event_id]


async def test_state_reads_are_scoped(world: World) -> None:
    acme, globex = await world.org("acme"), await world.org("globex")
    await world.publish(
        acme, data={"orderId": "ord_9", "previousStatus": "INCOMPLETE", "status": "VALID"}
    )
    rollup = await state.get_state(world.deps, acme, "compliance", "ord_9")
    assert rollup.state["status"] == "VALID"
    await raises(NotFoundError, state.get_state(world.deps, globex, "compliance", "ord_9"))


async def test_batch_shape_is_the_services(world: World) -> None:
    for body, path in (
        ([], "$.events"),
        ({"events": []}, "$.events"),
        ({"events": [{}], "more": 1}, "$.more"),
    ):
        error = await raises(
            ValidationFailed, events.publish_batch(world.deps, world.platform, body)
        )
        assert paths(error) == [path]


def test_actor_has_room_for_a_session_and_an_address() -> None:
    actor = Actor(key_id="key_1", kind=KeyKind.ORGANIZATION, organization_id="org")
    seen = replace(actor, session_id="ses_1", client_address="203.0.113.9")
    assert (seen.session_id, seen.client_address) == ("ses_1", "203.0.113.9")
