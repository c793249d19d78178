"""A test event for one endpoint (the console's "send a test event", issue 21).

It is a real event, published through the same `Publisher` (validated by the catalog, stored,
signed and delivered by the worker, retried, in the history), marked as a test in two ways an
integrator's handler can see: `source: SYSTEM` and the envelope attribute `test: true`. It goes
to the chosen endpoint only, and it changes no state (an order's rollup, an owner's locks):
the catalog's example data would otherwise overwrite real state.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from tidings.auth import Actor, require_organization
from tidings.catalog import Catalog
from tidings.errors import ValidationFailed
from tidings.models import Delivery, Event
from tidings.services import deliveries
from tidings.services.deps import Deps
from tidings.services.endpoints import get_endpoint

TEST_SOURCE = "SYSTEM"
TEST_ATTRIBUTE = "test"


@dataclass(frozen=True, slots=True)
class SentTest:
    event: Event
    delivery: Delivery


def example_data(catalog: Catalog, type_name: str) -> dict[str, Any]:
    """The first example of the type's newest version (what the form starts from)."""
    event_type = catalog.get(type_name)
    if event_type is None:
        raise ValidationFailed.at("$.type", f"unknown event type {type_name!r}")
    examples = event_type.versions[event_type.latest_version].examples
    return dict(examples[0]) if examples else {}


def marked_attributes(catalog: Catalog, type_name: str) -> dict[str, Any]:
    """`test: true`, plus a stand-in for each attribute the type requires (the dlt owner and
    entitlement ids: `test_owner_id`, ...; the first allowed value of an enumerated one)."""
    event_type = catalog.get(type_name)
    schema = {} if event_type is None else event_type.attributes_schema or {}
    properties = schema.get("properties", {})
    attributes: dict[str, Any] = {}
    for name in schema.get("required", []):
        allowed = properties.get(name, {}).get("enum")
        attributes[name] = allowed[0] if allowed else f"test_{name}"
    attributes[TEST_ATTRIBUTE] = True
    return attributes


async def send_test_event(
    deps: Deps, actor: Actor, endpoint_id: str, type_name: str, data: Any
) -> SentTest:
    """Publish `data` as a test event of `type_name` (its newest version) to the endpoint.
    A foreign endpoint is a 404; data the catalog refuses, or a type the endpoint does not
    receive from SYSTEM, a 422."""
    organization_id = require_organization(actor)
    endpoint = await get_endpoint(deps, actor, endpoint_id)
    event_type = deps.catalog.get(type_name)
    if event_type is None:
        raise ValidationFailed.at("$.type", f"unknown event type {type_name!r}")
    envelope = {
        "type": type_name,
        "schemaVersion": event_type.latest_version,
        "source": TEST_SOURCE,
        "organizationUuid": organization_id,
        "data": data,
        "attributes": marked_attributes(deps.catalog, type_name),
    }
    result = await deps.publisher.publish_to_one(envelope, endpoint.id)
    if result is None:
        raise ValidationFailed.at(
            "$.type",
            f"this endpoint does not receive {type_name} events sent by {TEST_SOURCE}: "
            "check its event types and sources",
        )
    found = await deliveries.get_event(deps, actor, result.event.id)
    return SentTest(found.event, found.deliveries[0])
