"""Flask integration: ``@verified_webhook(fmt, secrets)`` verifies ``request.get_data()`` and
passes the `WebhookEvent` to the view as its first argument.

    from flask import Flask
    from tidings.receiver.flask import verified_webhook

    app = Flask(__name__)

    @app.post("/webhooks/tidings")
    @verified_webhook("dlt", ["dltsec_..."])
    def receive(event):
        ...
        return {"ok": True}

A delivery that fails verification is answered 400 with
``{"error": {"reason": ..., "message": ...}}`` and the view is not called.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from flask import jsonify, request

from tidings.receiver.errors import WebhookVerificationError
from tidings.receiver.events import Verifier
from tidings.receiver.verify import DEFAULT_TOLERANCE_SECONDS, Secrets


def verified_webhook(
    fmt: str,
    secrets: Secrets,
    *,
    tolerance_seconds: float = DEFAULT_TOLERANCE_SECONDS,
    status_code: int = 400,
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Decorator for a Flask view receiving tidings deliveries (format and secrets are checked
    when decorating: a misconfiguration fails at import time)."""
    verifier = Verifier(fmt, secrets, tolerance_seconds)

    def decorate(view: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(view)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            body = request.get_data(cache=True)
            try:
                event = verifier.verify_and_parse(body, request.headers)
            except WebhookVerificationError as exc:
                response = jsonify({"error": {"reason": exc.reason, "message": exc.message}})
                return response, status_code
            return view(event, *args, **kwargs)

        return wrapper

    return decorate


__all__ = ["verified_webhook"]
