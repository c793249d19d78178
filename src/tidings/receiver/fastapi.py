"""FastAPI integration: a dependency that verifies and parses the delivery.

    from fastapi import Depends, FastAPI
    from tidings.receiver import WebhookEvent
    from tidings.receiver.fastapi import webhook_dependency

    app = FastAPI()
    tidings_event = webhook_dependency("novatrade", ["ntsec_..."])

    @app.post("/webhooks/tidings")
    async def receive(event: WebhookEvent = Depends(tidings_event)) -> dict[str, bool]:
        ...
        return {"ok": True}

A delivery that fails verification is answered 401 (missing, mismatched or expired signature)
or 400 (malformed signature or body) with ``{"detail": {"reason": ..., "message": ...}}``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from fastapi import HTTPException, Request

from tidings.receiver.errors import (
    MISSING_SIGNATURE,
    SIGNATURE_MISMATCH,
    TIMESTAMP_OUTSIDE_TOLERANCE,
    WebhookVerificationError,
)
from tidings.receiver.events import Verifier, WebhookEvent
from tidings.receiver.verify import DEFAULT_TOLERANCE_SECONDS, Secrets

UNAUTHORIZED_REASONS = frozenset(
    {MISSING_SIGNATURE, SIGNATURE_MISMATCH, TIMESTAMP_OUTSIDE_TOLERANCE}
)


def status_for(reason: str) -> int:
    """401 for an unauthenticated delivery, 400 for a malformed one."""
    return 401 if reason in UNAUTHORIZED_REASONS else 400


def webhook_dependency(
    fmt: str,
    secrets: Secrets,
    *,
    tolerance_seconds: float = DEFAULT_TOLERANCE_SECONDS,
) -> Callable[[Request], Awaitable[WebhookEvent]]:
    """An async FastAPI dependency returning the verified `WebhookEvent`.

    The format and secrets are checked now: a misconfiguration raises
    `WebhookVerificationError` (``unknown_format``/``bad_secret``) at startup."""
    verifier = Verifier(fmt, secrets, tolerance_seconds)

    async def tidings_webhook_event(request: Request) -> WebhookEvent:
        body = await request.body()
        try:
            return verifier.verify_and_parse(body, request.headers)
        except WebhookVerificationError as exc:
            raise HTTPException(
                status_code=status_for(exc.reason),
                detail={"reason": exc.reason, "message": exc.message},
            ) from None

    return tidings_webhook_event


__all__ = ["UNAUTHORIZED_REASONS", "status_for", "webhook_dependency"]
