"""Publishing: one envelope (or a batch) in, validated against the catalog, stored with one
delivery per matching endpoint and its projection updates, in one store transaction.

The API's `POST /v1/events` and `/v1/events/batch` and the worker's meta events all go through
`Publisher`. Errors are `tidings.errors.ApiError`s (422 naming the failing JSON path, 409 for an
id reused with a different envelope); nothing is stored for an invalid envelope.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from tidings import tracing
from tidings.catalog import Catalog
from tidings.clock import Clock, parse_rfc3339, system_clock
from tidings.envelope import FIELDS as ENVELOPE_FIELDS
from tidings.errors import ApiError, ConflictError, Issue, ValidationFailed, issue
from tidings.group_commit import GroupCommit
from tidings.ids import new_id
from tidings.models import SOURCES, Endpoint, Event
from tidings.projections import projection_updates
from tidings.store.base import (
    PublishItem,
    PublishResult,
    Store,
    Subscribers,
    SubscribersChanged,
)
from tidings.subscriptions import (
    PlanKey,
    Target,
    deliveries_for,
    filtered_targets,
    filtering_endpoints,
    plan_key,
    plan_targets,
)

MAX_ID_CHARS = 200
MAX_IDEMPOTENCY_KEY_CHARS = 255
# Endpoints changing between planning and storing more often than this in a row (by any
# process) is a fault: the last SubscribersChanged goes up as a store error.
PLAN_TRIES = 5
# Single publishes stored together (see tidings.group_commit): at most this many store calls at a
# time per process, each of at most MAX_GROUP events. Two calls in flight keep both the process
# and a PostgreSQL backend busy while the next group gathers.
SINGLES_IN_FLIGHT = 2
MAX_GROUP = 100


class EventPublisher(Protocol):
    """What the API, the services and the worker's meta events need of a publisher:
    `Publisher`, or a test's stand-in."""

    async def publish(
        self, envelope: Any, *, idempotency_key: str | None = None
    ) -> PublishResult: ...

    async def publish_batch(self, envelopes: Sequence[Any]) -> list[PublishResult | ApiError]: ...

    async def publish_to_one(self, envelope: Any, endpoint_id: str) -> PublishResult | None: ...


@dataclass(frozen=True, slots=True)
class _Candidate:
    """An envelope that passed validation, with the event it becomes."""

    event: Event
    explicit_created_at: bool


def _optional_string(envelope: Mapping[str, Any], name: str, limit: int) -> list[Issue]:
    value = envelope.get(name)
    if value is None:
        return []
    if not isinstance(value, str) or not value or len(value) > limit:
        return [issue(f"$.{name}", f"must be a non-empty string of at most {limit} characters")]
    return []


def _shape_issues(envelope: Mapping[str, Any]) -> list[Issue]:
    issues = [
        issue(f"$.{k}", "unknown envelope field") for k in envelope if k not in ENVELOPE_FIELDS
    ]
    for name in ("type", "organizationUuid"):
        if not isinstance(envelope.get(name), str) or not envelope.get(name):
            issues.append(issue(f"$.{name}", "is required (a non-empty string)"))
    version = envelope.get("schemaVersion")
    if not isinstance(version, int) or isinstance(version, bool):
        issues.append(issue("$.schemaVersion", "is required (an integer)"))
    if envelope.get("source") not in SOURCES:
        issues.append(issue("$.source", f"must be one of {', '.join(sorted(SOURCES))}"))
    if "data" not in envelope:
        issues.append(issue("$.data", "is required"))
    issues += _optional_string(envelope, "id", MAX_ID_CHARS)
    issues += _optional_string(envelope, "partnerUuid", MAX_ID_CHARS)
    issues += _optional_string(envelope, "subject", MAX_ID_CHARS)
    issues += _optional_string(envelope, "correlationId", MAX_ID_CHARS)
    if envelope.get("createdAt") is not None:
        created = envelope["createdAt"]
        try:
            if not isinstance(created, str):
                raise ValueError
            parse_rfc3339(created)
        except ValueError:
            issues.append(issue("$.createdAt", "must be an RFC 3339 date-time"))
    return issues


def _same_envelope(stored: Event, new: _Candidate) -> bool:
    event = new.event
    same = (
        stored.type == event.type
        and stored.schema_version == event.schema_version
        and stored.source == event.source
        and stored.partner_uuid == event.partner_uuid
        and stored.subject == event.subject
        and stored.correlation_id == event.correlation_id
        and (stored.attributes or {}) == (event.attributes or {})
        and stored.data == event.data
    )
    if same and new.explicit_created_at:
        same = abs(stored.created_at - event.created_at) < 0.001
    return same


def _candidate_keys(single: tuple[_Candidate, float]) -> list[tuple[str, str, str]]:
    """What two events of one store call must not share: their id, their idempotency key."""
    event = single[0].event
    keys = [("id", event.organization_id, event.id)]
    if event.idempotency_key is not None:
        keys.append(("key", event.organization_id, event.idempotency_key))
    return keys


class Publisher:
    def __init__(
        self,
        store: Store,
        catalog: Catalog,
        *,
        clock: Clock = system_clock,
        id_factory: Callable[[str], str] = new_id,
    ) -> None:
        self.store = store
        self.catalog = catalog
        self.clock = clock
        self.new_id = id_factory
        # Organizations and partners are never deleted, so a positive answer can be kept.
        self._known_orgs: set[str] = set()
        self._known_partners: set[tuple[str, str]] = set()
        self._singles: GroupCommit[tuple[_Candidate, float], PublishResult] = GroupCommit(
            self._store_singles,
            keys=_candidate_keys,
            max_group=MAX_GROUP,
            max_in_flight=SINGLES_IN_FLIGHT,
        )

    # ---- validation --------------------------------------------------------------------------

    async def _org_issues(self, organization_id: str) -> list[Issue]:
        if organization_id in self._known_orgs:
            return []
        if await self.store.get_organization(organization_id) is None:
            return [issue("$.organizationUuid", f"no organization {organization_id}")]
        self._known_orgs.add(organization_id)
        return []

    async def _partner_issues(self, organization_id: str, partner_uuid: str | None) -> list[Issue]:
        if partner_uuid is None or (organization_id, partner_uuid) in self._known_partners:
            return []
        partners = await self.store.list_partners(organization_id)
        for partner in partners:
            self._known_partners.add((organization_id, partner.partner_uuid))
        if (organization_id, partner_uuid) in self._known_partners:
            return []
        return [
            issue(
                "$.partnerUuid",
                f"partner {partner_uuid} is not authorized for organization {organization_id}",
            )
        ]

    async def validate(
        self, envelope: Any, *, idempotency_key: str | None = None, now: float | None = None
    ) -> _Candidate:
        """The event an envelope becomes, or ValidationFailed naming every failing path."""
        if not isinstance(envelope, dict):
            raise ValidationFailed.of([issue("$", "an event envelope must be a JSON object")])
        if idempotency_key is not None and not (
            0 < len(idempotency_key) <= MAX_IDEMPOTENCY_KEY_CHARS
        ):
            raise ValidationFailed.of([issue("Idempotency-Key", "must be 1 to 255 characters")])
        issues = _shape_issues(envelope)
        if issues:
            raise ValidationFailed.of(issues)
        type_name: str = envelope["type"]
        version: int = envelope["schemaVersion"]
        catalog_issues = self.catalog.validate_data(type_name, version, envelope["data"])
        if not catalog_issues:
            catalog_issues = self.catalog.validate_attributes(type_name, envelope.get("attributes"))
        if catalog_issues:
            raise ValidationFailed.of([i.to_dict() for i in catalog_issues])
        org_id: str = envelope["organizationUuid"]
        issues = await self._org_issues(org_id)
        if not issues:
            issues = await self._partner_issues(org_id, envelope.get("partnerUuid"))
        if issues:
            raise ValidationFailed.of(issues)
        created = envelope.get("createdAt")
        now = self.clock() if now is None else now
        event = Event(
            id=envelope.get("id") or self.new_id("evt"),
            organization_id=org_id,
            type=type_name,
            schema_version=version,
            source=envelope["source"],
            created_at=parse_rfc3339(created) if created else now,
            data=envelope["data"],
            partner_uuid=envelope.get("partnerUuid"),
            subject=envelope.get("subject"),
            correlation_id=envelope.get("correlationId"),
            attributes=envelope.get("attributes") or {},
            idempotency_key=idempotency_key,
        )
        return _Candidate(event=event, explicit_created_at=bool(created))

    # ---- publishing --------------------------------------------------------------------------

    async def _items(self, candidates: Sequence[_Candidate]) -> list[PublishItem]:
        """Plan deliveries and projections from each organization's subscribed endpoints. Alike
        events (`plan_key`: a batch of one type, say) are planned once; each gets its own ids,
        and the endpoints' filters (which read more of the event) are applied per event."""
        subscribers: dict[str, Subscribers] = {}
        filtering: dict[str, dict[str, Endpoint]] = {}
        targets: dict[PlanKey, tuple[Target, ...]] = {}
        items = []
        for candidate in candidates:
            event = candidate.event
            org = event.organization_id
            if org not in subscribers:
                subscribers[org] = await self.store.subscribed_endpoints(org)
            planned = subscribers[org]
            if org not in filtering:
                filtering[org] = filtering_endpoints(planned.endpoints)
            key = plan_key(event)
            if key not in targets:
                targets[key] = plan_targets(event, planned.endpoints, self.catalog)
            planned_targets = filtered_targets(event, targets[key], filtering[org])
            deliveries = deliveries_for(planned_targets, self.new_id)
            items.append(PublishItem(event, deliveries, projection_updates(event), planned.version))
        return items

    async def _store(self, candidates: Sequence[_Candidate], now: float) -> list[PublishResult]:
        """Plan and store; planned again when the store finds an organization's endpoints
        changed since they were read (an endpoint created, paused or deleted meanwhile, by any
        process)."""
        for _ in range(PLAN_TRIES - 1):
            try:
                return await self.store.publish(await self._items(candidates), now=now)
            except SubscribersChanged:
                continue
        return await self.store.publish(await self._items(candidates), now=now)

    async def _store_singles(self, singles: list[tuple[_Candidate, float]]) -> list[PublishResult]:
        """Single publishes gathered by the group commit, in one store call; the group's time is
        its latest request's (one request alone keeps its own)."""
        return await self._store([c for c, _ in singles], max(now for _, now in singles))

    def _check_repeat(self, result: PublishResult, candidate: _Candidate) -> PublishResult:
        if not result.created and result.event.erased_at is not None:
            raise ConflictError(
                f"event {result.event.id!r} was erased: its id cannot be published again",
                details={"existingEventId": result.event.id},
                code="event_erased",
            )
        if not result.created and not _same_envelope(result.event, candidate):
            what = (
                f"Idempotency-Key {candidate.event.idempotency_key!r}"
                if candidate.event.idempotency_key and result.event.id != candidate.event.id
                else f"event id {result.event.id!r}"
            )
            raise ConflictError(
                f"{what} was already used for a different event",
                details={"existingEventId": result.event.id},
                code="idempotency_conflict",
            )
        return result

    async def publish(self, envelope: Any, *, idempotency_key: str | None = None) -> PublishResult:
        if tracing.enabled:
            with tracing.publish_span(batch=False) as span:
                result = await self._publish(envelope, idempotency_key)
                tracing.published(span, [result.event])
                return result
        return await self._publish(envelope, idempotency_key)

    async def _publish(self, envelope: Any, idempotency_key: str | None) -> PublishResult:
        now = self.clock()
        candidate = await self.validate(envelope, idempotency_key=idempotency_key, now=now)
        result = await self._singles.submit((candidate, now))
        return self._check_repeat(result, candidate)

    async def publish_to_one(self, envelope: Any, endpoint_id: str) -> PublishResult | None:
        """A test event (the console's "send a test event"): validated and stored like any
        event, but delivered to `endpoint_id` alone and changing no state (no projection
        update). None, with nothing stored, when that endpoint would not receive it (not
        subscribed to the type, or not to the envelope's source or partner)."""
        now = self.clock()
        event = (await self.validate(envelope, now=now)).event
        for tries_left in range(PLAN_TRIES - 1, -1, -1):
            planned = await self.store.subscribed_endpoints(event.organization_id)
            endpoint = [e for e in planned.endpoints if e.id == endpoint_id]
            targets = plan_targets(event, endpoint, self.catalog)
            if not targets:
                return None
            item = PublishItem(event, deliveries_for(targets, self.new_id), (), planned.version)
            try:
                return (await self.store.publish([item], now=now))[0]
            except SubscribersChanged:
                if not tries_left:
                    raise
        raise AssertionError("unreachable")  # pragma: no cover

    async def publish_batch(self, envelopes: Sequence[Any]) -> list[PublishResult | ApiError]:
        """Each envelope on its own (an invalid one does not stop the others); the valid ones
        are stored in one transaction. Answers, in order, a result or the error of each."""
        if tracing.enabled:
            with tracing.publish_span(batch=True) as span:
                answers = await self._publish_batch(envelopes)
                tracing.published(span, [a.event for a in answers if isinstance(a, PublishResult)])
                return answers
        return await self._publish_batch(envelopes)

    async def _publish_batch(self, envelopes: Sequence[Any]) -> list[PublishResult | ApiError]:
        now = self.clock()
        answers: list[PublishResult | ApiError | None] = []
        candidates: list[_Candidate] = []
        positions: list[int] = []
        seen_ids: set[tuple[str, str]] = set()
        for envelope in envelopes:
            try:
                candidate = await self.validate(envelope, now=now)
            except ApiError as exc:
                answers.append(exc)
                continue
            key = (candidate.event.organization_id, candidate.event.id)
            if key in seen_ids:
                answers.append(
                    ConflictError(
                        f"event id {candidate.event.id!r} appears twice in this batch",
                        code="duplicate_in_batch",
                    )
                )
                continue
            seen_ids.add(key)
            positions.append(len(answers))
            answers.append(None)
            candidates.append(candidate)
        if candidates:
            results = await self._store(candidates, now)
            for position, candidate, result in zip(positions, candidates, results, strict=True):
                try:
                    answers[position] = self._check_repeat(result, candidate)
                except ApiError as exc:
                    answers[position] = exc
        return [a for a in answers if a is not None]
