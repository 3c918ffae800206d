"""``POST /v1/admin/prune``: apply the retention policy now (admin)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query

from flowplane.api.deps import require, services_dependency
from flowplane.api.openapi import error_responses
from flowplane.client.models import PruneResult
from flowplane.services.caller import Caller
from flowplane.services.container import Services

router = APIRouter(tags=["ops"])

Admin = Annotated[Caller, require("admin")]
Svc = Annotated[Services, Depends(services_dependency)]


@router.post(
    "/v1/admin/prune",
    response_model=PruneResult,
    summary="Delete the runs the retention policy lets go",
    responses=error_responses(403),
)
async def admin_prune(
    principal: Admin,
    services: Svc,
    dry_run: Annotated[
        bool, Query(alias="dryRun", description="Count what would be deleted; delete nothing.")
    ] = False,
) -> PruneResult:
    """Apply the server's retention policy once (what the background task does on its own),
    in batches of ``FLOWPLANE_RETENTION_BATCH_SIZE`` runs, each its own transaction."""
    report = await services.retention.prune(principal, dry_run=dry_run)
    return PruneResult(dry_run=report.dry_run, deleted=report.deleted, total=report.total)
