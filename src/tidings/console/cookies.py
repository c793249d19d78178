"""The console's cookies: every one HttpOnly, scoped to /console, Secure when the request came
over https or TIDINGS_PUBLIC_URL is an https URL (a proxy that ends TLS may forward plain http),
SameSite Lax, or Strict for the sign-in form's token."""

from __future__ import annotations

from typing import Literal

from fastapi import Request, Response

from tidings.console.context import console_context

COOKIE_PATH = "/console"


def set_cookie(
    request: Request,
    response: Response,
    name: str,
    value: str,
    *,
    max_age: int | None = None,
    samesite: Literal["lax", "strict"] = "lax",
) -> None:
    response.set_cookie(
        name,
        value,
        max_age=max_age,
        path=COOKIE_PATH,
        httponly=True,
        samesite=samesite,
        secure=_secure(request),
    )


def _secure(request: Request) -> bool:
    public_url = console_context(request).settings.public_url or ""
    return request.url.scheme == "https" or public_url.startswith("https://")


def clear_cookie(request: Request, response: Response, name: str) -> None:
    response.delete_cookie(name, path=COOKIE_PATH, httponly=True, secure=_secure(request))
