"""``/api/v1/approvals/{id}``: a gate's approval, and approving or rejecting it.

An approval is the request of a ``control.approval`` task (workflowdev's gate); its id is
the one Flowplane gives it (``GET /v1/approvals`` and the run's events name it).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends
from pydantic import BaseModel, ConfigDict, Field

from flowplane.api.deps import ObjectId, require, services_dependency
from flowplane.api.openapi import error_responses
from flowplane.api.workflowdev.views import approval_view
from flowplane.services.caller import Caller
from flowplane.services.container import Services

router = APIRouter(prefix="/api/v1/approvals", tags=["workflowdev"])

Svc = Annotated[Services, Depends(services_dependency)]
Viewer = Annotated[Caller, require("viewer")]
Executor = Annotated[Caller, require("executor")]


class Decision(BaseModel):
    """The optional body of approve and reject."""

    model_config = ConfigDict(extra="ignore")
    comment: str | None = Field(default=None, max_length=2000)
    note: str | None = Field(default=None, max_length=2000)


@router.get("/{approval_id}", summary="Get a gate approval's status")
async def get_approval(approval_id: ObjectId, principal: Viewer, services: Svc) -> dict[str, Any]:
    """The approval: ``status`` is ``PENDING``, ``APPROVED``, ``REJECTED`` or ``CANCELLED``."""
    return approval_view(await services.runs.approvals.get(principal, approval_id))


async def _decide(
    services: Services, principal: Caller, approval_id: str, body: Decision | None, approved: bool
) -> dict[str, Any]:
    note = None if body is None else (body.comment or body.note)
    decided = await services.runs.decide_approval(
        principal, approval_id, approved=approved, note=note, by=principal.name
    )
    return approval_view(decided)


@router.post("/{approval_id}/approve", summary="Approve a gate", responses=error_responses(409))
async def approve(
    approval_id: ObjectId,
    principal: Executor,
    services: Svc,
    body: Annotated[Decision | None, Body()] = None,
) -> dict[str, Any]:
    """Approve: the execution goes on (409 when it was already decided)."""
    return await _decide(services, principal, approval_id, body, True)


@router.post("/{approval_id}/reject", summary="Reject a gate", responses=error_responses(409))
async def reject(
    approval_id: ObjectId,
    principal: Executor,
    services: Svc,
    body: Annotated[Decision | None, Body()] = None,
) -> dict[str, Any]:
    """Reject: the gate fails (or the execution goes on, if the gate says ``on_deny: continue``)."""
    return await _decide(services, principal, approval_id, body, False)
