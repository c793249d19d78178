"""Event-type catalogs: JSON Schemas per schemaVersion, examples and declarative conversions,
loaded from data files (``tidings/catalog/data/<catalog>/<type>.json``)."""

from tidings.catalog.registry import (
    Catalog,
    CatalogError,
    Conversion,
    EventType,
    EventTypeVersion,
    ValidationIssue,
)

__all__ = [
    "Catalog",
    "CatalogError",
    "Conversion",
    "EventType",
    "EventTypeVersion",
    "ValidationIssue",
]
