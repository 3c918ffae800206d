"""``GET /api/v1/audit``: recent audit log entries, newest first (admin)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Response

from flowplane.api.deps import require, services_dependency
from flowplane.api.workflowdev.views import audit_view
from flowplane.services.audit import MAX_LIST_LIMIT, AuditFilter
from flowplane.services.caller import Caller
from flowplane.services.container import Services

router = APIRouter(prefix="/api/v1/audit", tags=["workflowdev"])

Svc = Annotated[Services, Depends(services_dependency)]
Admin = Annotated[Caller, require("admin")]


@router.get("", summary="Recent audit log entries")
async def list_audit(
    principal: Admin,
    services: Svc,
    response: Response,
    namespace: Annotated[list[str] | None, Query()] = None,
    action: Annotated[str | None, Query(max_length=64)] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_LIST_LIMIT)] = 100,
    cursor: Annotated[str | None, Query(max_length=20, pattern=r"^[0-9]+$")] = None,
) -> list[dict[str, Any]]:
    """Entries newest first; an admin limited to namespaces sees only theirs."""
    where = AuditFilter(namespaces=namespace, action=action)
    page = await services.audit.list(principal, where, cursor=cursor, limit=limit)
    if page.next_cursor:
        response.headers["X-Next-Cursor"] = page.next_cursor
    return [audit_view(row) for row in page.items]
