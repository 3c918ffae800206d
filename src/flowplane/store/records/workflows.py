"""Records of stored workflows and their revisions."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from flowplane.store.records.base import Record

__all__ = ["RevisionRecord", "WorkflowHead", "WorkflowRecord"]


@dataclass(frozen=True)
class WorkflowHead(Record):
    """A live stored workflow without its document: what identifies its current version.

    ``(id, version, updated_at_ms)`` names one document: every change writes version + 1
    (compare-and-swap), so a document validated for it once need not be read again.
    """

    id: str
    namespace: str
    name: str
    version: int
    updated_at_ms: int


@dataclass(frozen=True)
class WorkflowRecord(Record):
    """A stored workflow at its current version.

    Attributes:
        id: the workflow id (time-ordered UUID).
        namespace: its namespace.
        name: its name, unique among live workflows of the namespace.
        version: 1 at creation, +1 on every change.
        document: the canonical document (``name`` and ``namespace`` always present,
            no ``version`` key, defaults that were not written left out).
        created_at_ms: creation time.
        updated_at_ms: time of the last change.
        created_by: who created it.
        deleted_at_ms: when it was soft-deleted (``None`` while live).
    """

    id: str
    namespace: str
    name: str
    version: int
    document: dict[str, Any]
    created_at_ms: int
    updated_at_ms: int
    created_by: str | None = None
    deleted_at_ms: int | None = None

    @property
    def description(self) -> str:
        """The document's description ('' when it has none)."""
        return str(self.document.get("description") or "")


@dataclass(frozen=True)
class RevisionRecord(Record):
    """One saved version of a workflow (``document`` is ``None`` in listings)."""

    workflow_id: str
    version: int
    created_at_ms: int
    created_by: str | None = None
    message: str | None = None
    document: dict[str, Any] | None = None
