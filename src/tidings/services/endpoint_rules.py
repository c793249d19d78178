"""The rules of an endpoint's configuration (contract sections 5 and 6), checked by create and
change for every face (API, console, CLI). Every problem is reported with the JSON path of the
failing field; all problems of a request are collected and answered together as one 422.

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
- `filter`: a valid filter (`tidings.filters`), each of whose `attributes.` and `data.` paths
  some subscribed type declares.
- the sizes of every field (`check_sizes`; the API's request models declare the same limits,
  so its schema shows them and its parser answers them first).
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Sequence
from typing import TypeVar
from urllib.parse import urlsplit

from tidings.catalog import Catalog
from tidings.errors import Issues
from tidings.filters import FilterIssue, unknown_paths
from tidings.formats import MAX_CUSTOM_HEADERS, validate_custom_headers
from tidings.models import ORDERINGS, SOURCES, Endpoint, EventFilter
from tidings.netguard import ForbiddenAddress, check_endpoint_url, resolve_allowed
from tidings.services.deps import Deps, UrlRules
from tidings.store.base import Store
from tidings.subscriptions import (
    choose_format,
    matches_any,
    unmatched_patterns,
    validate_pattern,
)

DNS_TIMEOUT_SECONDS = 3.0
MAX_URL_CHARS = 2048
MAX_EVENT_TYPES = 200
MAX_PATTERN_CHARS = 200
MAX_DESCRIPTION_CHARS = 1000
MAX_RATE_PER_SECOND = 100_000
T = TypeVar("T")


def dedupe(values: Sequence[T]) -> list[T]:
    out: list[T] = []
    for value in values:
        if value not in out:
            out.append(value)
    return out


async def check_url(rules: UrlRules, url: str, issues: Issues) -> None:
    """Everything but the scheme first, then where the host resolves, then http://: so that
    a refusal names the one setting that would allow the URL (a host resolving to a private
    address needs TIDINGS_ALLOW_PRIVATE_URLS, which allows http:// as well)."""
    problem = check_endpoint_url(url, allow_http=True, allow_private=rules.allow_private)
    if problem is None and not rules.allow_private:
        problem = await _resolved_problem(rules, url)
    if problem is None:
        problem = check_endpoint_url(
            url, allow_http=rules.allow_http, allow_private=rules.allow_private
        )
    if problem is not None:
        issues.add("$.url", problem)


async def _resolved_problem(rules: UrlRules, url: str) -> str | None:
    parts = urlsplit(url)
    host = parts.hostname or ""
    port = parts.port or (443 if parts.scheme.lower() == "https" else 80)
    try:
        async with asyncio.timeout(DNS_TIMEOUT_SECONDS):
            await resolve_allowed(host, port, allow_private=False, resolver=rules.resolver)
    except ForbiddenAddress as exc:
        return exc.reason
    except (TimeoutError, OSError, socket.gaierror, UnicodeError):
        pass  # unresolvable now; the sender's connect-time guard decides at every attempt
    return None


def check_event_types(catalog: Catalog, patterns: Sequence[str], issues: Issues) -> bool:
    """Answers whether every pattern is valid and matches some catalog type."""
    names = catalog.names()
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
    catalog: Catalog, patterns: Sequence[str], requested: str | None, issues: Issues
) -> str | None:
    fmt, reason = choose_format(patterns, catalog, requested)
    if reason is not None:
        issues.add("$.format" if requested is not None else "$.eventTypes", reason)
    return fmt


async def check_partners(
    store: Store, organization_id: str, partner_ids: Sequence[str] | None, issues: Issues
) -> None:
    if partner_ids is None:
        return
    if not partner_ids:
        issues.add("$.partnerIds", "must not be empty; use null to receive events of all partners")
        return
    known = {p.partner_uuid for p in await store.list_partners(organization_id)}
    for index, partner in enumerate(partner_ids):
        if partner not in known:
            issues.add(
                f"$.partnerIds[{index}]",
                f"{partner!r} is not a partner authorized for this organization",
            )


def check_versions(
    catalog: Catalog, patterns: Sequence[str], versions: Sequence[int] | None, issues: Issues
) -> None:
    if versions is None:
        return
    if not versions:
        issues.add("$.acceptedSchemaVersions", "must not be empty; use null for the newest")
        return
    known: set[int] = set()
    for event_type in catalog.types():
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


def check_sizes(endpoint: Endpoint, issues: Issues) -> None:
    """The limits of each field, and the value sets of sources and versions."""
    if not 0 < len(endpoint.url) <= MAX_URL_CHARS:
        issues.add("$.url", f"must be 1 to {MAX_URL_CHARS} characters")
    if not 0 < len(endpoint.event_types) <= MAX_EVENT_TYPES:
        issues.add("$.eventTypes", f"must hold 1 to {MAX_EVENT_TYPES} patterns")
    for index, pattern in enumerate(endpoint.event_types):
        if len(pattern) > MAX_PATTERN_CHARS:
            issues.add(f"$.eventTypes[{index}]", f"at most {MAX_PATTERN_CHARS} characters")
    if not endpoint.sources:
        issues.add("$.sources", "must not be empty")
    for index, source in enumerate(endpoint.sources):
        if source not in SOURCES:
            issues.add(f"$.sources[{index}]", f"must be one of {', '.join(sorted(SOURCES))}")
    for index, version in enumerate(endpoint.accepted_schema_versions or ()):
        if version < 1:
            issues.add(f"$.acceptedSchemaVersions[{index}]", "must be 1 or more")
    if endpoint.description is not None and len(endpoint.description) > MAX_DESCRIPTION_CHARS:
        issues.add("$.description", f"at most {MAX_DESCRIPTION_CHARS} characters")
    rate = endpoint.rate_limit_per_second
    if rate is not None and not 0 < rate <= MAX_RATE_PER_SECOND:
        issues.add("$.rateLimitPerSecond", f"must be above 0 and at most {MAX_RATE_PER_SECOND}")


def check_filter_paths(
    catalog: Catalog, patterns: Sequence[str], endpoint_filter: EventFilter | None, issues: Issues
) -> None:
    """Each `attributes.` and `data.` path of the filter must be declared by some subscribed
    type (its attributes schema, or the data schema of one of its versions)."""
    if endpoint_filter is None:
        return
    subscribed = [t for t in catalog.types() if matches_any(patterns, t.name)]
    missing = unknown_paths(
        endpoint_filter.paths,
        [t.attributes_schema for t in subscribed],
        [v.schema for t in subscribed for v in t.versions.values()],
    )
    for path in missing:
        issues.add("$.filter", f"no subscribed event type has {path!r}")


async def check_endpoint(
    deps: Deps,
    candidate: Endpoint,
    *,
    requested_format: str | None,
    url_changed: bool,
    filter_problems: Sequence[FilterIssue] = (),
) -> str:
    """Check `candidate` (the endpoint as it would be stored) against every rule; answer its
    wire format, or raise one 422 naming every failing path (`filter_problems`: those of the
    filter's shape, found when it was compiled)."""
    issues = Issues()
    for problem in filter_problems:
        issues.add(problem.path, problem.message)
    check_sizes(candidate, issues)
    if url_changed and 0 < len(candidate.url) <= MAX_URL_CHARS:
        await check_url(deps.urls, candidate.url, issues)
    fmt: str | None = None
    if check_event_types(deps.catalog, candidate.event_types, issues):
        fmt = check_format(deps.catalog, candidate.event_types, requested_format, issues)
        check_versions(
            deps.catalog, candidate.event_types, candidate.accepted_schema_versions, issues
        )
        check_filter_paths(deps.catalog, candidate.event_types, candidate.filter, issues)
    await check_partners(deps.store, candidate.organization_id, candidate.partner_ids, issues)
    check_headers(candidate.headers, issues)
    if candidate.ordering not in ORDERINGS:
        issues.add("$.ordering", f"must be one of {', '.join(sorted(ORDERINGS))}")
    issues.raise_if_any()
    assert fmt is not None
    return fmt
