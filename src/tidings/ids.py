"""Identifiers: `<prefix>_<26 chars>`, time-sortable (48-bit milliseconds + 80 random bits, in
Crockford base32, like ULID), so ids sort roughly by creation and leak nothing guessable."""

from __future__ import annotations

import os
import threading
import time

_ALPHABET = "0123456789abcdefghjkmnpqrstvwxyz"


def _encode(value: int, length: int) -> str:
    chars = []
    for _ in range(length):
        chars.append(_ALPHABET[value & 31])
        value >>= 5
    return "".join(reversed(chars))


# The random digits come straight from bytes: os.urandom read a few KiB at a time (one
# getrandom() call per id was a fifth of batch publishing's time, ten delivery ids per event),
# each byte made a digit by its low five bits (256 = 8 x 32, so every digit is equally likely)
# with bytes.translate, in C. Sixteen digits carry the 80 random bits. (Encoding a 128-bit int
# two digits per lookup, the way before, was still a fifth of the API's time in a profile of
# batch publishing: 1,000 delivery ids per batch of 100 events.)
_RANDOM_DIGITS = 16
_BUFFER_IDS = 512
_DIGIT_OF_BYTE = bytes.maketrans(
    bytes(range(256)), bytes(ord(_ALPHABET[b & 31]) for b in range(256))
)


class _RandomPool:
    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self._lock = threading.Lock()
        self._buffer = ""
        self._offset = 0

    def take(self) -> str:
        """Sixteen random digits; the lock keeps two threads from ever taking the same ones."""
        with self._lock:
            if self._offset >= len(self._buffer):
                raw = os.urandom(_RANDOM_DIGITS * _BUFFER_IDS)
                self._buffer = raw.translate(_DIGIT_OF_BYTE).decode("ascii")
                self._offset = 0
            start = self._offset
            self._offset = start + _RANDOM_DIGITS
            return self._buffer[start : start + _RANDOM_DIGITS]


_random = _RandomPool()
if hasattr(os, "register_at_fork"):  # a forked child must not replay its parent's bytes
    os.register_at_fork(after_in_child=_random.reset)

# The ten time digits of the last millisecond asked for: ids come in bursts (a batch's deliveries)
# within one millisecond.
_last_time: tuple[int, str] = (-1, "")


def new_id(prefix: str, now: float | None = None) -> str:
    global _last_time
    millis = int((time.time() if now is None else now) * 1000) & ((1 << 48) - 1)
    cached = _last_time
    if cached[0] != millis:
        cached = _last_time = (millis, _encode(millis, 10))
    return f"{prefix}_{cached[1]}{_random.take()}"
