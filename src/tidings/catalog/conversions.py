"""Declarative version conversions: a tiny interpreter over a list of ops.

A conversion is data (``{"from": 2, "to": 1, "ops": [...]}`` in a catalog file), never code.
Paths are JSON Pointers (RFC 6901) into the event's ``data``. The ops:

- ``{"op": "remove", "path": "/x"}``: drop a property (nothing happens when it is absent).
- ``{"op": "rename", "from": "/a", "to": "/b"}``: move a value (skipped when ``/a`` is absent).
- ``{"op": "copy", "from": "/a", "to": "/b"}``: duplicate a value (skipped when absent).
- ``{"op": "set", "path": "/y", "value": ...}``: set a value, creating parent objects.
- ``{"op": "default", "path": "/y", "value": ...}``: set only when ``/y`` is absent.
- ``{"op": "map", "path": "/s", "values": {"OLD": "NEW"}}``: replace a value found in the
  table (values not in the table are kept).
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from typing import Any

OPS: dict[str, tuple[str, ...]] = {
    "remove": ("path",),
    "rename": ("from", "to"),
    "copy": ("from", "to"),
    "set": ("path", "value"),
    "default": ("path", "value"),
    "map": ("path", "values"),
}

_ABSENT = object()


def parse_pointer(pointer: str) -> list[str]:
    """The reference tokens of a JSON Pointer; raises ValueError on a malformed one."""
    if not isinstance(pointer, str) or not pointer.startswith("/"):
        raise ValueError(f"JSON pointer must be a string starting with '/': {pointer!r}")
    tokens = pointer[1:].split("/")
    for token in tokens:
        rest = token.replace("~0", "").replace("~1", "")
        if "~" in rest:
            raise ValueError(f"bad escape in JSON pointer {pointer!r}")
    return [t.replace("~1", "/").replace("~0", "~") for t in tokens]


def check_op(op: Any) -> str | None:
    """None when `op` is a well-formed op, else the reason."""
    if not isinstance(op, Mapping):
        return "an op must be an object"
    name = op.get("op")
    if name not in OPS:
        return f"unknown op {name!r} (known: {', '.join(sorted(OPS))})"
    for key in OPS[name]:
        if key not in op:
            return f"op {name!r} needs {key!r}"
    unknown = set(op) - set(OPS[name]) - {"op"}
    if unknown:
        return f"op {name!r} has unknown keys {sorted(unknown)}"
    for key in ("path", "from", "to"):
        if key in op:
            try:
                parse_pointer(op[key])
            except ValueError as exc:
                return str(exc)
    if name == "map" and not isinstance(op["values"], Mapping):
        return "op 'map' needs 'values' to be an object"
    return None


def _child(container: Any, token: str) -> Any:
    if isinstance(container, dict):
        return container.get(token, _ABSENT)
    if isinstance(container, list) and token.isdigit():
        index = int(token)
        return container[index] if index < len(container) else _ABSENT
    return _ABSENT


def _get(doc: Any, tokens: Sequence[str]) -> Any:
    node = doc
    for token in tokens:
        node = _child(node, token)
        if node is _ABSENT:
            return _ABSENT
    return node


def _parent(doc: Any, tokens: Sequence[str], create: bool) -> Any:
    node = doc
    for token in tokens[:-1]:
        nxt = _child(node, token)
        if nxt is _ABSENT:
            if not (create and isinstance(node, dict)):
                return _ABSENT
            nxt = {}
            node[token] = nxt
        node = nxt
    return node


def _put(doc: Any, tokens: Sequence[str], value: Any) -> None:
    parent = _parent(doc, tokens, create=True)
    last = tokens[-1]
    if isinstance(parent, dict):
        parent[last] = value
    elif isinstance(parent, list) and last.isdigit() and int(last) < len(parent):
        parent[int(last)] = value
    else:
        raise ValueError(f"cannot set /{'/'.join(tokens)}: parent is not an object")


def _delete(doc: Any, tokens: Sequence[str]) -> Any:
    parent = _parent(doc, tokens, create=False)
    last = tokens[-1]
    if isinstance(parent, dict):
        return parent.pop(last, _ABSENT)
    if isinstance(parent, list) and last.isdigit() and int(last) < len(parent):
        return parent.pop(int(last))
    return _ABSENT


def apply_ops(data: Mapping[str, Any], ops: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """A converted deep copy of `data` (the input is never changed)."""
    doc: dict[str, Any] = copy.deepcopy(dict(data))
    for op in ops:
        name = op["op"]
        if name == "remove":
            _delete(doc, parse_pointer(op["path"]))
        elif name in ("rename", "copy"):
            source = parse_pointer(op["from"])
            value = _delete(doc, source) if name == "rename" else _get(doc, source)
            if value is not _ABSENT:
                _put(doc, parse_pointer(op["to"]), copy.deepcopy(value))
        elif name == "set":
            _put(doc, parse_pointer(op["path"]), copy.deepcopy(op["value"]))
        elif name == "default":
            tokens = parse_pointer(op["path"])
            if _get(doc, tokens) is _ABSENT:
                _put(doc, tokens, copy.deepcopy(op["value"]))
        elif name == "map":
            tokens = parse_pointer(op["path"])
            current = _get(doc, tokens)
            table = op["values"]
            if isinstance(current, str) and current in table:
                _put(doc, tokens, copy.deepcopy(table[current]))
        else:  # pragma: no cover - check_op runs at load time
            raise ValueError(f"unknown op {name!r}")
    return doc
