"""The records a :class:`~flowplane.services.workflows.WorkflowService` returns."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from flowplane.model.edits import PatchResult
from flowplane.services.paging import Page
from flowplane.store.records import RevisionRecord, WorkflowRecord

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


StoredWorkflow = WorkflowRecord
"""A stored workflow at its current version (the store's record)."""

WorkflowPage = Page[StoredWorkflow]
"""One page of a workflow listing; ``next_cursor`` is ``None`` on the last page."""


Revision = RevisionRecord
"""One saved version of a workflow (``document`` is ``None`` in listings)."""


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
