"""HTML answers for what goes wrong in the console: the API's errors (404 for a foreign id,
410 for a used portal link, 403, 422 outside a form) as a page with the same status, a request
without a session sent to the sign-in page, and anything unexpected as a 500 page (logged, no
details)."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import RedirectResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from tidings.console.templating import render
from tidings.errors import ApiError

log = logging.getLogger("tidings.console")

SIGN_IN_PATH = "/console/sign-in"

_TITLES = {
    400: "Bad request",
    401: "Please sign in",
    403: "Not allowed",
    404: "Not found",
    405: "Not allowed",
    410: "Link no longer valid",
    413: "Too large",
    422: "Cannot accept this",
    429: "Too many requests",
}


class SignInNeeded(Exception):
    """No valid session: the browser goes to the sign-in page."""


def error_page(request: Request, status: int, message: str, code: str = "error") -> Response:
    return render(
        request,
        "pages/error.html",
        {"title": _TITLES.get(status, "Something went wrong"), "message": message, "code": code},
        status_code=status,
    )


def install_error_pages(app: FastAPI) -> None:
    @app.exception_handler(SignInNeeded)
    async def _sign_in(request: Request, exc: SignInNeeded) -> Response:
        return RedirectResponse(SIGN_IN_PATH, status_code=303)

    @app.exception_handler(ApiError)
    async def _api_error(request: Request, exc: ApiError) -> Response:
        return error_page(request, exc.status_code, exc.message, exc.code)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> Response:
        return error_page(request, 400, "The address has a value this page cannot use.")

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> Response:
        message = "There is no such page." if exc.status_code == 404 else str(exc.detail)
        return error_page(request, exc.status_code, message)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> Response:
        log.exception("unhandled error", extra={"action": "console.error"})
        return error_page(request, 500, "Something went wrong on our side.", "internal_error")
