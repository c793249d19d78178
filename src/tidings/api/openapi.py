"""`/openapi.json` as the API really is (issue 23): FastAPI's description of the routes, then

- the bearer scheme, and on each operation the key kinds it takes (`x-tidings-keys`: platform,
  organization, any), read from the route's own key dependency, not from a list kept aside;
- the error model `{"error": {"code", "message", "details"}}` on every error status each
  operation can return (FastAPI's `{"detail": ...}` 422 replaced);
- typed answers (`api.schemas`) for the routes that render dicts, the batch request's schema,
  the headers (`ETag`, `If-None-Match`, `Idempotency-Key`, `Retry-After`);
- examples of `POST /v1/events` taken from the catalogs (one per catalog's first type and
  version).

Built once per process (`app.openapi_schema`)."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from fastapi import FastAPI, routing
from fastapi.dependencies.models import Dependant
from fastapi.openapi.utils import get_openapi
from fastapi.routing import APIRoute
from pydantic.json_schema import models_json_schema

from tidings.api import schemas as s
from tidings.api.context import (
    get_actor,
    organization_actor,
    platform_actor,
    publisher_actor,
    writer_actor,
)
from tidings.catalog import Catalog

REF = "#/components/schemas/{model}"
BEARER = "bearerAuth"

# (method, path) -> (status, model) of the answers the routes render as plain dicts
ANSWERS: dict[tuple[str, str], tuple[str, type[Any]]] = {
    ("get", "/healthz"): ("200", s.Healthy),
    ("get", "/readyz"): ("200", s.Ready),
    ("post", "/v1/events"): ("201", s.EventOut),
    ("get", "/v1/events"): ("200", s.EventPage),
    ("post", "/v1/events/batch"): ("200", s.BatchOut),
    ("get", "/v1/event-types"): ("200", s.EventTypeList),
    ("get", "/v1/event-types/{type_name}"): ("200", s.EventTypeOut),
    ("get", "/v1/error-codes"): ("200", s.ErrorCodeList),
    ("post", "/v1/endpoints"): ("201", s.EndpointCreated),
    ("get", "/v1/endpoints"): ("200", s.EndpointPage),
    ("get", "/v1/endpoints/{endpoint_id}"): ("200", s.EndpointOut),
    ("patch", "/v1/endpoints/{endpoint_id}"): ("200", s.EndpointPatched),
    ("post", "/v1/endpoints/{endpoint_id}/pause"): ("200", s.EndpointOut),
    ("post", "/v1/endpoints/{endpoint_id}/resume"): ("200", s.EndpointResumed),
    ("get", "/v1/endpoints/{endpoint_id}/secret"): ("200", s.SecretsOut),
    ("post", "/v1/endpoints/{endpoint_id}/secret/rotate"): ("200", s.SecretsOut),
    ("post", "/v1/endpoints/{endpoint_id}/replay"): ("202", s.ReplayCounts),
    ("get", "/v1/endpoints/{endpoint_id}/ledger"): ("200", s.LedgerPage),
    ("get", "/v1/endpoints/{endpoint_id}/digest"): ("200", s.DigestOut),
    ("get", "/v1/deliveries"): ("200", s.DeliveryPage),
    ("get", "/v1/deliveries/{delivery_id}"): ("200", s.DeliveryWithAttempts),
    ("post", "/v1/deliveries/{delivery_id}/replay"): ("202", s.DeliveryOut),
    ("get", "/v1/events/{event_id}"): ("200", s.EventWithDeliveries),
    ("get", "/v1/orders"): ("200", s.StatePage),
    ("get", "/v1/orders/{order_id}/compliance"): ("200", s.State),
    ("get", "/v1/owners/{owner_id}/locks"): ("200", s.State),
    ("get", "/v1/owners/{owner_id}"): ("200", s.OwnerOut),
    ("get", "/v1/owners"): ("200", s.StatePage),
    ("get", "/v1/entitlements"): ("200", s.StatePage),
    ("get", "/v1/entitlements/{entitlement_id}"): ("200", s.State),
}
# Reads answered with a strong ETag and a bodiless 304 on If-None-Match.
CONDITIONAL = {
    ("get", "/v1/events"),
    ("get", "/v1/orders"),
    ("get", "/v1/orders/{order_id}/compliance"),
    ("get", "/v1/owners/{owner_id}/locks"),
    ("get", "/v1/owners/{owner_id}"),
    ("get", "/v1/owners"),
    ("get", "/v1/entitlements"),
    ("get", "/v1/entitlements/{entitlement_id}"),
}
# Operations that can answer 409, and why.
CONFLICTS = {
    ("post", "/v1/events"): "the Idempotency-Key or event id was used for a different event, "
    "or names an erased event (`event_erased`)",
    ("post", "/v1/organizations"): "an organization with this id exists",
    ("post", "/v1/organizations/{organization_uuid}/partners"): "the partner exists",
    ("post", "/v1/endpoints/{endpoint_id}/replay"): "the endpoint is paused or disabled",
    ("post", "/v1/deliveries/{delivery_id}/replay"): "the endpoint is paused or gone, the "
    "delivery was skipped, or its event was erased (`event_erased`)",
    ("delete", "/v1/api-keys/{key_id}"): "the last platform admin key that works cannot be revoked",
}
# Operations that read the raw body as JSON themselves (FastAPI sees no body model).
RAW_JSON = {("post", "/v1/events"), ("post", "/v1/events/batch")}
MESSAGES = {
    "400": "The body is not JSON (`invalid_json`).",
    "401": "No API key, or one tidings does not know (`unauthorized`).",
    "403": "A key of the wrong kind (`platform_key_required`, `organization_key_required`) "
    "or without the scope this operation needs (`insufficient_scope`).",
    "404": "No such resource in the key's organization (another organization's is a 404 too).",
    "409": "Conflict",
    "413": "The body is larger than TIDINGS_MAX_BODY_BYTES (`payload_too_large`).",
    "422": "Invalid input: `details` lists each failing path (`validation_failed`).",
    "429": "The key sends more than TIDINGS_API_RATE_PER_SECOND (`rate_limited`; only when "
    "set, and for platform keys only with TIDINGS_API_RATE_PLATFORM_KEYS).",
    "503": "The database does not answer (`not_ready`).",
}
KEY_KINDS = {
    get_actor: ["platform", "organization"],
    platform_actor: ["platform"],
    publisher_actor: ["platform"],
    organization_actor: ["organization"],
    writer_actor: ["organization"],
}
# The key scopes each dependency takes (organization keys: `read` for reads only).
KEY_SCOPES: dict[Callable[..., Any], list[str]] = {
    get_actor: ["admin", "publish", "write", "read"],
    platform_actor: ["admin"],
    publisher_actor: ["admin", "publish"],
    organization_actor: ["write", "read"],
    writer_actor: ["write"],
}


def _key_dependency(dependant: Dependant) -> Callable[..., Any] | None:
    """The route's key dependency (None: it takes no key)."""
    for dep in dependant.dependencies:
        call: Callable[..., Any] | None = dep.call
        if call in KEY_KINDS:
            return call
        found = _key_dependency(dep)
        if found is not None:
            return found
    return None


def _key_kinds(dependant: Dependant) -> list[str] | None:
    """The key kinds the route's key dependency takes (None: no key)."""
    call = _key_dependency(dependant)
    return None if call is None else KEY_KINDS[call]


def _key_scopes(dependant: Dependant, method: str) -> list[str] | None:
    call = _key_dependency(dependant)
    if call is None:
        return None
    if call is organization_actor and method not in ("get", "head"):
        return ["write"]
    return KEY_SCOPES[call]


def _error(description: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {"application/json": {"schema": {"$ref": REF.format(model="Error")}}},
    }


def _answer(description: str, model: type[Any]) -> dict[str, Any]:
    ref = {"$ref": REF.format(model=model.__name__)}
    return {"description": description, "content": {"application/json": {"schema": ref}}}


def _examples(catalog: Catalog) -> dict[str, Any]:
    """One publish example per catalog (its first type's newest version's first example)."""
    examples: dict[str, Any] = {}
    for event_type in catalog.types():
        if event_type.catalog in examples or event_type.name.startswith("webhook."):
            continue
        version = event_type.versions[event_type.latest_version]
        if not version.examples:
            continue
        envelope: dict[str, Any] = {
            "type": event_type.name,
            "schemaVersion": version.schema_version,
            "source": "SYSTEM",
            "organizationUuid": "3f1c8d2e-7a4b-4c1d-9e2f-0a1b2c3d4e5f",
            "data": version.examples[0],
        }
        if event_type.attributes_schema is not None:
            required = event_type.attributes_schema.get("required", [])
            props = event_type.attributes_schema.get("properties", {})
            envelope["attributes"] = {
                name: (props.get(name, {}).get("enum") or [f"{name}_123"])[0] for name in required
            }
        examples[event_type.catalog] = {"summary": event_type.name, "value": envelope}
    return examples


def _header(description: str) -> dict[str, Any]:
    return {"description": description, "schema": {"type": "string"}}


def _param(name: str, description: str) -> dict[str, Any]:
    return {
        "name": name,
        "in": "header",
        "required": False,
        "description": description,
        "schema": {"type": "string"},
    }


def _routes(app: FastAPI) -> Iterable[tuple[str, set[str], APIRoute]]:
    """(full path, methods, route) of every API route, routers included (FastAPI keeps an
    included router's routes behind it)."""
    for context in routing.iter_route_contexts(app.routes):
        route = context.route
        if isinstance(route, APIRoute) and route.include_in_schema:
            yield route.path_format, set(context.methods or ()), route


def _describe(
    op: dict[str, Any],
    key: tuple[str, str],
    takes: list[str] | None,
    examples: dict[str, Any],
) -> None:
    """One operation: its typed answer, keys, error statuses, headers and examples."""
    responses: dict[str, Any] = op.setdefault("responses", {})
    if key in ANSWERS:
        status, model = ANSWERS[key]
        described = responses.pop(status, None) or responses.pop("200", None) or {}
        responses[status] = _answer(described.get("description", "OK"), model)
    if takes is not None:
        op["security"] = [{BEARER: []}]
        op["x-tidings-keys"] = takes
        op["description"] = (op.get("description", "") + f"\n\nKeys: {', '.join(takes)}.").strip()
        responses["401"] = _error(MESSAGES["401"])
        responses["403"] = _error(MESSAGES["403"])
        limited = _error(MESSAGES["429"])
        limited["headers"] = {"Retry-After": _header("Whole seconds until one more may go.")}
        responses["429"] = limited
    _errors(op, key)
    if key in CONDITIONAL:
        op.setdefault("parameters", []).append(
            _param("If-None-Match", "The ETag of an earlier answer: 304 if unchanged.")
        )
        ok = next(c for c in responses if c.startswith("2"))
        responses[ok]["headers"] = {"ETag": _header("A strong ETag of the answer.")}
        responses["304"] = {
            "description": "Not modified: the answer is the one `If-None-Match` names.",
            "headers": {"ETag": _header("The same ETag.")},
        }
    if key == ("post", "/v1/events/batch"):
        body = {"schema": {"$ref": REF.format(model="BatchIn")}}
        op["requestBody"] = {"required": True, "content": {"application/json": body}}
    if key == ("post", "/v1/events"):
        op["requestBody"]["content"]["application/json"]["examples"] = examples
        responses["200"] = _answer(
            "An idempotent repeat: the event stored before (nothing new is delivered).",
            s.EventOut,
        )
    if key == ("get", "/metrics"):
        responses["200"] = {
            "description": "Prometheus text exposition format.",
            "content": {"text/plain": {"schema": {"type": "string"}}},
        }
        responses["401"] = _error("TIDINGS_METRICS_TOKEN is set and the bearer token differs.")
        responses["404"] = _error("Metrics are not enabled in this process.")


def _errors(op: dict[str, Any], key: tuple[str, str]) -> None:
    """The error statuses an operation can answer, each with the error model."""
    responses: dict[str, Any] = op["responses"]
    path = key[1]
    has_body = "requestBody" in op or key in RAW_JSON
    if "{" in path:
        responses["404"] = _error(MESSAGES["404"])
    if op.get("parameters") or has_body:
        responses["422"] = _error(MESSAGES["422"])
    if has_body:
        responses["413"] = _error(MESSAGES["413"])
        responses["400"] = _error(MESSAGES["400"])
    if key in CONFLICTS:
        responses["409"] = _error(f"Conflict: {CONFLICTS[key]}.")
    if key == ("get", "/readyz"):
        responses["503"] = _error(MESSAGES["503"])


def build(app: FastAPI, catalog: Catalog) -> dict[str, Any]:
    spec = get_openapi(
        title=app.title, version=app.version, description=app.description, routes=app.routes
    )
    components = spec.setdefault("components", {})
    schemas = components.setdefault("schemas", {})
    for gone in ("HTTPValidationError", "ValidationError"):
        schemas.pop(gone, None)
    _, defs = models_json_schema([(m, "serialization") for m in s.MODELS], ref_template=REF)
    schemas.update(defs.get("$defs", {}))
    components["securitySchemes"] = {
        BEARER: {
            "type": "http",
            "scheme": "bearer",
            "description": (
                "An API key: a platform key (organizations, partners, keys, publishing) or an "
                "organization key (its own endpoints, history, state). Each operation says "
                "which in `x-tidings-keys`."
            ),
        }
    }
    kinds = {
        (method.lower(), path): _key_kinds(route.dependant)
        for path, methods, route in _routes(app)
        for method in methods
    }
    scopes = {
        (method.lower(), path): _key_scopes(route.dependant, method.lower())
        for path, methods, route in _routes(app)
        for method in methods
    }
    examples = _examples(catalog)
    for path, item in spec["paths"].items():
        for method, op in item.items():
            _describe(op, (method, path), kinds.get((method, path)), examples)
            if scopes.get((method, path)):
                op["x-tidings-scopes"] = scopes[(method, path)]
    return spec


def install_openapi(app: FastAPI, catalog: Catalog) -> None:
    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = build(app, catalog)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
