"""RFC 9457 problem documents for every error, with a stable ``code``."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict
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


class Problem(BaseModel):
    """An RFC 9457 problem document (extension members allowed)."""

    model_config = ConfigDict(extra="allow")
    type: str = "about:blank"
    title: str
    status: int
    detail: str | None = None
    code: str


def problem_response(
    status: int,
    code: str,
    title: str,
    /,
    detail: str | None = None,
    headers: dict[str, str] | None = None,
    **extra: Any,
) -> JSONResponse:
    """Build a problem+json response.

    ``status``, ``code`` and ``title`` are positional-only so that an error's extension
    members may carry the same names (``RunNotActive`` has the run's ``status``); the
    problem's own members win.
    """
    body: dict[str, Any] = {
        "type": f"https://flowplane.dev/problems/{code}",
        "title": title,
        "status": status,
        "detail": detail or title,
        "code": code,
    }
    for key, value in extra.items():
        if key not in body:
            body[key] = value
    return JSONResponse(body, status_code=status, media_type=PROBLEM_TYPE, headers=headers)


ErrorShape = Callable[[int, str, str, dict[str, Any], dict[str, str] | None], Response]
"""Renders an error in a surface's own wire format: ``(status, code, detail, extra, headers)``."""


@dataclass(frozen=True)
class RegisteredShape:
    """A surface's error format: how to render it, and its OpenAPI schema."""

    prefixes: tuple[str, ...]
    render: ErrorShape
    schema_name: str
    schema: dict[str, Any]
    media_type: str = "application/json"

    def covers(self, path: str) -> bool:
        """Whether ``path`` is one of this surface's (a prefix ending in ``/`` matches the
        paths under it; any other matches that exact path)."""
        return any(
            path == prefix or (prefix.endswith("/") and path.startswith(prefix))
            for prefix in self.prefixes
        )


_SHAPES: list[RegisteredShape] = []


def register_error_shape(shape: RegisteredShape) -> None:
    """Answer errors of ``shape.prefixes`` with ``shape.render`` instead of problem+json (a
    seed system's surface speaks its own error format; ``/v1`` keeps RFC 9457)."""
    if shape not in _SHAPES:
        _SHAPES.append(shape)


def registered_shape(path: str | None) -> RegisteredShape | None:
    """The error shape registered for ``path``, if any."""
    if not path:
        return None
    return next((shape for shape in _SHAPES if shape.covers(path)), None)


def shape_of(path: str | None) -> ErrorShape | None:
    """How errors of ``path`` are rendered, when not as problem+json."""
    found = registered_shape(path)
    return None if found is None else found.render


def _respond(
    path: str | None,
    status: int,
    code: str,
    title: str,
    detail: str | None,
    headers: dict[str, str] | None = None,
    /,
    **extra: Any,
) -> Response:
    shape = shape_of(path)
    if shape is not None:
        return shape(status, code, detail or title, extra, headers)
    return problem_response(status, code, title, detail, headers, **extra)


def error_response(
    exc: FlowplaneError, headers: dict[str, str] | None = None, *, path: str | None = None
) -> Response:
    """Turn a Flowplane error into its problem response (or ``path``'s own error shape)."""
    return _respond(path, exc.status, exc.code, exc.title, exc.detail, headers, **exc.extra)


def install(app: FastAPI) -> None:
    """Register the exception handlers on ``app``."""

    async def on_flowplane(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, FlowplaneError)
        if exc.status >= 500:
            _log.error("request failed: %s: %s", exc.code, exc.detail)
        headers = getattr(exc, "headers", None)
        return error_response(exc, headers, path=request.url.path)

    async def on_validation(request: Request, exc: Exception) -> Response:
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
        return _respond(
            request.url.path,
            400,
            "validation_error",
            "Invalid request",
            detail,
            None,
            errors=errors,
        )

    async def on_http(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, StarletteHTTPException)
        code = _HTTP_CODES.get(exc.status_code, f"http_{exc.status_code}")
        detail = exc.detail if isinstance(exc.detail, str) else None
        return _respond(
            request.url.path,
            exc.status_code,
            code,
            detail or code.replace("_", " "),
            detail,
            dict(exc.headers) if exc.headers else None,
        )

    async def on_unexpected(request: Request, exc: Exception) -> Response:
        if isinstance(exc, FlowplaneError):
            # Raised in a middleware, outside the routes' handler (e.g. the store while
            # authenticating): still its own problem, not a 500.
            return await on_flowplane(request, exc)
        if isinstance(exc, sa_exc.DBAPIError | sa_exc.PendingRollbackError):
            # A driver error that bypassed the store's classification (the store wraps
            # its own): the database failed under us, which a retry may outlive.
            _log.warning("database error outside the store: %s", type(exc).__name__)
            unavailable = DatabaseUnavailable(f"database unavailable: {type(exc).__name__}")
            return error_response(unavailable, unavailable.headers, path=request.url.path)
        _log.exception("unhandled error", exc_info=exc)
        return _respond(
            request.url.path, 500, "internal_error", "Internal error", "an unexpected error"
        )

    app.add_exception_handler(FlowplaneError, on_flowplane)
    app.add_exception_handler(RequestValidationError, on_validation)
    app.add_exception_handler(StarletteHTTPException, on_http)
    app.add_exception_handler(Exception, on_unexpected)
