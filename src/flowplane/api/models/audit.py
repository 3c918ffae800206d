"""Wire models of ``GET /v1/audit``: one entry and a page of them."""

from __future__ import annotations

from typing import Any

from flowplane.api.models.common import iso
from flowplane.client.models import WireModel
from flowplane.services.records import AuditRecord


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


def entry_model(row: AuditRecord) -> AuditEntry:
    """The wire form of an audit row."""
    return AuditEntry(
        id=int(row.id),
        ts_ms=int(row.ts_ms),
        timestamp=iso(row.ts_ms),
        actor=row.actor,
        actor_kind=row.actor_kind,
        actor_id=row.actor_id,
        action=row.action,
        namespace=row.namespace,
        target_type=row.target_type,
        target_id=row.target_id,
        before_version=row.before_version,
        after_version=row.after_version,
        request_id=row.request_id,
        details=row.details,
    )
