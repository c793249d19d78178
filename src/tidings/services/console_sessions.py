"""Console sessions and portal links: signing in with a key, minting a single-use portal link,
opening it, resolving a session cookie to the actor it stands for, signing out, and a session's
CSRF token.

The API mints portal links (`POST /v1/organizations/{uuid}/portal-sessions`); the console signs
in, opens links and mints them for the operator. Tokens are 256 random bits handed to the
browser once (a cookie, a link); the store keeps only their SHA-256.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass

from tidings.auth import Actor, hash_key, require_platform
from tidings.clock import to_rfc3339
from tidings.errors import Forbidden, Gone, NotFoundError, ValidationFailed
from tidings.ids import new_id
from tidings.models import ConsoleSession, KeyKind, KeyScope, PortalLink
from tidings.services import audit
from tidings.services.deps import Deps
from tidings.services.keys import authenticate
from tidings.services.organizations import get_organization

CONSOLE_SESSION_SECONDS = 8 * 3600.0
PORTAL_LINK_SECONDS = 15 * 60.0
PORTAL_LINK_MIN_SECONDS = 1.0
PORTAL_LINK_MAX_SECONDS = 24 * 3600.0
# Expired rows are kept this long, so a late portal link still reads "expired", not "unknown".
EXPIRED_KEPT_SECONDS = 24 * 3600.0
PORTAL_LINK_PATH = "/console/portal/"
_CSRF_CONTEXT = b"tidings console csrf v1"


@dataclass(frozen=True, slots=True)
class OpenedSession:
    """A new session and its token, which goes to the browser (a cookie) and nowhere else."""

    token: str
    session: ConsoleSession


@dataclass(frozen=True, slots=True)
class MintedLink:
    """A new portal link and its token, which goes into the link's URL once."""

    token: str
    link: PortalLink


def portal_link_url(token: str, *, public_url: str | None, request_origin: str) -> str:
    """The link a person opens: under TIDINGS_PUBLIC_URL when set (behind a proxy), else under
    the scheme and host the minting request came to."""
    return (public_url or request_origin).rstrip("/") + PORTAL_LINK_PATH + token


def csrf_token(session_token: str) -> str:
    """The session's CSRF token: an HMAC of the session token, so it needs no storage, differs
    from the stored hash, and tells nothing about the cookie it was derived from."""
    return hmac.new(session_token.encode(), _CSRF_CONTEXT, hashlib.sha256).hexdigest()


def csrf_matches(session_token: str, presented: str | None) -> bool:
    return presented is not None and hmac.compare_digest(csrf_token(session_token), presented)


def session_actor(session: ConsoleSession, client_address: str | None = None) -> Actor:
    """Who a session acts as: the kind and organization it stands for, the key behind it (the
    key signed in with, or the platform key that minted its portal link), and the session."""
    return Actor(
        key_id=session.key_id,
        kind=session.kind,
        organization_id=session.organization_id,
        session_id=session.id,
        client_address=client_address,
    )


async def sign_in(deps: Deps, presented_key: str) -> OpenedSession:
    """A session with the powers of the key (401 for a key tidings does not know, revoked or
    expired): a `read` key's session is read-only; a `publish` key cannot sign in (403), the
    console being no place to publish from."""
    actor = await authenticate(deps, presented_key.strip())
    if actor.effective_scope is KeyScope.PUBLISH:
        raise Forbidden(
            "a publish key cannot sign in to the console: use an admin key",
            code="insufficient_scope",
        )
    return await _open(
        deps,
        key_id=actor.key_id,
        kind=actor.kind,
        organization_id=actor.organization_id,
        read_only=actor.effective_scope is KeyScope.READ,
    )


async def mint_portal_link(
    deps: Deps,
    actor: Actor,
    organization_id: str,
    *,
    ttl_seconds: float | None = None,
    read_only: bool = False,
) -> MintedLink:
    """A single-use link into the organization's console (platform keys; 404 for an unknown
    organization; 422 naming `$.ttlSeconds` out of 1 s .. 24 h)."""
    require_platform(actor)
    ttl = PORTAL_LINK_SECONDS if ttl_seconds is None else ttl_seconds
    if not PORTAL_LINK_MIN_SECONDS <= ttl <= PORTAL_LINK_MAX_SECONDS:
        raise ValidationFailed.at(
            "$.ttlSeconds",
            f"must be between {PORTAL_LINK_MIN_SECONDS:g} and {PORTAL_LINK_MAX_SECONDS:g}",
        )
    await get_organization(deps, actor, organization_id)
    now = deps.clock()
    token = secrets.token_urlsafe(32)
    link = PortalLink(
        id=new_id("pl", now),
        organization_id=organization_id,
        key_id=actor.key_id,
        read_only=read_only,
        created_at=now,
        expires_at=now + ttl,
    )
    changes = {"readOnly": read_only, "expiresAt": to_rfc3339(link.expires_at)}
    entry = audit.entry(
        deps, actor, "portal_link.mint", link.id, changes, organization_id=organization_id, now=now
    )
    await deps.store.create_portal_link(link, hash_key(token), entry)
    return MintedLink(token, link)


async def open_portal_link(deps: Deps, token: str) -> OpenedSession:
    """Use the link once: a session scoped to its organization (read-only if the link was).
    410 once used or expired, 404 for a token no link has."""
    use = await deps.store.use_portal_link(hash_key(token), deps.clock())
    if use.link is None:
        raise NotFoundError("There is no such portal link.")
    if not use.opened:
        if use.link.used_at is not None:
            raise Gone(
                "This portal link was used already: a link opens once. Ask for a new one.",
                code="portal_link_used",
            )
        raise Gone("This portal link has expired. Ask for a new one.", code="portal_link_expired")
    return await _open(
        deps,
        key_id=use.link.key_id,
        kind=KeyKind.ORGANIZATION,
        organization_id=use.link.organization_id,
        read_only=use.link.read_only,
    )


async def resolve_session(deps: Deps, token: str) -> ConsoleSession | None:
    """The live session a cookie holds, or None (unknown, signed out or expired)."""
    return await deps.store.find_console_session(hash_key(token), deps.clock())


async def sign_out(deps: Deps, token: str) -> None:
    """Ends the session for every process at once (the row is gone)."""
    await deps.store.delete_console_session(hash_key(token))


async def _open(
    deps: Deps, *, key_id: str, kind: KeyKind, organization_id: str | None, read_only: bool
) -> OpenedSession:
    now = deps.clock()
    # Sign-ins are rare: the right moment to drop what expired a while ago.
    await deps.store.purge_console_sessions(now - EXPIRED_KEPT_SECONDS)
    token = secrets.token_urlsafe(32)
    session = ConsoleSession(
        id=new_id("cs", now),
        key_id=key_id,
        kind=kind,
        organization_id=organization_id,
        read_only=read_only,
        created_at=now,
        expires_at=now + CONSOLE_SESSION_SECONDS,
    )
    await deps.store.create_console_session(session, hash_key(token))
    return OpenedSession(token, session)
