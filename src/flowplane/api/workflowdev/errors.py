"""workflowdev's error body, for every error of its routes (the gate's 401/429 included).

``{"error": "<message>", "code": "<Flowplane's stable code>", "status": <HTTP status>}``,
plus the error's extension members (``errors`` of an invalid flow, ``current`` of a version
conflict, ...). ``/v1`` keeps its problem+json: the shape is registered for workflowdev's
paths only (:data:`PATH_PREFIXES`).
"""

from __future__ import annotations

from typing import Any

from fastapi.responses import JSONResponse, Response

from flowplane.api.problems import RegisteredShape, register_error_shape

__all__ = ["OPENAPI_EXTRA", "PATH_PREFIXES", "SHAPE", "error_body", "install"]

PATH_PREFIXES = ("/api/v1/", "/auth/", "/healthz")
"""The paths whose errors answer in workflowdev's shape."""


def error_body(status: int, code: str, message: str, extra: dict[str, Any]) -> dict[str, Any]:
    """The JSON body of one error."""
    body: dict[str, Any] = {"error": message, "code": code, "status": status}
    for key, value in extra.items():
        body.setdefault(key, value)
    return body


def _shape(
    status: int, code: str, message: str, extra: dict[str, Any], headers: dict[str, str] | None
) -> Response:
    return JSONResponse(error_body(status, code, message, extra), status, headers=headers)


SHAPE = RegisteredShape(
    prefixes=PATH_PREFIXES,
    render=_shape,
    schema_name="WorkflowdevError",
    schema={
        "title": "WorkflowdevError",
        "type": "object",
        "required": ["error", "code", "status"],
        "properties": {
            "error": {"type": "string", "description": "What went wrong."},
            "code": {"type": "string", "description": "Flowplane's stable error code."},
            "status": {"type": "integer", "description": "The HTTP status."},
        },
        "additionalProperties": True,
    },
)


OPENAPI_EXTRA: dict[str, Any] = {"x-error-content": {SHAPE.media_type: {"schema": SHAPE.schema}}}
"""What each of the surface's operations declares of its errors (``api/openapi.py``)."""


def install() -> None:
    """Register the shape (once per process)."""
    register_error_shape(SHAPE)
