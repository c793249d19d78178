"""tidings receiver SDK: verify, parse and deduplicate what tidings delivers.

Standard library only: ``import tidings.receiver`` needs none of the server's dependencies.
The optional integrations ``tidings.receiver.fastapi`` and ``tidings.receiver.flask`` import
their framework when they are imported themselves.

    from tidings.receiver import Verifier, WebhookVerificationError

    verifier = Verifier("novatrade", ["ntsec_..."])
    try:
        event = verifier.verify_and_parse(raw_body, headers)
    except WebhookVerificationError as exc:
        ...  # answer 400/401 with exc.reason

`reconcile` (with `TidingsClient`, ``urllib.request``) checks against tidings' ledger that the
receiver holds every event its endpoint is owed and hands it what is missing; `OrderingGuard`
says when an event of an ordered endpoint arrived before its previous one.
"""

from __future__ import annotations

from tidings.receiver.dedup import (
    Deduplicator,
    DedupStore,
    MemoryLRUStore,
    SqliteDedupStore,
    once,
)
from tidings.receiver.digest import event_ids_digest
from tidings.receiver.errors import WebhookPayloadError, WebhookVerificationError
from tidings.receiver.events import Verifier, WebhookEvent, parse, verify_and_parse
from tidings.receiver.models import EventData, parse_data, registered_types, typed_class
from tidings.receiver.reconcile import (
    OrderCheck,
    OrderingGuard,
    OutOfOrderError,
    ReconcileReport,
    TidingsApiError,
    TidingsClient,
    reconcile,
)
from tidings.receiver.verify import DEFAULT_TOLERANCE_SECONDS, FORMATS, verify

__all__ = [
    "DEFAULT_TOLERANCE_SECONDS",
    "FORMATS",
    "DedupStore",
    "Deduplicator",
    "EventData",
    "MemoryLRUStore",
    "OrderCheck",
    "OrderingGuard",
    "OutOfOrderError",
    "ReconcileReport",
    "SqliteDedupStore",
    "TidingsApiError",
    "TidingsClient",
    "Verifier",
    "WebhookEvent",
    "WebhookPayloadError",
    "WebhookVerificationError",
    "event_ids_digest",
    "once",
    "parse",
    "parse_data",
    "reconcile",
    "registered_types",
    "typed_class",
    "verify",
    "verify_and_parse",
]
