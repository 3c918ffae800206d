"""``GET /v1/audit``: the audit log, newest first (admin).

Every mutation appends an entry in the same transaction as the change: who (``actor``,
``actorKind``, ``actorId``), what (``action``, ``targetType``, ``targetId``, versions before
and after), when (``tsMs``), where (``namespace``) and the ``requestId`` of the HTTP request
(also sent back as the ``X-Request-Id`` response header).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query

from flowplane.api.deps import require, services_dependency
from flowplane.api.models.audit import (
    AuditPage,
    entry_model,
)
from flowplane.api.models.common import problems
from flowplane.model.bounds import EpochMs, PositiveInt64
from flowplane.services.audit import MAX_LIST_LIMIT, AuditFilter
from flowplane.services.caller import Caller
from flowplane.services.container import Services

router = APIRouter(prefix="/v1/audit", tags=["audit"])

Admin = Annotated[Caller, require("admin")]
Svc = Annotated[Services, Depends(services_dependency)]


@router.get("", response_model=AuditPage, summary="Read the audit log", responses=problems(400))
async def list_audit(
    principal: Admin,
    services: Svc,
    namespace: Annotated[list[str] | None, Query()] = None,
    actor: Annotated[str | None, Query(max_length=128, description="Name or id.")] = None,
    action: Annotated[
        str | None, Query(max_length=64, description="Exact, or a prefix: `kv.` / `kv*`.")
    ] = None,
    target_type: Annotated[str | None, Query(alias="targetType", max_length=32)] = None,
    target_id: Annotated[str | None, Query(alias="targetId", max_length=600)] = None,
    request_id: Annotated[str | None, Query(alias="requestId", max_length=128)] = None,
    since_ms: Annotated[EpochMs | None, Query(alias="sinceMs")] = None,
    until_ms: Annotated[EpochMs | None, Query(alias="untilMs")] = None,
    cursor: Annotated[PositiveInt64 | None, Query(description="A `nextCursor`.")] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_LIST_LIMIT)] = 100,
) -> AuditPage:
    """Entries newest first, filtered; an admin limited to namespaces sees only theirs."""
    where = AuditFilter(
        namespaces=namespace,
        actor=actor,
        action=action,
        target_type=target_type,
        target_id=target_id,
        request_id=request_id,
        since_ms=since_ms,
        until_ms=until_ms,
    )
    cursor_text = str(cursor) if cursor is not None else None
    page = await services.audit.list(principal, where, cursor=cursor_text, limit=limit)
    return AuditPage(items=[entry_model(r) for r in page.items], next_cursor=page.next_cursor)
