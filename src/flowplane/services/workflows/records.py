"""The records a :class:`~flowplane.services.workflows.WorkflowService` returns."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from flowplane.model.edits import PatchResult
from flowplane.services.paging import Page
from flowplane.store.tx import Row

__all__ = [
    "ANY_VERSION",
    "ExpectedVersion",
    "ExportFormat",
    "ImportAction",
    "ImportItem",
    "PatchOutcome",
    "Revision",
    "StoredWorkflow",
    "ValidationReport",
    "WorkflowPage",
]

ANY_VERSION: Literal["*"] = "*"
"""``If-Match: *``: the caller accepts whatever the current version is."""

ExpectedVersion = int | Literal["*"] | None
ExportFormat = Literal["yaml", "json"]
ImportAction = Literal["created", "updated", "unchanged"]


@dataclass(frozen=True)
class StoredWorkflow:
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

    @classmethod
    def from_row(cls, row: Row) -> StoredWorkflow:
        """Build from a ``workflows`` row."""
        return cls(
            id=row["id"],
            namespace=row["namespace"],
            name=row["name"],
            version=int(row["version"]),
            document=dict(row["document"]),
            created_at_ms=int(row["created_at_ms"]),
            updated_at_ms=int(row["updated_at_ms"]),
            created_by=row.get("created_by"),
            deleted_at_ms=row.get("deleted_at_ms"),
        )


WorkflowPage = Page[StoredWorkflow]
"""One page of a workflow listing; ``next_cursor`` is ``None`` on the last page."""


@dataclass(frozen=True)
class Revision:
    """One saved version of a workflow (``document`` is ``None`` in listings)."""

    workflow_id: str
    version: int
    created_at_ms: int
    created_by: str | None
    message: str | None
    document: dict[str, Any] | None = None

    @classmethod
    def from_row(cls, row: Row) -> Revision:
        """Build from a ``workflow_revisions`` row."""
        document = row.get("document")
        return cls(
            workflow_id=row["workflow_id"],
            version=int(row["version"]),
            created_at_ms=int(row["created_at_ms"]),
            created_by=row.get("created_by"),
            message=row.get("message"),
            document=dict(document) if document is not None else None,
        )


@dataclass(frozen=True)
class ImportItem:
    """What an import did with one document."""

    workflow: StoredWorkflow
    action: ImportAction


@dataclass(frozen=True)
class ValidationReport:
    """The result of :meth:`WorkflowService.validate`.

    ``errors`` items have ``node_id``, ``node_type``, ``field``, ``value``, ``error`` and
    ``code``, plus ``path`` and ``line`` for problems found while parsing. ``warnings``
    (same shape) do not make it invalid: a credential it names that is not stored yet.
    """

    valid: bool
    errors: list[dict[str, Any]]
    document: dict[str, Any] | None = None
    warnings: list[dict[str, Any]] = field(default_factory=list)


@dataclass(frozen=True)
class PatchOutcome:
    """The result of an EditOps batch: what :func:`apply_ops` said, and what was saved."""

    result: PatchResult
    workflow: StoredWorkflow
    saved: bool

    @property
    def ok(self) -> bool:
        """Nothing was skipped and nothing is invalid."""
        return self.result.ok

    @property
    def version(self) -> int:
        """The workflow version after the batch (unchanged when nothing was saved)."""
        return self.workflow.version
