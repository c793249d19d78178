"""Endpoint signing secrets encrypted at rest (issue 22 section 2): AES-256-GCM (the
`cryptography` package) under a key-encryption key from `TIDINGS_ENCRYPTION_KEY`, with the
endpoint id bound as associated data, so a ciphertext copied to another endpoint's row does not
decrypt. A stored secret reads `tdenc1:<key id>:<base64url(nonce | ciphertext | tag)>`; the key
id (the first 8 hex digits of the key's SHA-256) says which key to decrypt with, so a rotation
can run while the service does: the new key encrypts, the old ones (`TIDINGS_ENCRYPTION_KEYS_OLD`)
still decrypt until `tidings encryption rotate` has re-wrapped every secret.

Decrypting is memoized per (endpoint, ciphertext): the worker decrypts a secret once and keeps
the plain value only in memory."""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
import secrets
from collections.abc import Iterable
from dataclasses import dataclass, field

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

PREFIX = "tdenc1:"
KEY_BYTES = 32
NONCE_BYTES = 12
MEMO_ENTRIES = 100_000


class SecretKeyError(ValueError):
    """A key that is not 32 bytes of base64, or a ciphertext no configured key opens."""


def new_key() -> str:
    """A new key-encryption key, as TIDINGS_ENCRYPTION_KEY takes it (base64url of 32 bytes)."""
    return base64.urlsafe_b64encode(secrets.token_bytes(KEY_BYTES)).decode()


def parse_key(text: str) -> bytes:
    try:
        raw = base64.urlsafe_b64decode(text.strip() + "=" * (-len(text.strip()) % 4))
    except (binascii.Error, ValueError):
        raise SecretKeyError("an encryption key is base64 of 32 random bytes") from None
    if len(raw) != KEY_BYTES:
        raise SecretKeyError(f"an encryption key is 32 bytes; this one is {len(raw)}")
    return raw


def key_id(key: bytes) -> str:
    return hashlib.sha256(key).hexdigest()[:8]


def is_encrypted(value: str) -> bool:
    return value.startswith(PREFIX)


@dataclass
class SecretBox:
    """Encrypts with `current`; decrypts with it or any of `previous` (by key id)."""

    current: bytes
    previous: tuple[bytes, ...] = ()
    _keys: dict[str, AESGCM] = field(init=False, repr=False)
    _memo: dict[tuple[str, str], str] = field(init=False, repr=False, default_factory=dict)

    def __post_init__(self) -> None:
        self._keys = {key_id(k): AESGCM(k) for k in (*self.previous, self.current)}
        self.current_id = key_id(self.current)

    @classmethod
    def from_texts(cls, current: str, previous: Iterable[str] = ()) -> SecretBox:
        return cls(parse_key(current), tuple(parse_key(p) for p in previous if p.strip()))

    def encrypt(self, plain: str, endpoint_id: str) -> str:
        nonce = os.urandom(NONCE_BYTES)
        sealed = self._keys[self.current_id].encrypt(nonce, plain.encode(), endpoint_id.encode())
        token = base64.urlsafe_b64encode(nonce + sealed).decode().rstrip("=")
        return f"{PREFIX}{self.current_id}:{token}"

    def decrypt(self, stored: str, endpoint_id: str) -> str:
        """The plain secret; a value not encrypted (a database from before encryption, until
        start-up re-wraps it) is returned as it is. SecretKeyError when no key opens it."""
        if not is_encrypted(stored):
            return stored
        memo_key = (endpoint_id, stored)
        plain = self._memo.get(memo_key)
        if plain is not None:
            return plain
        kid, _, token = stored[len(PREFIX) :].partition(":")
        aead = self._keys.get(kid)
        if aead is None:
            raise SecretKeyError(
                f"a secret is encrypted with key {kid}, which is not configured "
                "(TIDINGS_ENCRYPTION_KEY, or TIDINGS_ENCRYPTION_KEYS_OLD during a rotation)"
            )
        try:
            raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
            plain = aead.decrypt(
                raw[:NONCE_BYTES], raw[NONCE_BYTES:], endpoint_id.encode()
            ).decode()
        except (InvalidTag, binascii.Error, ValueError):
            raise SecretKeyError(
                f"the secret of endpoint {endpoint_id} does not decrypt with key {kid} "
                "(a wrong key, or a value copied from another endpoint)"
            ) from None
        if len(self._memo) >= MEMO_ENTRIES:
            self._memo.clear()
        self._memo[memo_key] = plain
        return plain

    def needs_rewrap(self, stored: str) -> bool:
        """Plain, or encrypted with a key other than the current one."""
        return not stored.startswith(f"{PREFIX}{self.current_id}:")
