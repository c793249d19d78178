"""The envelope a platform publishes (contract section 2), defined once: every field with its
JSON Schema, and the required ones. Publishing checks envelopes field by field against it (by
hand, for speed: see `tidings.publishing`), the API describes its request body with it, and the
API's event view answers the same fields."""

from __future__ import annotations

from typing import Any, Final

from tidings.models import Source

FIELD_SCHEMAS: Final[dict[str, dict[str, Any]]] = {
    "id": {"type": "string"},
    "type": {"type": "string"},
    "schemaVersion": {"type": "integer"},
    "source": {"enum": [s.value for s in Source]},
    "organizationUuid": {"type": "string"},
    "partnerUuid": {"type": ["string", "null"]},
    "subject": {"type": ["string", "null"]},
    "correlationId": {"type": ["string", "null"]},
    "attributes": {"type": "object"},
    "data": {},
    "createdAt": {"type": "string", "format": "date-time"},
}
FIELDS: Final = frozenset(FIELD_SCHEMAS)
REQUIRED: Final = ("type", "schemaVersion", "source", "organizationUuid", "data")


def json_schema() -> dict[str, Any]:
    """The envelope as one JSON Schema object (for the OpenAPI description)."""
    return {"type": "object", "required": list(REQUIRED), "properties": FIELD_SCHEMAS}
