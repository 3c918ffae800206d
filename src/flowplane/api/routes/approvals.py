"""``GET /v1/approvals``: the approval inbox across runs, longest wait first."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query

from flowplane.api.deps import require, services_dependency
from flowplane.api.openapi import error_responses
from flowplane.api.run_views import approval_model
from flowplane.client.models import ApprovalList
from flowplane.services.caller import Caller
from flowplane.services.container import Services

router = APIRouter(prefix="/v1/approvals", tags=["approvals"])

MAX_APPROVALS = 500


@router.get(
    "",
    response_model=ApprovalList,
    summary="List approvals",
    responses=error_responses(400),
)
async def list_approvals(
    principal: Annotated[Caller, require("viewer")],
    services: Annotated[Services, Depends(services_dependency)],
    status: Annotated[
        Literal["pending", "approved", "denied", "cancelled", "all"],
        Query(description="`all` lists every approval, pending first."),
    ] = "pending",
    namespace: Annotated[list[str] | None, Query()] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_APPROVALS)] = 100,
) -> ApprovalList:
    """Approvals, pending first and longest wait first, each with ``waitingMs``."""
    found = await services.runs.approvals.list(
        principal,
        status=None if status == "all" else status,
        namespaces=namespace,
        limit=limit,
    )
    return ApprovalList(approvals=[approval_model(approval) for approval in found])
