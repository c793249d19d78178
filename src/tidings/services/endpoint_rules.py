"""Validation of an endpoint's configuration (contract sections 5 and 6), shared by create and
change. Every problem is reported with the JSON path of the failing field; all problems of a
request are collected and answered together as one 422.

Rules
- `url`: https only (http when TIDINGS_ALLOW_HTTP or TIDINGS_ALLOW_PRIVATE_URLS), no userinfo,
  no fragment, no loopback/private/link-local/metadata literal or internal host name, and a
  host name that resolves to such an address is refused too (unless private URLs are allowed).
  A host that does not resolve at registration is accepted: the connect-time guard of the
  sender checks every attempt again.
- `eventTypes`: non-empty; each a valid pattern (no bare `*`) that matches some catalog type.
- `format`: compatible with the subscribed types (`subscriptions.choose_format`).
- `partnerIds`: null (all partners) or a non-empty list of partners authorized for the
  organization.
- `acceptedSchemaVersions`: positive integers, each a version of some subscribed type.
- `headers`: valid, not reserved (`formats.validate_custom_headers`), at most 20.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TypeVar
from urllib.parse import urlsplit

from tidings.api.context import AppContext
from tidings.errors import ValidationFailed
from tidings.formats import MAX_CUSTOM_HEADERS, validate_custom_headers
from tidings.netguard import ForbiddenAddress, Resolver, check_endpoint_url, resolve_allowed
from tidings.subscriptions import (
    choose_format,
    matches_any,
    unmatched_patterns,
    validate_pattern,
)

DNS_TIMEOUT_SECONDS = 3.0
T = TypeVar("T")

# Tests replace this to answer DNS questions without a network; None: the system resolver.
RESOLVER: Resolver | None = None


@dataclass
class Issues:
    items: list[dict[str, str]] = field(default_factory=list)

    def add(self, path: str, message: str) -> None:
        self.items.append({"path": path, "message": message})

    def raise_if_any(self) -> None:
        if self.items:
            first = self.items[0]
            raise ValidationFailed(f"{first['path']}: {first['message']}", details=self.items)


def dedupe(values: Sequence[T]) -> list[T]:
    out: list[T] = []
    for value in values:
        if value not in out:
            out.append(value)
    return out


async def check_url(ctx: AppContext, url: str, issues: Issues) -> None:
    settings = ctx.settings
    problem = check_endpoint_url(
        url, allow_http=settings.http_allowed, allow_private=settings.allow_private_urls
    )
    if problem is not None:
        issues.add("$.url", problem)
        return
    if settings.allow_private_urls:
        return
    parts = urlsplit(url)
    host = parts.hostname or ""
    port = parts.port or (443 if parts.scheme.lower() == "https" else 80)
    try:
        async with asyncio.timeout(DNS_TIMEOUT_SECONDS):
            await resolve_allowed(host, port, allow_private=False, resolver=RESOLVER)
    except ForbiddenAddress as exc:
        issues.add("$.url", exc.reason)
    except (TimeoutError, OSError, socket.gaierror, UnicodeError):
        pass  # unresolvable now; the sender's connect-time guard decides at every attempt


def check_event_types(ctx: AppContext, patterns: Sequence[str], issues: Issues) -> bool:
    """Answers whether every pattern is valid and matches some catalog type."""
    names = ctx.catalog.names()
    ok = True
    for index, pattern in enumerate(patterns):
        path = f"$.eventTypes[{index}]"
        reason = validate_pattern(pattern)
        if reason is not None:
            issues.add(path, reason)
            ok = False
        elif unmatched_patterns([pattern], names):
            issues.add(path, f"{pattern!r} matches no event type of the catalogs")
            ok = False
    return ok


def check_format(
    ctx: AppContext, patterns: Sequence[str], requested: str | None, issues: Issues
) -> str | None:
    fmt, reason = choose_format(patterns, ctx.catalog, requested)
    if reason is not None:
        issues.add("$.format" if requested is not None else "$.eventTypes", reason)
    return fmt


async def check_partners(
    ctx: AppContext, organization_id: str, partner_ids: Sequence[str] | None, issues: Issues
) -> None:
    if partner_ids is None:
        return
    if not partner_ids:
        issues.add("$.partnerIds", "must not be empty; use null to receive events of all partners")
        return
    known = {p.partner_uuid for p in await ctx.store.list_partners(organization_id)}
    for index, partner in enumerate(partner_ids):
        if partner not in known:
            issues.add(
                f"$.partnerIds[{index}]",
                f"{partner!r} is not a partner authorized for this organization",
            )


def check_versions(
    ctx: AppContext, patterns: Sequence[str], versions: Sequence[int] | None, issues: Issues
) -> None:
    if versions is None:
        return
    if not versions:
        issues.add("$.acceptedSchemaVersions", "must not be empty; use null for the newest")
        return
    known: set[int] = set()
    for event_type in ctx.catalog.types():
        if matches_any(patterns, event_type.name):
            known.update(event_type.versions)
    for index, version in enumerate(versions):
        if version not in known:
            issues.add(
                f"$.acceptedSchemaVersions[{index}]",
                f"no subscribed event type has schemaVersion {version}",
            )


def check_headers(headers: dict[str, str], issues: Issues) -> None:
    if len(headers) > MAX_CUSTOM_HEADERS:
        issues.add("$.headers", f"at most {MAX_CUSTOM_HEADERS} custom headers")
        return
    for name, value in headers.items():
        problem = validate_custom_headers({name: value})
        if problem is not None:
            issues.add(f"$.headers.{name}", problem)


__all__ = [
    "RESOLVER",
    "Issues",
    "check_event_types",
    "check_format",
    "check_headers",
    "check_partners",
    "check_url",
    "check_versions",
    "dedupe",
]
