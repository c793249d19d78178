"""Typed `data` classes for the catalog event types, and the type -> class registry.

Written by hand, checked against the catalog JSON Schemas by the test suite
(`tests/unit/test_receiver_catalog.py`): every required schema property is a field, every
field is a schema property, and every catalog example parses. Field names are snake_case;
the JSON name is kept in the field's ``wire`` metadata. Keys the class does not declare are
kept in ``extra`` (forward compatible: a newer tidings may add optional properties).

Types without a class here (or a schema version the class does not declare) are not an
error: the event keeps its plain `data` dict.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal, Self

from tidings.receiver import error_codes
from tidings.receiver.errors import WebhookPayloadError

_MISSING: Any = dataclasses.MISSING


def wire(name: str, *, default: Any = _MISSING) -> Any:
    """A dataclass field whose JSON property is `name`."""
    if default is _MISSING:
        return field(metadata={"wire": name})
    return field(default=default, metadata={"wire": name})


def _conforms(value: Any, hint: Any) -> bool:
    if hint is Any:
        return True
    origin = typing.get_origin(hint)
    if origin in (types.UnionType, typing.Union):
        return any(_conforms(value, h) for h in typing.get_args(hint))
    if origin is Literal:
        return value in typing.get_args(hint)
    if hint is type(None):
        return value is None
    if origin is list or hint is list:
        args = typing.get_args(hint)
        return isinstance(value, list) and (
            not args or all(_conforms(item, args[0]) for item in value)
        )
    if origin is dict or hint is dict:
        return isinstance(value, dict)
    if hint is bool:
        return isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if hint is float:
        return isinstance(value, int | float) and not isinstance(value, bool)
    if isinstance(hint, type):
        return isinstance(value, hint)
    return True


@dataclass(frozen=True, kw_only=True)
class EventData:
    """Base of every typed `data` class."""

    TYPES: ClassVar[tuple[str, ...]] = ()
    SCHEMA_VERSIONS: ClassVar[tuple[int, ...]] = (1,)

    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def wire_fields(cls) -> dict[str, str]:
        """JSON property name -> field name (without ``extra``)."""
        return _wire_fields(cls)

    @classmethod
    def required_wire_fields(cls) -> frozenset[str]:
        return frozenset(
            f.metadata.get("wire", f.name)
            for f in dataclasses.fields(cls)
            if f.name != "extra"
            and f.default is dataclasses.MISSING
            and f.default_factory is dataclasses.MISSING
        )

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Self:
        """Build from the event's `data`; raises `WebhookPayloadError` when a required property
        is missing or a value has the wrong JSON type."""
        label = cls.TYPES[0] if cls.TYPES else cls.__name__
        if not isinstance(data, Mapping):
            raise WebhookPayloadError(f"{label}: data must be a JSON object")
        hints = _hints(cls)
        wired = _wire_fields(cls)
        required = cls.required_wire_fields()
        kwargs: dict[str, Any] = {}
        for wire_name, name in wired.items():
            if wire_name not in data:
                if wire_name in required:
                    raise WebhookPayloadError(f"{label}: missing property {wire_name!r}")
                continue
            value = data[wire_name]
            if not _conforms(value, hints[name]):
                raise WebhookPayloadError(f"{label}: property {wire_name!r} has the wrong type")
            kwargs[name] = value
        extra = {key: value for key, value in data.items() if key not in wired}
        return cls(**kwargs, extra=extra)

    def to_dict(self) -> dict[str, Any]:
        """Back to the JSON shape (declared properties, then ``extra``); an optional property
        that was absent comes back as None."""
        out: dict[str, Any] = {}
        for wire_name, name in _wire_fields(type(self)).items():
            out[wire_name] = getattr(self, name)
        out.update(self.extra)
        return out


_WIRE_CACHE: dict[type[EventData], dict[str, str]] = {}
_HINT_CACHE: dict[type[EventData], dict[str, Any]] = {}


def _wire_fields(cls: type[EventData]) -> dict[str, str]:
    cached = _WIRE_CACHE.get(cls)
    if cached is None:
        cached = {
            f.metadata.get("wire", f.name): f.name
            for f in dataclasses.fields(cls)
            if f.name != "extra"
        }
        _WIRE_CACHE[cls] = cached
    return cached


def _hints(cls: type[EventData]) -> dict[str, Any]:
    cached = _HINT_CACHE.get(cls)
    if cached is None:
        cached = typing.get_type_hints(cls)
        _HINT_CACHE[cls] = cached
    return cached


_REGISTRY: dict[tuple[str, int], type[EventData]] = {}
_C = typing.TypeVar("_C", bound=type[EventData])


def register(cls: _C) -> _C:
    """Class decorator: `cls` parses the data of each of its TYPES x SCHEMA_VERSIONS."""
    for type_name in cls.TYPES:
        for version in cls.SCHEMA_VERSIONS:
            _REGISTRY[(type_name, version)] = cls
    return cls


def typed_class(type_name: str, schema_version: int = 1) -> type[EventData] | None:
    return _REGISTRY.get((type_name, schema_version))


def registered_types() -> dict[tuple[str, int], type[EventData]]:
    """A copy of the registry: (type, schemaVersion) -> class."""
    return dict(_REGISTRY)


def parse_data(type_name: str, schema_version: int, data: Any) -> EventData | None:
    """The typed data, or None for a type/version without a class (never an error)."""
    cls = typed_class(type_name, schema_version)
    return None if cls is None else cls.from_dict(data)


# --- novatrade ----------------------------------------------------------------------------


@register
@dataclass(frozen=True, kw_only=True)
class ComplianceStatusChanged(EventData):
    """``compliance.status_changed`` v1: an order's compliance rollup moved."""

    TYPES = ("compliance.status_changed",)

    order_id: str = wire("orderId")
    previous_status: str | None = wire("previousStatus")
    status: str = wire("status")


@register
@dataclass(frozen=True, kw_only=True)
class ComplianceStatusChangedV2(ComplianceStatusChanged):
    """``compliance.status_changed`` v2: v1 plus why, by whom and when."""

    SCHEMA_VERSIONS = (2,)

    reason: str | None = wire("reason")
    changed_by: dict[str, Any] = wire("changedBy")  # noqa: RUF009
    changed_at: str = wire("changedAt")


@register
@dataclass(frozen=True, kw_only=True)
class ComplianceDecisionMade(EventData):
    """``compliance.decision_made``: the final verdict (``VALID_EXPORT``/``VAT_APPLICABLE``)."""

    TYPES = ("compliance.decision_made",)

    order_id: str = wire("orderId")
    decision: str = wire("decision")
    decided_at: str | None = wire("decidedAt", default=None)
    reason: str | None = wire("reason", default=None)


@register
@dataclass(frozen=True, kw_only=True)
class KycViesCheckFailed(EventData):
    """``kyc.vies_check_failed``: a known-good buyer became VIES-invalid (urgent)."""

    TYPES = ("kyc.vies_check_failed",)

    buyer_id: str = wire("buyerId")
    vat_number: str = wire("vatNumber")
    country_code: str = wire("countryCode")
    checked_at: str = wire("checkedAt")
    vies_status: str = wire("viesStatus")
    previous_check_at: str | None = wire("previousCheckAt", default=None)
    message: str | None = wire("message", default=None)


@register
@dataclass(frozen=True, kw_only=True)
class KycVerificationCompleted(EventData):
    """``kyc.verification_completed``: identity verification and AML outcome."""

    TYPES = ("kyc.verification_completed",)

    buyer_id: str = wire("buyerId")
    verification_id: str = wire("verificationId")
    outcome: str = wire("outcome")
    identity_status: str = wire("identityStatus")
    aml: dict[str, Any] = wire("aml")  # noqa: RUF009
    completed_at: str = wire("completedAt")
    provider: str | None = wire("provider", default=None)


@register
@dataclass(frozen=True, kw_only=True)
class ExportFileGenerated(EventData):
    """``export_file.generated``: an export file PDF is ready for download."""

    TYPES = ("export_file.generated",)

    export_file_id: str = wire("exportFileId")
    order_id: str = wire("orderId")
    url: str = wire("url")
    generated_at: str = wire("generatedAt")
    content_type: str | None = wire("contentType", default=None)
    size_bytes: int | None = wire("sizeBytes", default=None)
    expires_at: str | None = wire("expiresAt", default=None)


@register
@dataclass(frozen=True, kw_only=True)
class ProspectSubmitted(EventData):
    """``prospect.submitted``: a new prospect came in through a public self-service link."""

    TYPES = ("prospect.submitted",)

    prospect_id: str = wire("prospectId")
    company_name: str = wire("companyName")
    country_code: str = wire("countryCode")
    contact_email: str = wire("contactEmail")
    submitted_at: str = wire("submittedAt")
    vat_number: str | None = wire("vatNumber", default=None)
    contact_name: str | None = wire("contactName", default=None)
    link_id: str | None = wire("linkId", default=None)


@register
@dataclass(frozen=True, kw_only=True)
class SelfServiceInvitationUsed(EventData):
    """``self_service_invitation.used``: a buyer completed the emailed self-service flow."""

    TYPES = ("self_service_invitation.used",)

    invitation_id: str = wire("invitationId")
    buyer_id: str = wire("buyerId")
    used_at: str = wire("usedAt")
    order_id: str | None = wire("orderId", default=None)
    email: str | None = wire("email", default=None)
    sent_at: str | None = wire("sentAt", default=None)


@register
@dataclass(frozen=True, kw_only=True)
class SelfServiceInvitationExpired(EventData):
    """``self_service_invitation.expired``: the invitation's TTL elapsed unused."""

    TYPES = ("self_service_invitation.expired",)

    invitation_id: str = wire("invitationId")
    sent_at: str = wire("sentAt")
    ttl_seconds: int = wire("ttlSeconds")
    expired_at: str = wire("expiredAt")
    buyer_id: str | None = wire("buyerId", default=None)
    order_id: str | None = wire("orderId", default=None)
    email: str | None = wire("email", default=None)


# --- webhook.* meta events (deliverable in every format) -----------------------------------


@register
@dataclass(frozen=True, kw_only=True)
class WebhookEndpointAutoPaused(EventData):
    """``webhook.endpoint_auto_paused``: one of your endpoints was paused
    (``consecutive_failures``, ``failing_too_long`` or ``gone_410``)."""

    TYPES = ("webhook.endpoint_auto_paused",)

    endpoint_id: str = wire("endpointId")
    url: str = wire("url")
    reason: str = wire("reason")
    failure_streak: int = wire("failureStreak")
    failing_since: str | None = wire("failingSince")
    paused_at: str = wire("pausedAt")


@register
@dataclass(frozen=True, kw_only=True)
class WebhookDeliveryFailedTerminal(EventData):
    """``webhook.delivery_failed_terminal``: one delivery exhausted its retries."""

    TYPES = ("webhook.delivery_failed_terminal",)

    delivery_id: str = wire("deliveryId")
    event_id: str = wire("eventId")
    event_type: str = wire("eventType")
    endpoint_id: str = wire("endpointId")
    attempts: int = wire("attempts")
    last_status_code: int | None = wire("lastStatusCode")
    last_error: str | None = wire("lastError")
    failed_at: str = wire("failedAt")


@register
@dataclass(frozen=True, kw_only=True)
class WebhookSubjectBlocked(EventData):
    """``webhook.subject_blocked``: on an endpoint with ordering ``subject``, one subject's
    deliveries have waited too long behind one that keeps failing."""

    TYPES = ("webhook.subject_blocked",)

    endpoint_id: str = wire("endpointId")
    subject: str = wire("subject")
    blocking_delivery_id: str = wire("blockingDeliveryId")
    blocking_event_id: str = wire("blockingEventId")
    attempts: int = wire("attempts")
    last_status_code: int | None = wire("lastStatusCode")
    last_error: str | None = wire("lastError")
    waiting: int = wire("waiting")
    waiting_since: str = wire("waitingSince")
    blocked_at: str = wire("blockedAt")


# --- dlt -----------------------------------------------------------------------------------


@register
@dataclass(frozen=True, kw_only=True)
class RequirementsQuestionnaire(EventData):
    """The user must complete questionnaires (`reason` names the workflow)."""

    TYPES = (
        "onboarding.requirementsQuestionnaire",
        "posof.requirementsQuestionnaire",
        "derivatives.requirementsQuestionnaire",
        "rfi.requirementsQuestionnaire",
    )

    pending_questionnaire_ids: list[str] = wire("pending_questionnaire_ids")  # noqa: RUF009
    reason: str = wire("reason")


@register
@dataclass(frozen=True, kw_only=True)
class RequirementsIDV(EventData):
    """An identity verification session must be started."""

    TYPES = ("onboarding.requirementsIDV",)

    workflow_id: str = wire("workflow_id")
    branch: str = wire("branch")
    name: str = wire("name")


@register
@dataclass(frozen=True, kw_only=True)
class IDVStatusUpdate(EventData):
    """``completedIDV`` / ``failedIDV`` / ``errorIDV``, with the provider's messages
    (``{"timestamp", "statusCode", "description"}``)."""

    TYPES = ("onboarding.completedIDV", "onboarding.failedIDV", "onboarding.errorIDV")

    status: str = wire("status")
    messages: list[dict[str, Any]] = wire("messages")  # noqa: RUF009


@register
@dataclass(frozen=True, kw_only=True)
class OnboardingEntitlementCompleted(EventData):
    """Onboarding succeeded, with the risk assessment."""

    TYPES = ("onboarding.entitlementCompleted",)

    risk_score: int | float = wire("riskScore")
    pep: bool = wire("pep")
    criminal: bool = wire("criminal")
    sanctioned: bool = wire("sanctioned")
    adverse_media: bool = wire("adverse_media")


@register
@dataclass(frozen=True, kw_only=True)
class EntitlementFailed(EventData):
    """An entitlement failed with an error code (``FL0001``, ``R0003``, ...)."""

    TYPES = ("onboarding.entitlementFailed",)

    code: str = wire("code")
    description: str = wire("description")

    @property
    def meaning(self) -> str | None:
        """The code's meaning from the error-code reference; None for a code it does not list
        (accepted and delivered all the same, flagged by the server as ``unknown_error_code``)."""
        return error_codes.meaning(self.code)


@register
@dataclass(frozen=True, kw_only=True)
class DerivativesEntitlementFailed(EntitlementFailed):
    """Derivatives access denied; the blacklist variant (``retailDerivatives30DaysBlacklist``)
    carries the lock dates."""

    TYPES = ("derivatives.entitlementFailed",)

    lock_date: str | None = wire("lock_date", default=None)
    lock_release_date: str | None = wire("lock_release_date", default=None)


@register
@dataclass(frozen=True, kw_only=True)
class PosofEntitlementFailed(EventData):
    """The proof-of-source-of-funds check failed (code and description are optional)."""

    TYPES = ("posof.entitlementFailed",)

    code: str | None = wire("code", default=None)
    description: str | None = wire("description", default=None)

    @property
    def meaning(self) -> str | None:
        """The code's meaning from the error-code reference (None: no code, or not listed)."""
        return error_codes.meaning(self.code)


@register
@dataclass(frozen=True, kw_only=True)
class EntitlementStarted(EventData):
    TYPES = ("adhoc_edd.entitlementStarted", "rfi.entitlementStarted")

    description: str = wire("description")


@register
@dataclass(frozen=True, kw_only=True)
class EntitlementOutcome(EventData):
    """An EDD/RFI check ended, with the final lock state."""

    TYPES = (
        "adhoc_edd.entitlementCompleted",
        "adhoc_edd.entitlementFailed",
        "rfi.entitlementCompleted",
    )

    outcome: str = wire("outcome")
    funding_locked: bool = wire("funding_locked")
    trading_locked: bool = wire("trading_locked")


@register
@dataclass(frozen=True, kw_only=True)
class PosofEntitlementCompleted(EventData):
    TYPES = ("posof.entitlementCompleted",)

    posof_level: str = wire("posof_level")


@register
@dataclass(frozen=True, kw_only=True)
class DerivativesEntitlementCompleted(EventData):
    """The user is granted access to derivatives (no details)."""

    TYPES = ("derivatives.entitlementCompleted",)


@register
@dataclass(frozen=True, kw_only=True)
class Reminder(EventData):
    """Pending requirements need attention (``rfi_2_week_reminder``, ...)."""

    TYPES = ("rfi.reminder",)

    type: str = wire("type")


@dataclass(frozen=True, kw_only=True)
class AccountLockChanged(EventData):
    """A lock was applied or released; which one is in the class (`LOCK`, `APPLIED`)."""

    LOCK: ClassVar[Literal["trading", "funding"]]
    APPLIED: ClassVar[bool]

    @property
    def lock(self) -> str:
        return self.LOCK

    @property
    def applied(self) -> bool:
        return self.APPLIED


@register
@dataclass(frozen=True, kw_only=True)
class ApplyTradingLock(AccountLockChanged):
    TYPES = ("account_locks.applyTradingLock",)
    LOCK = "trading"
    APPLIED = True


@register
@dataclass(frozen=True, kw_only=True)
class ReleaseTradingLock(AccountLockChanged):
    TYPES = ("account_locks.releaseTradingLock",)
    LOCK = "trading"
    APPLIED = False


@register
@dataclass(frozen=True, kw_only=True)
class ApplyFundingLock(AccountLockChanged):
    TYPES = ("account_locks.applyFundingLock",)
    LOCK = "funding"
    APPLIED = True


@register
@dataclass(frozen=True, kw_only=True)
class ReleaseFundingLock(AccountLockChanged):
    TYPES = ("account_locks.releaseFundingLock",)
    LOCK = "funding"
    APPLIED = False


__all__ = [
    "AccountLockChanged",
    "ApplyFundingLock",
    "ApplyTradingLock",
    "ComplianceDecisionMade",
    "ComplianceStatusChanged",
    "ComplianceStatusChangedV2",
    "DerivativesEntitlementCompleted",
    "DerivativesEntitlementFailed",
    "EntitlementFailed",
    "EntitlementOutcome",
    "EntitlementStarted",
    "EventData",
    "ExportFileGenerated",
    "IDVStatusUpdate",
    "KycVerificationCompleted",
    "KycViesCheckFailed",
    "OnboardingEntitlementCompleted",
    "PosofEntitlementCompleted",
    "PosofEntitlementFailed",
    "ProspectSubmitted",
    "ReleaseFundingLock",
    "ReleaseTradingLock",
    "Reminder",
    "RequirementsIDV",
    "RequirementsQuestionnaire",
    "SelfServiceInvitationExpired",
    "SelfServiceInvitationUsed",
    "WebhookDeliveryFailedTerminal",
    "WebhookEndpointAutoPaused",
    "parse_data",
    "register",
    "registered_types",
    "typed_class",
    "wire",
]
