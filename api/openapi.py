"""The OpenAPI document at /openapi.json: what a client generator needs, and true.

FastAPI builds the document from the routes; :func:`install` replaces ``app.openapi`` with a
cached generator that completes it from what the routes depend on:

- security (bearer JWT or the ``sl_access`` cookie with ``X-CSRF-Token``) on every operation
  that authenticates, with its 401/403 answers;
- ``X-Min-Position``/``X-Consistency`` and the 503 on every query of a read model;
- ``X-Request-ID`` everywhere, ``X-Event-Position`` on every answer of a command;
- the error envelope on every error answer, and 400 ``VALIDATION_ERROR`` where FastAPI would
  have documented its 422 ``HTTPValidationError`` (this API never answers that);
- summaries from the first line of each route's docstring, one tag per operation.

Routes document their success body and domain errors with :func:`documented` and mark the
POSTs that honour ``Idempotency-Key`` with :data:`IDEMPOTENT`.
"""

from __future__ import annotations

import copy
import inspect
import json
from collections.abc import Callable, Iterator, Mapping, Sequence
from http import HTTPStatus
from typing import Any

import fastapi.routing
from fastapi import FastAPI
from fastapi.dependencies.models import Dependant
from fastapi.openapi.utils import get_openapi
from fastapi.routing import APIRoute
from pydantic import BaseModel, ConfigDict

from api.auth import (
    ACCESS_COOKIE,
    CSRF_HEADER,
    REFRESH_COOKIE,
    SAFE_METHODS,
    current_principal,
    optional_principal,
    require_verified,
)
from api.readonly import guarded
from api.responses import ErrorResponse, ValidationErrorResponse

#: Set on the generator :func:`install` puts in place of ``app.openapi``.
MARKER = "__shopledger_openapi__"

IDEMPOTENCY_HEADER = "Idempotency-Key"
MIN_POSITION_HEADER = "X-Min-Position"
CONSISTENCY_HEADER = "X-Consistency"
REQUEST_ID_HEADER = "X-Request-ID"
POSITION_HEADER = "X-Event-Position"
COMMAND_METHODS = frozenset({"post", "put", "patch", "delete"})

_SCHEMAS = "#/components/schemas/"
_PARAMETERS = "#/components/parameters/"
_HEADERS = "#/components/headers/"

#: ``openapi_extra`` of a POST that honours ``Idempotency-Key`` (API.md "Conventions").
IDEMPOTENT: dict[str, Any] = {"parameters": [{"$ref": _PARAMETERS + IDEMPOTENCY_HEADER}]}

STATUS_TEXT = {
    200: "OK",
    201: "Created",
    202: "Accepted",
    204: "No content",
    400: "The request is not valid",
    401: "Missing, invalid or expired credentials",
    403: "Not allowed",
    404: "Not found (another user's objects are not found either)",
    409: "Conflicts with the current state",
    413: "The request body is too large",
    422: "Refused by a business rule",
    423: "Locked",
    503: "Temporarily unavailable; retry after Retry-After seconds",
}


def documented(
    model: type[BaseModel] | None = None,
    *,
    status: int = 200,
    description: str | None = None,
    errors: Mapping[int, str | Sequence[str]] | None = None,
) -> dict[int | str, dict[str, Any]]:
    """``responses=`` for a route: its success body (``model``, answered with ``status``) and
    the domain errors it answers, by status, with their error codes."""
    answers: dict[int | str, dict[str, Any]] = {
        status: {"description": description or STATUS_TEXT.get(status, "Success")}
    }
    if model is not None:
        answers[status]["model"] = model
    for code, names in (errors or {}).items():
        listed = [names] if isinstance(names, str) else list(names)
        answers[code] = {
            "model": ValidationErrorResponse if code == 400 else ErrorResponse,
            "description": STATUS_TEXT.get(code, "Error"),
            "x-error-codes": listed,
        }
    return answers


def examples(*bodies: dict[str, Any]) -> ConfigDict:
    """``model_config`` of a request body: its examples in the document."""
    return ConfigDict(json_schema_extra={"examples": list(bodies)})


# --- what the routes depend on --------------------------------------------------------------
def _calls(dependant: Dependant) -> Iterator[Callable[..., Any]]:
    for sub in dependant.dependencies:
        if sub.call is not None:
            yield sub.call
        yield from _calls(sub)


def _closure(call: Callable[..., Any], name: str) -> Any:
    try:
        return inspect.getclosurevars(call).nonlocals.get(name)
    except (TypeError, ValueError):
        return None


class RouteFacts:
    """Authentication, roles and read models of one route, from its dependencies."""

    def __init__(self, route: Any) -> None:
        calls = list(_calls(route.dependant))
        self.auth_required = current_principal in calls
        self.auth_optional = not self.auth_required and optional_principal in calls
        self.verified = require_verified in calls
        self.roles: list[str] = []
        self.projections: list[str] = []
        self.reads = False
        for call in calls:
            qualname = getattr(call, "__qualname__", "")
            if qualname.startswith("require_role."):
                self.roles += list(_closure(call, "roles") or ())
            elif qualname.startswith("reads."):
                self.reads = True
                self.projections += list(_closure(call, "projection_names") or ())


def api_routes(app: FastAPI) -> Iterator[Any]:
    """The app's API routes as FastAPI documents them (with their routers' settings)."""
    contexts = getattr(fastapi.routing, "iter_route_contexts", None)
    if contexts is None:  # FastAPI before included-router contexts
        yield from (r for r in app.routes if isinstance(r, APIRoute))
        return
    for context in contexts(app.routes):
        if isinstance(context.original_route, APIRoute):
            yield context


# --- the generator --------------------------------------------------------------------------
def install(app: FastAPI) -> None:
    """Serve the completed document at /openapi.json (and /docs); idempotent."""
    if getattr(app.openapi, MARKER, False):
        return
    cache: dict[str, Any] = {}

    def openapi() -> dict[str, Any]:
        key = json.dumps([id(r) for r in app.routes])
        if cache.get("key") != key:
            cache["schema"] = build(app)
            cache["key"] = key
        app.openapi_schema = cache["schema"]
        return cache["schema"]  # type: ignore[no-any-return]

    setattr(openapi, MARKER, True)
    app.openapi = openapi  # type: ignore[method-assign]
    app.openapi_schema = None


def is_installed(app: FastAPI) -> bool:
    return bool(getattr(app.openapi, MARKER, False))


def build(app: FastAPI) -> dict[str, Any]:
    """FastAPI's document for ``app``, completed (see the module's docstring)."""
    schema = get_openapi(
        title=app.title,
        version=app.version,
        openapi_version=app.openapi_version,
        summary=app.summary,
        description=app.description or DESCRIPTION,
        terms_of_service=app.terms_of_service,
        contact=app.contact,
        license_info=app.license_info,
        routes=app.routes,
        webhooks=app.webhooks.routes,
        tags=app.openapi_tags or TAGS,
        servers=app.servers,
        separate_input_output_schemas=app.separate_input_output_schemas,
        external_docs=app.openapi_external_docs,
    )
    schema = copy.deepcopy(schema)
    components = schema.setdefault("components", {})
    _add_models(components, ErrorResponse, ValidationErrorResponse)
    components.setdefault("securitySchemes", {}).update(SECURITY_SCHEMES)
    components.setdefault("parameters", {}).update(PARAMETERS)
    components.setdefault("headers", {}).update(HEADERS)
    for route in api_routes(app):
        if not route.include_in_schema:
            continue
        facts = RouteFacts(route)
        for method in sorted(route.methods or ()):
            operation = schema.get("paths", {}).get(route.path_format, {}).get(method.lower())
            if operation is not None:
                _complete(operation, route, method.lower(), facts)
    _drop_unused_validation_schemas(schema)
    return schema


def _add_models(components: dict[str, Any], *models: type[BaseModel]) -> None:
    schemas = components.setdefault("schemas", {})
    for model in models:
        generated = model.model_json_schema(
            by_alias=True, ref_template=_SCHEMAS + "{model}", mode="serialization"
        )
        for name, definition in generated.pop("$defs", {}).items():
            schemas.setdefault(name, definition)
        schemas.setdefault(model.__name__, generated)


def _complete(operation: dict[str, Any], route: Any, method: str, facts: RouteFacts) -> None:
    _summary(operation, route)
    if len(operation.get("tags", [])) > 1:  # a route's own tag wins over its router's
        operation["tags"] = operation["tags"][-1:]
    responses: dict[str, Any] = operation.setdefault("responses", {})
    for status, response in list(responses.items()):
        if status == "422" and _is_fastapi_validation(response):
            del responses[status]

    parameters: list[dict[str, Any]] = operation.setdefault("parameters", [])
    refs = {p.get("$ref") for p in parameters}
    if facts.reads:
        for name in (MIN_POSITION_HEADER, CONSISTENCY_HEADER):
            if _PARAMETERS + name not in refs:
                parameters.append({"$ref": _PARAMETERS + name})
    parameters.append({"$ref": _PARAMETERS + REQUEST_ID_HEADER})
    idempotent = _PARAMETERS + IDEMPOTENCY_HEADER in refs

    validated = bool(route.dependant.query_params or route.body_field or facts.reads)
    validated = validated or bool(route.dependant.header_params or idempotent)
    if validated:
        _error(responses, 400, "VALIDATION_ERROR")
    json_body = "application/json" in operation.get("requestBody", {}).get("content", {})
    if json_body:
        _error(responses, 413, "PAYLOAD_TOO_LARGE")
    answers_json = any(
        not r.get("content") or "application/json" in r["content"]
        for s, r in responses.items()
        if s.startswith("2")
    )
    if method in COMMAND_METHODS and answers_json:  # a version conflict, after retries
        _error(responses, 409, "CONFLICT")
    if facts.auth_required or facts.auth_optional:
        _security(operation, method, facts)
        _error(responses, 401, "UNAUTHORIZED", headers=["WWW-Authenticate"])
        _error(responses, 403, "ACCOUNT_DISABLED")
        if facts.roles or method.upper() not in SAFE_METHODS:
            _error(responses, 403, "FORBIDDEN")
        if facts.verified:
            _error(responses, 403, "EMAIL_NOT_VERIFIED")
    if guarded(method, route.path_format):  # an auditor's token, on any route (api/readonly.py)
        _error(responses, 403, "FORBIDDEN")
    if facts.roles:
        roles = " or ".join(sorted(set(facts.roles)))
        _append(operation, f"Needs the role {roles}.")
    if facts.reads:
        _error(responses, 503, "SERVICE_UNAVAILABLE", headers=["Retry-After"])
    if idempotent:
        _error(responses, 409, "CONFLICT")
        _error(responses, 422, "IDEMPOTENCY_CONFLICT")
        for status, response in responses.items():
            if status.startswith("2"):
                response.setdefault("headers", {})["Idempotent-Replayed"] = {
                    "$ref": _HEADERS + "Idempotent-Replayed"
                }

    for status, response in responses.items():
        headers = response.setdefault("headers", {})
        headers[REQUEST_ID_HEADER] = {"$ref": _HEADERS + REQUEST_ID_HEADER}
        if method in COMMAND_METHODS:
            headers[POSITION_HEADER] = {"$ref": _HEADERS + POSITION_HEADER}
        if status[0] in "45":
            _error_body(response, int(status))
        codes = response.get("x-error-codes")
        if codes:
            base = STATUS_TEXT.get(int(status), "Error")
            given = response.get("description", "").rstrip(".")
            if given and given not in (base, HTTPStatus(int(status)).phrase):
                base = f"{given}; or, as JSON: {base[0].lower()}{base[1:]}"
            response["description"] = f"{base}. Error codes: {', '.join(codes)}."
    operation["responses"] = dict(sorted(responses.items()))


def _summary(operation: dict[str, Any], route: Any) -> None:
    doc = inspect.getdoc(route.endpoint)
    if route.summary or not doc:
        return
    first, _, rest = doc.partition("\n")
    operation["summary"] = first.strip().rstrip(".")
    rest = inspect.cleandoc(rest).strip()
    if rest:
        operation["description"] = rest
    else:
        operation.pop("description", None)


def _append(operation: dict[str, Any], sentence: str) -> None:
    description = operation.get("description", "")
    operation["description"] = f"{description}\n\n{sentence}".strip()


def _is_fastapi_validation(response: dict[str, Any]) -> bool:
    return "HTTPValidationError" in json.dumps(response)


def _error(responses: dict[str, Any], status: int, code: str, headers: Sequence[str] = ()) -> None:
    response = responses.setdefault(str(status), {"description": STATUS_TEXT.get(status, "")})
    envelope = ValidationErrorResponse if status == 400 else ErrorResponse
    content = response.setdefault("content", {})
    content.setdefault("application/json", {"schema": {"$ref": _SCHEMAS + envelope.__name__}})
    codes = response.setdefault("x-error-codes", [])
    if code not in codes:
        codes.append(code)
    for name in headers:
        response.setdefault("headers", {})[name] = {"$ref": _HEADERS + name}


def _error_body(response: dict[str, Any], status: int) -> None:
    """The envelope on a JSON error answer (an HTML page's own errors stay as they are)."""
    content = response.setdefault("content", {})
    envelope = ValidationErrorResponse if status == 400 else ErrorResponse
    json_body = content.get("application/json")
    if (json_body is None and not content) or (
        json_body is not None and not json_body.get("schema")
    ):
        content["application/json"] = {"schema": {"$ref": _SCHEMAS + envelope.__name__}}


def _security(operation: dict[str, Any], method: str, facts: RouteFacts) -> None:
    cookie: dict[str, list[str]] = {"cookieAuth": []}
    if method.upper() not in SAFE_METHODS:
        cookie["csrfToken"] = []
    requirements: list[dict[str, list[str]]] = [{"bearerAuth": []}, cookie]
    if facts.auth_optional:
        requirements.append({})
    operation["security"] = requirements


def _drop_unused_validation_schemas(schema: dict[str, Any]) -> None:
    schemas = schema.get("components", {}).get("schemas", {})
    for name in ("HTTPValidationError", "ValidationError"):
        if name not in schemas:
            continue
        definition = schemas.pop(name)
        if f'"{_SCHEMAS}{name}"' in json.dumps(schema):
            schemas[name] = definition  # still used by someone: keep it


# --- the fixed parts ------------------------------------------------------------------------
DESCRIPTION = """\
Event-sourced multi-seller e-commerce backend for Taiwan (TWD, 5% VAT, ECPay).

**Conventions.** JSON bodies in camelCase; an unknown or invalid field is refused with 400
`VALIDATION_ERROR` (never 422), whose `details.errors` lists `{field, problem, message}`.
Errors: `{"error": {"code", "message", "details"}}`. Money: `{"value": 1234.5, "currency": "TWD"}`.
Lists: `?page=1&pageSize=20` (max 100) → `{"<items>": [...], "pagination": {page, pageSize,
totalItems, totalPages}}`. Timestamps: ISO 8601 with offset, UTC.

**Authentication.** `Authorization: Bearer <accessToken>` (RS256 JWT from `POST /api/auth/login`;
keys at `/.well-known/jwks.json`), or cookie mode (`useCookies: true` at login): the `sl_access`
cookie, and on every state-changing request the `X-CSRF-Token` header echoing the `sl_csrf`
cookie.

**Consistency.** Commands answer with `X-Event-Position`. Queries wait (bounded) until the read
models reached the caller's own last write; `X-Min-Position: N` waits for position N instead
(503 with `Retry-After` if it is not reached in time), `X-Consistency: eventual` does not wait.

**Idempotency.** POSTs that create something accept `Idempotency-Key`: a repeat with the same
body within 24 h answers the first status and body again (`Idempotent-Replayed: true`), with
another body 422 `IDEMPOTENCY_CONFLICT`, while the first still runs 409 `CONFLICT`.
"""

TAGS: list[dict[str, Any]] = [
    {"name": "auth", "description": "Sign-up, email verification, login, tokens, JWKS"},
    {"name": "users", "description": "Profiles, addresses, seller applications, admin"},
    {"name": "catalog", "description": "Categories, products, prices, best sellers"},
    {"name": "inventory", "description": "Warehouses, suppliers, stock"},
    {"name": "cart", "description": "The buyer's cart"},
    {"name": "coupons", "description": "Discount coupons"},
    {"name": "sales", "description": "Checkout and orders (seeds/003)"},
    {"name": "payments", "description": "Card payments, refunds, ECPay"},
    {"name": "fulfilment", "description": "Processing, shipments, delivery, invoices"},
    {"name": "reports", "description": "Sales summary and product sales (seeds/003 reports)"},
    {"name": "analytics", "description": "Sales, inventory, conversion, shipping, customers"},
    {
        "name": "reviews",
        "description": "Reviews of delivered orders, seller replies, moderation, rating summaries",
    },
    {
        "name": "loyalty",
        "description": "Points earned, spent and taken back; membership levels",
    },
    {"name": "messages", "description": "Conversations between users"},
    {
        "name": "after-sale",
        "description": "Returns of delivered items, disputes resolved by admins, lost-dispute flags",
    },
    {
        "name": "audit",
        "description": "Auditors and admins: the operation log of every event, the"
        " tamper-evident event chain, its signed checkpoints and verification",
    },
    {"name": "notifications", "description": "The caller's notifications"},
    {"name": "health", "description": "Liveness and readiness probes, Prometheus metrics"},
    {
        "name": "pages",
        "description": "Pages for a browser: dashboard, email verification, payment result",
    },
]

SECURITY_SCHEMES: dict[str, Any] = {
    "bearerAuth": {
        "type": "http",
        "scheme": "bearer",
        "bearerFormat": "JWT",
        "description": "The accessToken from POST /api/auth/login: a JWT signed with RS256 "
        "(public keys at /.well-known/jwks.json).",
    },
    "cookieAuth": {
        "type": "apiKey",
        "in": "cookie",
        "name": ACCESS_COOKIE,
        "description": "Cookie mode (login with useCookies: true): the HttpOnly access cookie. "
        f"State-changing requests also need {CSRF_HEADER}.",
    },
    "csrfToken": {
        "type": "apiKey",
        "in": "header",
        "name": CSRF_HEADER,
        "description": "Cookie mode only: the csrfToken of the login answer (also in the "
        "sl_csrf cookie), required on POST, PUT, PATCH and DELETE.",
    },
    "refreshCookie": {
        "type": "apiKey",
        "in": "cookie",
        "name": REFRESH_COOKIE,
        "description": "Cookie mode: the refresh cookie read by POST /api/auth/refresh.",
    },
}

PARAMETERS: dict[str, Any] = {
    IDEMPOTENCY_HEADER: {
        "name": IDEMPOTENCY_HEADER,
        "in": "header",
        "required": False,
        "description": "Makes the request safe to retry: the same key with the same body "
        "within 24 h answers the first answer again; with another body 422 "
        "IDEMPOTENCY_CONFLICT; while the first still runs 409 CONFLICT.",
        "schema": {"type": "string", "pattern": "^[\\x21-\\x7e]{1,255}$", "maxLength": 255},
    },
    MIN_POSITION_HEADER: {
        "name": MIN_POSITION_HEADER,
        "in": "header",
        "required": False,
        "description": "Wait until the read models this query reads have processed this event "
        "position (an X-Event-Position a command answered); 503 if they do not in time.",
        "schema": {"type": "integer", "minimum": 0, "maximum": 999_999_999_999_999_999},
    },
    CONSISTENCY_HEADER: {
        "name": CONSISTENCY_HEADER,
        "in": "header",
        "required": False,
        "description": "eventual: answer at once, without waiting for the caller's own last "
        "write; session (the default): read your own writes.",
        "schema": {"type": "string", "enum": ["session", "eventual"], "default": "session"},
    },
    REQUEST_ID_HEADER: {
        "name": REQUEST_ID_HEADER,
        "in": "header",
        "required": False,
        "description": "Correlates logs and stored events with the caller's request; echoed "
        "back (one is made up when absent or not of this form).",
        "schema": {"type": "string", "pattern": "^[A-Za-z0-9._:-]{1,100}$"},
    },
}

HEADERS: dict[str, Any] = {
    POSITION_HEADER: {
        "description": "Position of the last event this request committed; send it as "
        "X-Min-Position to read your own write.",
        "schema": {"type": "integer", "minimum": 0},
    },
    REQUEST_ID_HEADER: {
        "description": "The request's id (the client's X-Request-ID, or a new one).",
        "schema": {"type": "string"},
    },
    "Retry-After": {
        "description": "Seconds to wait before retrying.",
        "schema": {"type": "integer", "minimum": 0},
    },
    "WWW-Authenticate": {
        "description": 'Bearer realm="shopledger"',
        "schema": {"type": "string"},
    },
    "Idempotent-Replayed": {
        "description": "true when this is the stored answer of an earlier request with the "
        "same Idempotency-Key.",
        "schema": {"type": "string", "enum": ["true"]},
    },
}
