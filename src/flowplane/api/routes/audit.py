"""``GET /v1/audit``: the audit log, newest first (admin).

Every mutation appends an entry in the same transaction as the change: who (``actor``,
``actorKind``, ``actorId``), what (``action``, ``targetType``, ``targetId``, versions before
and after), when (``tsMs``), where (``namespace``) and the ``requestId`` of the HTTP request
(also sent back as the ``X-Request-Id`` response header).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query

from flowplane.api.deps import require, services_dependency
from flowplane.api.models.common import iso, problems
from flowplane.client.models import WireModel
from flowplane.services.audit import MAX_LIST_LIMIT, AuditFilter
from flowplane.services.caller import Caller
from flowplane.services.container import Services

router = APIRouter(prefix="/v1/audit", tags=["audit"])

Admin = Annotated[Caller, require("admin")]
Svc = Annotated[Services, Depends(services_dependency)]


class AuditEntry(WireModel):
    """One audited mutation."""

    id: int
    ts_ms: int
    timestamp: str | None = None
    actor: str
    actor_kind: str
    actor_id: str | None = None
    action: str
    namespace: str | None = None
    target_type: str
    target_id: str
    before_version: int | None = None
    after_version: int | None = None
    request_id: str | None = None
    details: Any = None


class AuditPage(WireModel):
    """A page of entries, newest first."""

    items: list[AuditEntry]
    next_cursor: str | None = None


def entry_model(row: Mapping[str, Any]) -> AuditEntry:
    """The wire form of an audit row."""
    return AuditEntry(
        id=int(row["id"]),
        ts_ms=int(row["ts_ms"]),
        timestamp=iso(row["ts_ms"]),
        actor=row["actor"],
        actor_kind=row["actor_kind"],
        actor_id=row["actor_id"],
        action=row["action"],
        namespace=row["namespace"],
        target_type=row["target_type"],
        target_id=row["target_id"],
        before_version=row["before_version"],
        after_version=row["after_version"],
        request_id=row["request_id"],
        details=row["details"],
    )


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
    since_ms: Annotated[int | None, Query(alias="sinceMs", ge=0)] = None,
    until_ms: Annotated[int | None, Query(alias="untilMs", ge=0)] = None,
    cursor: Annotated[int | None, Query(ge=1, description="A `nextCursor`.")] = None,
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
