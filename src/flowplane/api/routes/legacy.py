"""Smithers' older paths, kept by its server for existing clients, answered the same way.

| path | same as |
|---|---|
| ``POST /signal/{runId}/{name}`` | ``POST /v1/runs/{runId}/signals/{name}`` |
| ``GET /v1/approval/list``, ``GET /approval/list``, ``GET /approvals`` | ``GET /v1/approvals`` |

Each is the other route's function, called with what it was given: the same role, the same
service call, the same answer.
"""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query

from flowplane.api.deps import require, services_dependency
from flowplane.api.models.runs import SignalBody
from flowplane.api.openapi import error_responses
from flowplane.api.routes import approvals, runs
from flowplane.client.models import ApprovalList, SignalResult
from flowplane.services.caller import Caller
from flowplane.services.container import Services

router = APIRouter(tags=["smithers"])

Svc = Annotated[Services, Depends(services_dependency)]


@router.post(
    "/signal/{run_id}/{name}",
    response_model=SignalResult,
    summary="Send a signal to a run (Smithers' older path)",
    deprecated=True,
    responses=error_responses(400, 404, 409),
)
async def send_signal(
    run_id: str,
    name: str,
    principal: Annotated[Caller, require("executor")],
    services: Svc,
    body: SignalBody | None = None,
) -> SignalResult:
    """``POST /v1/runs/{runId}/signals/{name}`` under the path Smithers' server also serves."""
    return await runs.send_signal(run_id, name, principal, services, body)


@router.get(
    "/v1/approval/list",
    response_model=ApprovalList,
    summary="List approvals (Smithers' older path)",
    deprecated=True,
    responses=error_responses(400),
)
@router.get(
    "/approval/list",
    response_model=ApprovalList,
    summary="List approvals (Smithers' older path)",
    deprecated=True,
    responses=error_responses(400),
)
@router.get(
    "/approvals",
    response_model=ApprovalList,
    summary="List approvals (Smithers' older path)",
    deprecated=True,
    responses=error_responses(400),
)
async def list_approvals(
    principal: Annotated[Caller, require("viewer")],
    services: Svc,
    status: Annotated[
        Literal["pending", "approved", "denied", "cancelled", "all"],
        Query(description="`all` lists every approval, pending first."),
    ] = "pending",
    namespace: Annotated[list[str] | None, Query()] = None,
    limit: Annotated[int, Query(ge=1, le=approvals.MAX_APPROVALS)] = 100,
) -> ApprovalList:
    """``GET /v1/approvals``: pending approvals, longest wait first, as ``{approvals}``."""
    return await approvals.list_approvals(principal, services, status, namespace, limit)
