"""RFC 9457 problem documents for every error, with a stable ``code``.

Every problem body is also Smithers' error envelope: RFC 9457 allows extension members, so
the document carries ``error: {code, message}`` with Smithers' code for the same failure
(``NOT_FOUND``, ``INVALID_JSON``, ``PAYLOAD_TOO_LARGE``, ``RUN_ALREADY_EXISTS``, ...) next
to Flowplane's own ``code``. :func:`smithers_code` is the one mapping.
"""

from __future__ import annotations

import logging
import re
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import exc as sa_exc
from starlette.exceptions import HTTPException as StarletteHTTPException

from flowplane.errors import DatabaseUnavailable, FlowplaneError

PROBLEM_TYPE = "application/problem+json"
_log = logging.getLogger("flowplane.api")

_HTTP_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    409: "conflict",
    411: "length_required",
    412: "precondition_failed",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "unprocessable",
    428: "precondition_required",
    429: "rate_limited",
}


SMITHERS_CODES_BY_STATUS = {
    400: "INVALID_REQUEST",
    401: "UNAUTHORIZED",
    403: "FORBIDDEN",
    404: "NOT_FOUND",
    405: "METHOD_NOT_ALLOWED",
    409: "CONFLICT",
    413: "PAYLOAD_TOO_LARGE",
    429: "RATE_LIMITED",
}
"""Smithers' code for a status whose Flowplane code has no Smithers name of its own."""
SMITHERS_CODES = {
    "invalid_json": "INVALID_JSON",
    "json_too_deep": "INVALID_REQUEST",
    "validation_error": "INVALID_REQUEST",
    "invalid_input": "INVALID_REQUEST",
    "bad_request": "INVALID_REQUEST",
    "conflict": "CONFLICT",
}
"""Flowplane codes whose Smithers name is not the code in capitals."""
ROUTE_NOT_FOUND = "Route not found"
"""The message of a path no route serves (Smithers' wording)."""


def smithers_code(status: int, code: str) -> str:
    """Smithers' error code for a problem of ``status`` with Flowplane's ``code``.

    Every 404 is ``NOT_FOUND``, 401 ``UNAUTHORIZED``, 413 ``PAYLOAD_TOO_LARGE`` and 5xx
    ``SERVER_ERROR``, as Smithers' server answers them; codes Smithers names itself
    (``RUN_NOT_ACTIVE``, ``RUN_ALREADY_EXISTS``, ``RUN_ID_REQUIRED``,
    ``WORKFLOW_PATH_OUTSIDE_ROOT``) and Flowplane's other codes are given in capitals.
    """
    if status >= 500:
        return "SERVER_ERROR"
    if status in (401, 404, 413):
        return SMITHERS_CODES_BY_STATUS[status]
    if code in SMITHERS_CODES:
        return SMITHERS_CODES[code]
    if code.isupper():
        return code
    upper = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", code).upper()
    return upper if upper else SMITHERS_CODES_BY_STATUS.get(status, "ERROR")


class SmithersError(BaseModel):
    """Smithers' error envelope, inside every problem document."""

    model_config = ConfigDict(extra="allow")
    code: str = Field(description="Smithers' code (`NOT_FOUND`, `INVALID_JSON`, ...).")
    message: str = Field(description="The same text as `detail`.")


class Problem(BaseModel):
    """An RFC 9457 problem document (extension members allowed), which is also Smithers'
    error envelope ``{"error": {"code", "message"}}``."""

    model_config = ConfigDict(extra="allow")
    type: str = "about:blank"
    title: str
    status: int
    detail: str | None = None
    code: str
    error: SmithersError


def problem_response(
    status: int,
    code: str,
    title: str,
    /,
    detail: str | None = None,
    headers: dict[str, str] | None = None,
    **extra: Any,
) -> JSONResponse:
    """Build a problem+json response (with Smithers' ``error`` envelope).

    ``status``, ``code`` and ``title`` are positional-only so that an error's extension
    members may carry the same names (``RunNotActive`` has the run's ``status``); the
    problem's own members win.
    """
    message = detail or title
    body: dict[str, Any] = {
        "type": f"https://flowplane.dev/problems/{code}",
        "title": title,
        "status": status,
        "detail": message,
        "code": code,
        "error": {"code": smithers_code(status, code), "message": message},
    }
    for key, value in extra.items():
        if key not in body:
            body[key] = value
    return JSONResponse(body, status_code=status, media_type=PROBLEM_TYPE, headers=headers)


def error_response(exc: FlowplaneError, headers: dict[str, str] | None = None) -> JSONResponse:
    """Turn a Flowplane error into its problem response."""
    return problem_response(exc.status, exc.code, exc.title, exc.detail, headers, **exc.extra)


def install(app: FastAPI) -> None:
    """Register the exception handlers on ``app``."""

    async def on_flowplane(_request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, FlowplaneError)
        if exc.status >= 500:
            _log.error("request failed: %s: %s", exc.code, exc.detail)
        headers = getattr(exc, "headers", None)
        return error_response(exc, headers)

    async def on_validation(_request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        errors = [
            {
                "path": ".".join(str(p) for p in err.get("loc", ())),
                "error": err.get("msg", ""),
                "type": err.get("type", ""),
            }
            for err in exc.errors()
        ][:50]
        detail = "; ".join(f"{e['path']}: {e['error']}" for e in errors[:5])
        if any(e["type"] == "json_invalid" for e in errors):
            return problem_response(400, "invalid_json", "Invalid JSON", detail, errors=errors)
        return problem_response(400, "validation_error", "Invalid request", detail, errors=errors)

    async def on_http(_request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, StarletteHTTPException)
        code = _HTTP_CODES.get(exc.status_code, f"http_{exc.status_code}")
        detail = exc.detail if isinstance(exc.detail, str) else None
        if exc.status_code == 404 and detail == "Not Found":
            detail = ROUTE_NOT_FOUND  # Starlette's answer for a path no route serves
        return problem_response(
            exc.status_code,
            code,
            detail or code.replace("_", " "),
            detail,
            dict(exc.headers) if exc.headers else None,
        )

    async def on_unexpected(request: Request, exc: Exception) -> JSONResponse:
        if isinstance(exc, FlowplaneError):
            # Raised in a middleware, outside the routes' handler (e.g. the store while
            # authenticating): still its own problem, not a 500.
            return await on_flowplane(request, exc)
        if isinstance(exc, sa_exc.DBAPIError | sa_exc.PendingRollbackError):
            # A driver error that bypassed the store's classification (the store wraps
            # its own): the database failed under us, which a retry may outlive.
            _log.warning("database error outside the store: %s", type(exc).__name__)
            unavailable = DatabaseUnavailable(f"database unavailable: {type(exc).__name__}")
            return error_response(unavailable, unavailable.headers)
        _log.exception("unhandled error", exc_info=exc)
        return problem_response(500, "internal_error", "Internal error", "an unexpected error")

    app.add_exception_handler(FlowplaneError, on_flowplane)
    app.add_exception_handler(RequestValidationError, on_validation)
    app.add_exception_handler(StarletteHTTPException, on_http)
    app.add_exception_handler(Exception, on_unexpected)
