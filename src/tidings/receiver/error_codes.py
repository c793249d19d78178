"""The meaning of the error codes DLT failures carry, read from the same reference the server
serves at ``GET /v1/error-codes`` (``tidings/catalog/data/error-codes.json``, shipped in this
package; read as a file, so the receiver imports nothing of the server)."""

from __future__ import annotations

import functools
import json
from pathlib import Path

_FILE = Path(__file__).resolve().parent.parent / "catalog" / "data" / "error-codes.json"


@functools.cache
def _meanings() -> dict[str, str]:
    doc = json.loads(_FILE.read_text(encoding="utf-8"))
    return {entry["code"]: entry["meaning"] for entry in doc["codes"]}


def meaning(code: str | None) -> str | None:
    """What the code means; None for no code or one the reference does not list (yet)."""
    return None if code is None else _meanings().get(code)
