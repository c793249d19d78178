"""The published envelope is defined once (tidings.envelope): the API's event view answers its
fields in its order, and the request schema the API documents is made from it."""

from __future__ import annotations

from tidings import envelope
from tidings.api.views import event_view
from tidings.models import Event


def test_the_event_view_answers_the_envelopes_fields_in_order() -> None:
    """...then `erasedAt` (issue 22 section 4) and `warnings`, what the catalog flags in the
    stored event (both read-only)."""
    event = Event(
        id="evt_1",
        organization_id="org",
        type="compliance.status_changed",
        schema_version=1,
        source="WEB_APP",
        created_at=1_767_225_600.0,
        data={},
    )
    assert list(event_view(event)) == [*envelope.FIELD_SCHEMAS, "erasedAt", "warnings"]


def test_the_schema_requires_what_publishing_requires() -> None:
    schema = envelope.json_schema()
    assert schema["required"] == list(envelope.REQUIRED)
    assert set(schema["properties"]) == envelope.FIELDS
    assert set(envelope.REQUIRED) <= envelope.FIELDS
