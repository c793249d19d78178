"""Who is looking: the session cookie resolved to a console session, and the guards pages
declare as dependencies.

- `Viewer`: any signed-in session (else the browser goes to the sign-in page).
- `Operator` / `Integrator`: a platform session / a session scoped to one organization; the
  other kind gets a 404 page, as the API answers a key of the wrong kind for a foreign id.
- `Posted`: a form posted from this session: its CSRF token must match the session's.
- `Change`: a posted form that changes something: a read-only session is refused too. Every
  POST route of the console takes one of them (signing out only `Posted`: a read-only session
  may always leave), or, before a session exists, `SignInForm`'s double-submit token.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request

from tidings.auth import Actor
from tidings.console.context import console_context
from tidings.console.errors import SignInNeeded
from tidings.errors import Forbidden, NotFoundError
from tidings.models import ConsoleSession, KeyKind
from tidings.services.console_sessions import (
    csrf_matches,
    csrf_token,
    resolve_session,
    session_actor,
)

SESSION_COOKIE = "tidings_session"
SIGN_IN_CSRF_COOKIE = "tidings_sign_in"
CSRF_FIELD = "csrf_token"


@dataclass(frozen=True, slots=True)
class SignedIn:
    session: ConsoleSession
    token: str  # the cookie's value: only ever compared and hashed, never rendered
    actor: Actor  # who the session acts as, for the service operations the pages call

    @property
    def csrf(self) -> str:
        return csrf_token(self.token)

    @property
    def is_operator(self) -> bool:
        return self.session.kind is KeyKind.PLATFORM

    @property
    def organization_id(self) -> str | None:
        return self.session.organization_id


async def current_viewer(request: Request) -> SignedIn:
    token = request.cookies.get(SESSION_COOKIE)
    if not token:
        raise SignInNeeded
    session = await resolve_session(console_context(request).deps, token)
    if session is None:
        raise SignInNeeded
    client = None if request.client is None else request.client.host
    viewer = SignedIn(session, token, session_actor(session, client))
    request.state.viewer = viewer
    return viewer


Viewer = Annotated[SignedIn, Depends(current_viewer)]


async def require_operator(viewer: Viewer) -> SignedIn:
    if not viewer.is_operator:
        raise NotFoundError("There is no such page in an organization's console.")
    return viewer


async def require_integrator(viewer: Viewer) -> str:
    """The organization every read of the page is scoped to."""
    if viewer.organization_id is None:
        raise NotFoundError("This page belongs to an organization's console: open one first.")
    return viewer.organization_id


Operator = Annotated[SignedIn, Depends(require_operator)]
OrgId = Annotated[str, Depends(require_integrator)]


async def require_csrf(request: Request, viewer: Viewer) -> SignedIn:
    form = await request.form()
    presented = form.get(CSRF_FIELD)
    if not csrf_matches(viewer.token, presented if isinstance(presented, str) else None):
        raise Forbidden(
            "This form was not sent from this console session (its CSRF token is missing or "
            "wrong). Reload the page and try again.",
            code="csrf_failed",
        )
    return viewer


Posted = Annotated[SignedIn, Depends(require_csrf)]


async def require_change(viewer: Posted) -> SignedIn:
    if viewer.session.read_only:
        raise Forbidden("This session is read-only: it cannot change anything.", code="read_only")
    return viewer


Change = Annotated[SignedIn, Depends(require_change)]


def sign_in_csrf(request: Request) -> str:
    """The sign-in form's token, before any session: a random value in a Strict cookie that
    the form must echo (double submit), so another site cannot sign a browser in."""
    return request.cookies.get(SIGN_IN_CSRF_COOKIE) or secrets.token_urlsafe(24)


async def require_sign_in_form(request: Request) -> None:
    form = await request.form()
    cookie = request.cookies.get(SIGN_IN_CSRF_COOKIE)
    presented = form.get(CSRF_FIELD)
    if (
        not cookie
        or not isinstance(presented, str)
        or not secrets.compare_digest(cookie, presented)
    ):
        raise Forbidden(
            "This sign-in form was not sent from this console (its CSRF token is missing or "
            "wrong). Reload the page and try again.",
            code="csrf_failed",
        )


SignInForm = Depends(require_sign_in_form)
