"""Signing in with a key, signing out, and opening a portal link.

The key is posted in a form (never in a URL), turned into a session by the session service and
forgotten: the browser keeps only the opaque session cookie. A portal link sets the cookie and
redirects into the console, so its token leaves the address bar at once."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse, Response

from tidings.console.context import console_context
from tidings.console.cookies import clear_cookie, set_cookie
from tidings.console.templating import flash, render
from tidings.console.viewer import (
    SESSION_COOKIE,
    SIGN_IN_CSRF_COOKIE,
    Posted,
    SignInForm,
    sign_in_csrf,
)
from tidings.errors import Forbidden, Unauthorized
from tidings.services import console_sessions
from tidings.services.console_sessions import OpenedSession

router = APIRouter()

HOME = "/console/"


async def _into_console(request: Request, opened: OpenedSession, flash_code: str) -> Response:
    """The new session's cookie replaces the browser's; the session it held (an operator who
    opens an organization's portal link, say) ends rather than lingering until it expires."""
    replaced = request.cookies.get(SESSION_COOKIE)
    if replaced:
        await console_sessions.sign_out(console_context(request).deps, replaced)
    response = RedirectResponse(HOME, status_code=303)
    max_age = int(opened.session.expires_at - opened.session.created_at)
    set_cookie(request, response, SESSION_COOKIE, opened.token, max_age=max_age)
    flash(request, response, flash_code)
    return response


def _sign_in_page(request: Request, error: str | None = None, status: int = 200) -> Response:
    token = sign_in_csrf(request)
    response = render(
        request,
        "pages/sign_in.html",
        {"sign_in_csrf": token, "error": error, "title": "Sign in"},
        status_code=status,
    )
    set_cookie(request, response, SIGN_IN_CSRF_COOKIE, token, samesite="strict")
    return response


@router.get("/sign-in", include_in_schema=False)
async def sign_in_form(request: Request) -> Response:
    return _sign_in_page(request)


@router.post("/sign-in", include_in_schema=False, dependencies=[SignInForm])
async def sign_in(request: Request, api_key: Annotated[str, Form(max_length=200)] = "") -> Response:
    try:
        opened = await console_sessions.sign_in(console_context(request).deps, api_key)
    except Unauthorized:
        return _sign_in_page(
            request, "This key is not known here (or was revoked). Check it and try again.", 401
        )
    except Forbidden as exc:
        return _sign_in_page(request, exc.message, 403)
    return await _into_console(request, opened, "signed_in")


@router.post("/sign-out", include_in_schema=False)
async def sign_out(request: Request, viewer: Posted) -> Response:
    await console_sessions.sign_out(console_context(request).deps, viewer.token)
    response = RedirectResponse("/console/sign-in", status_code=303)
    clear_cookie(request, response, SESSION_COOKIE)
    flash(request, response, "signed_out")
    return response


@router.get("/portal/{token}", include_in_schema=False)
async def open_portal_link(request: Request, token: str) -> Response:
    opened = await console_sessions.open_portal_link(console_context(request).deps, token)
    return await _into_console(request, opened, "portal_opened")


__all__ = ["SESSION_COOKIE", "router"]
