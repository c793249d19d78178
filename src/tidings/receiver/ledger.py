"""What an endpoint is owed, as the API answers it and the SDK reads it (issue 25): one
definition of the ledger's records and their JSON, shared by the server
(`GET /v1/endpoints/{id}/ledger` and `/digest`) and `tidings.receiver.reconcile`. Standard
library only."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

# The widest range of sequence numbers one digest covers (the server refuses more).
MAX_DIGEST_RANGE = 1_000_000


@dataclass(frozen=True, slots=True)
class LedgerEntry:
    """One delivery the endpoint is owed (or was: `status` ``skipped``)."""

    sequence: int
    event_id: str
    type: str
    subject: str | None
    delivery_id: str
    status: str  # pending, held, queued (on their way), succeeded, failed, skipped

    def to_wire(self) -> dict[str, Any]:
        return {
            "sequence": self.sequence,
            "eventId": self.event_id,
            "type": self.type,
            "subject": self.subject,
            "deliveryId": self.delivery_id,
            "status": str(self.status),
        }

    @classmethod
    def from_wire(cls, item: Mapping[str, Any]) -> LedgerEntry:
        return cls(
            sequence=int(item["sequence"]),
            event_id=str(item["eventId"]),
            type=str(item["type"]),
            subject=item.get("subject"),
            delivery_id=str(item["deliveryId"]),
            status=str(item["status"]),
        )


@dataclass(frozen=True, slots=True)
class LedgerPage:
    items: list[LedgerEntry]
    next_after: int | None  # the `after` of the next page; None at the end
    last_sequence: int  # the endpoint's highest number when this was read

    def to_wire(self) -> dict[str, Any]:
        return {
            "items": [e.to_wire() for e in self.items],
            "nextAfter": self.next_after,
            "lastSequence": self.last_sequence,
        }

    @classmethod
    def from_wire(cls, body: Mapping[str, Any]) -> LedgerPage:
        next_after = body.get("nextAfter")
        return cls(
            [LedgerEntry.from_wire(item) for item in body["items"]],
            None if next_after is None else int(next_after),
            int(body["lastSequence"]),
        )


@dataclass(frozen=True, slots=True)
class RangeDigest:
    first: int
    last: int
    count: int  # deliveries numbered first..last that are not skipped
    digest: str  # event_ids_digest of their event ids
    last_sequence: int

    def to_wire(self) -> dict[str, Any]:
        return {
            "from": self.first,
            "to": self.last,
            "count": self.count,
            "digest": self.digest,
            "lastSequence": self.last_sequence,
        }

    @classmethod
    def from_wire(cls, body: Mapping[str, Any]) -> RangeDigest:
        return cls(
            first=int(body["from"]),
            last=int(body["to"]),
            count=int(body["count"]),
            digest=str(body["digest"]),
            last_sequence=int(body["lastSequence"]),
        )


__all__ = ["MAX_DIGEST_RANGE", "LedgerEntry", "LedgerPage", "RangeDigest"]
