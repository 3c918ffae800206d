"""Records of the audit log."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from flowplane.store.records.base import Record

__all__ = ["AuditRecord"]


@dataclass(frozen=True)
class AuditRecord(Record):
    """One audited mutation: who did what to which object, and when."""

    id: int
    ts_ms: int
    actor: str
    actor_kind: str
    action: str
    target_type: str
    target_id: str
    actor_id: str | None = None
    namespace: str | None = None
    before_version: int | None = None
    after_version: int | None = None
    request_id: str | None = None
    details: dict[str, Any] | None = None
