"""Operations: liveness (``/health``), readiness (``/readyz``) and Prometheus (``/metrics``).

``/health`` and ``/readyz`` are the only open GET routes; ``/metrics`` needs a token
(any role, not restricted to namespaces).
"""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict

from flowplane import __version__
from flowplane.api.deps import get_services, require
from flowplane.api.metrics import CONTENT_TYPE, Metrics
from flowplane.api.openapi import error_responses
from flowplane.api.problems import problem_response
from flowplane.services.caller import Caller

router = APIRouter(tags=["ops"])


class Health(BaseModel):
    """The process is alive."""

    model_config = ConfigDict(extra="forbid")
    status: Literal["ok"]
    version: str


class Ready(BaseModel):
    """The process can serve: the database answers and is at the newest migration."""

    model_config = ConfigDict(extra="forbid")
    status: Literal["ready"]
    database: Literal["ok"]
    migration: str | None


@router.get("/health", response_model=Health, summary="Liveness")
async def health() -> Health:
    """Always 200 while the process runs; touches nothing."""
    return Health(status="ok", version=__version__)


@router.get(
    "/readyz",
    response_model=Ready,
    summary="Readiness",
    responses=error_responses(503),
)
async def readyz(request: Request) -> Ready | JSONResponse:
    """200 when the database answers and its schema is at the newest migration, else 503."""
    state = await get_services(request).ops.readiness()
    if not state.ready:
        detail = (
            "the database does not answer"
            if not state.database
            else f"the database is at migration {state.migration}, "
            f"expected {state.expected_migration}"
        )
        return problem_response(
            503,
            "not_ready",
            "Not ready",
            detail,
            database=state.database,
            migration=state.migration,
        )
    return Ready(status="ready", database="ok", migration=state.migration)


@router.get(
    "/metrics",
    response_class=Response,
    summary="Prometheus metrics",
    responses={
        200: {"content": {"text/plain": {"schema": {"type": "string"}}}},
        **error_responses(403),
    },
)
async def metrics(request: Request, principal: Caller = require("viewer")) -> Response:
    """The Prometheus text exposition (HTTP traffic, runs, node durations, queue depth).

    The numbers span every namespace (workflow names are labels), so a key restricted to
    some namespaces gets 403.
    """
    stats = await get_services(request).ops.run_stats(principal)
    registry: Metrics = request.app.state.metrics
    body = registry.render(stats)
    return Response(body, media_type=CONTENT_TYPE)
