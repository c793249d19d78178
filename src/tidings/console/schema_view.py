"""A JSON Schema made readable: one row per field (dotted path, type, required, what it means,
allowed values, constraints), nested objects and arrays flattened, and each `oneOf` shape as
its own table. Pure; the catalog page renders the rows and keeps the raw schema beside them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

_CONSTRAINTS = (
    ("format", "format {}"),
    ("pattern", "matches {}"),
    ("minLength", "at least {} characters"),
    ("maxLength", "at most {} characters"),
    ("minimum", "≥ {}"),
    ("maximum", "≤ {}"),
    ("minItems", "at least {} items"),
    ("maxItems", "at most {} items"),
)


@dataclass(frozen=True, slots=True)
class FieldRow:
    path: str
    type: str
    required: bool
    description: str
    allowed: str
    constraints: str


@dataclass(frozen=True, slots=True)
class SchemaTable:
    title: str
    rows: list[FieldRow]


def _type_of(schema: dict[str, Any]) -> str:
    kind = schema.get("type")
    kinds = kind if isinstance(kind, list) else [kind] if kind else []
    if "array" in kinds and isinstance(schema.get("items"), dict):
        inner = _type_of(schema["items"])
        kinds = [f"array of {inner}" if k == "array" else k for k in kinds]
    return " or ".join(str(k) for k in kinds) or "any"


def _allowed(schema: dict[str, Any]) -> str:
    if "const" in schema:
        return _literal(schema["const"])
    if isinstance(schema.get("enum"), list):
        return ", ".join(_literal(v) for v in schema["enum"])
    return ""


def _literal(value: Any) -> str:
    return (
        "null" if value is None else str(value).lower() if isinstance(value, bool) else str(value)
    )


def _constraints(schema: dict[str, Any]) -> str:
    return "; ".join(text.format(schema[key]) for key, text in _CONSTRAINTS if key in schema)


def _rows(schema: dict[str, Any], prefix: str) -> list[FieldRow]:
    rows: list[FieldRow] = []
    required = set(schema.get("required", []))
    properties = schema.get("properties", {})
    for name, sub in properties.items():
        if not isinstance(sub, dict):
            continue
        path = f"{prefix}{name}"
        rows.append(
            FieldRow(
                path=path,
                type=_type_of(sub),
                required=name in required,
                description=str(sub.get("description", "")),
                allowed=_allowed(sub),
                constraints=_constraints(sub),
            )
        )
        rows.extend(_rows(sub, f"{path}."))
        items = sub.get("items")
        if isinstance(items, dict):
            rows.extend(_rows(items, f"{path}[]."))
    return rows


def schema_tables(schema: dict[str, Any]) -> list[SchemaTable]:
    tables = [SchemaTable("Fields", _rows(schema, ""))]
    for i, shape in enumerate(schema.get("oneOf", []), start=1):
        if isinstance(shape, dict):
            title = f"Shape {i}: {shape['title']}" if "title" in shape else f"Shape {i}"
            tables.append(SchemaTable(title, _rows(shape, "")))
    return tables
