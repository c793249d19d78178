"""The names both ends of a delivery must agree on (contract section 4), defined once: the wire
formats and the dlt body's envelope fields. They live in the receiver package because the
receiver SDK imports nothing else of tidings (it ships to integrators on the standard library
alone); the sending side (`tidings.formats`, `tidings.subscriptions`, the API's request models)
imports them from here, so sender and receiver cannot drift apart."""

from __future__ import annotations

from typing import Final, Literal, get_args

WireFormat = Literal["novatrade", "dlt", "standard"]
FORMATS: Final[tuple[WireFormat, ...]] = get_args(WireFormat)

# The dlt body's fields taken from the event's attributes (required attributes of dlt types).
DLT_ENVELOPE_FIELDS: Final = (
    "owner_id",
    "owner_type",
    "external_id",
    "entitlement_trigger_id",
    "entitlement_id",
)
