"""The exact OpenAPI document: what FastAPI generates, plus what the middleware really does.

FastAPI documents a 422 for every route with inputs, but Flowplane answers 400 problems;
and the errors the gate and the body limits produce (401, 403, 413, 429) are not visible
to FastAPI at all. :func:`install_openapi` rewrites each operation so the document says
exactly what a client gets:

- ``400`` (validation, ``json_too_deep``) where the operation has parameters or a body;
- ``413`` where it has a body;
- ``401`` and ``429`` plus a ``security`` requirement unless the route is open;
- ``403`` where the route needs more than ``viewer`` (``x-required-role`` names the role);
- ``404`` where the path has parameters (unknown ids and other namespaces' objects);
- every error response as ``application/problem+json`` with the ``Problem`` schema (or, for
  a seed surface with error bodies of its own, the content its ``x-error-content`` gives);
- no ``null`` in the schema of a query, header or path parameter: ``str | None = None`` in
  Python means "may be left out", and a URL or a header cannot carry a JSON null.

Route authors therefore only declare the errors specific to a route, e.g.
``responses=error_responses(409, 412)``.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from fastapi import FastAPI

from flowplane.api.deps import api_routes
from flowplane.api.problems import PROBLEM_TYPE, Problem
from flowplane.services.caller import ROLE_RANK

PROBLEM_REF = {"$ref": "#/components/schemas/Problem"}
_DESCRIPTIONS = {
    400: "Invalid request (problem `validation_error`, `json_too_deep`, ...)",
    401: "Missing or invalid credentials",
    403: "The caller's role is too low",
    404: "Not found (or in a namespace the caller cannot see)",
    409: "Conflict with the current state",
    412: "The If-Match version is stale",
    413: "Request body too large",
    422: "Unprocessable request",
    428: "If-Match required",
    429: "Rate limit exceeded (`retryAfterMs`, `Retry-After`)",
    503: "Service unavailable",
}
_RATE_LIMIT_HEADERS = {
    "Retry-After": {"description": "Seconds to wait.", "schema": {"type": "string"}},
    "RateLimit-Policy": {"description": "Quota policy.", "schema": {"type": "string"}},
    "RateLimit": {"description": "Remaining quota.", "schema": {"type": "string"}},
}


def problem_content() -> dict[str, Any]:
    """The ``content`` of a problem response."""
    return {PROBLEM_TYPE: {"schema": dict(PROBLEM_REF)}}


def error_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """``responses=`` entries for route-specific error statuses, as problem documents."""
    return {
        status: {
            "description": _DESCRIPTIONS.get(status, "Error"),
            "model": Problem,
            "content": {PROBLEM_TYPE: {}},
        }
        for status in statuses
    }


def _add(responses: dict[str, Any], status: int) -> None:
    responses.setdefault(str(status), {"description": _DESCRIPTIONS.get(status, "Error")})


def _without_null(schema: dict[str, Any]) -> dict[str, Any]:
    """``anyOf: [X, {type: null}]`` as X (with the outer keys: title, default, ...)."""
    branches = schema.get("anyOf")
    if not isinstance(branches, list):
        return schema
    kept = [b for b in branches if b != {"type": "null"}]
    if len(kept) == len(branches) or not kept:
        return schema
    outer = {k: v for k, v in schema.items() if k != "anyOf" and v is not None}
    return {**kept[0], **outer} if len(kept) == 1 else {**outer, "anyOf": kept}


def _rewrite_operation(
    operation: dict[str, Any],
    is_open: bool,
    role: str | None,
    shared: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
) -> None:
    for param in operation.get("parameters", []):
        if isinstance(param.get("schema"), dict):
            param["schema"] = _without_null(param["schema"])
    responses: dict[str, Any] = operation["responses"]
    if "HTTPValidationError" in repr(responses.get("422")):
        # FastAPI's own validation answer: ours is a 400 problem instead. Declared 422s
        # (e.g. ``idempotency_key_reused``) stay.
        responses.pop("422", None)
    params = operation.get("parameters", [])
    if params or "requestBody" in operation:
        _add(responses, 400)
    if "requestBody" in operation:
        _add(responses, 413)
    if any(p.get("in") == "path" for p in params):
        _add(responses, 404)
    if not is_open:
        _add(responses, 401)
        _add(responses, 429)
        responses["429"]["headers"] = dict(_RATE_LIMIT_HEADERS)
        operation["security"] = [
            {"bearerAuth": []},
            {"apiKeyHeader": []},
            {"smithersKeyHeader": []},
        ]
    if role is not None:
        operation["x-required-role"] = role
        if ROLE_RANK[role] > ROLE_RANK["viewer"]:
            _add(responses, 403)
    # A seed surface whose errors have its own shape declares it (``x-error-content``).
    content = operation.get("x-error-content")
    if content and shared is not None:
        content = {media: {"schema": shared(body["schema"])} for media, body in content.items()}
        operation["x-error-content"] = content
    for status, response in responses.items():
        if status.isdigit() and int(status) >= 400:
            response["content"] = dict(content) if content else problem_content()


def rewrite(schema: dict[str, Any], app: FastAPI, open_routes: set[tuple[str, str]]) -> None:
    """Rewrite the generated ``schema`` in place (idempotent)."""
    roles: dict[tuple[str, str], str] = {}
    for info in api_routes(app):
        for method in info.methods:
            if info.role is not None:
                roles[(method.upper(), info.path)] = info.role
    components = schema.setdefault("components", {})
    schemas = components.setdefault("schemas", {})
    schemas["Problem"] = Problem.model_json_schema(ref_template="#/components/schemas/{model}")
    components["securitySchemes"] = {
        "bearerAuth": {
            "type": "http",
            "scheme": "bearer",
            "description": "An `fp_...` API key or a login token from POST /v1/auth/login.",
        },
        "apiKeyHeader": {"type": "apiKey", "in": "header", "name": "X-API-Key"},
        "smithersKeyHeader": {
            "type": "apiKey",
            "in": "header",
            "name": "x-smithers-key",
            "description": "Smithers' header for the same key.",
        },
    }
    names: dict[str, str] = {}

    def shared(body: dict[str, Any]) -> dict[str, Any]:
        """A seed surface's error body as one component, referenced by every response (inline,
        the document repeats it per status and operation: Swagger UI stops rendering a
        document that large)."""
        if "$ref" in body:
            return body
        text = json.dumps(body, sort_keys=True)
        if text not in names:
            names[text] = str(body.get("x-name") or f"SurfaceError{len(names) + 1}")
            schemas[names[text]] = {k: v for k, v in body.items() if k != "x-name"}
        return {"$ref": f"#/components/schemas/{names[text]}"}

    for path, item in schema.get("paths", {}).items():
        for method, operation in item.items():
            if isinstance(operation, dict) and "responses" in operation:
                key = (method.upper(), path)
                is_open = key in open_routes or bool(operation.get("x-flowplane-public"))
                _rewrite_operation(operation, is_open, roles.get(key), shared)
    used = repr(schema.get("paths", {}))
    for name in ("HTTPValidationError", "ValidationError"):
        if f"#/components/schemas/{name}" not in used:
            schemas.pop(name, None)


def install_openapi(app: FastAPI, open_routes: set[tuple[str, str]] | None = None) -> None:
    """Make ``app.openapi()`` return the rewritten document."""
    from flowplane.api.security import OPEN_ROUTES

    opened = open_routes or {(m, p.decode()) for m, p in OPEN_ROUTES}
    generate: Callable[[], dict[str, Any]] = app.openapi

    def openapi() -> dict[str, Any]:
        schema = generate()
        rewrite(schema, app, opened)
        return schema

    app.openapi = openapi  # type: ignore[method-assign]
