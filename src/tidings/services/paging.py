"""Pages of a list (contract section 7): `limit` (default 50, at most 500) and an opaque cursor
the store makes. A list operation names its paging inputs `query.limit` / `query.cursor` in
errors, as they arrive in a URL's query string in the API and the console alike."""

from __future__ import annotations

from tidings.errors import ValidationFailed

DEFAULT_LIMIT = 50
MAX_LIMIT = 500


def check_page(limit: int) -> None:
    if not 1 <= limit <= MAX_LIMIT:
        raise ValidationFailed.at("query.limit", f"must be 1 to {MAX_LIMIT}")


def bad_cursor() -> ValidationFailed:
    return ValidationFailed.at("query.cursor", "not a cursor this API made")
