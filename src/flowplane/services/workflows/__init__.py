"""WorkflowService: stored, versioned workflow documents and their revisions.

Every change (create, update, import, restore, an EditOps batch that applied something)
bumps the version and writes a revision row in the same transaction, so the history is
complete. Versions are compared-and-swapped (``UPDATE ... WHERE version = expected``), which
gives optimistic concurrency without row locks on both SQLite and PostgreSQL. Deletion is
soft: the row stays, invisible, and runs keep the copy of the document they pinned.

Every public method takes the :class:`~flowplane.services.caller.Caller`: reading needs the
viewer role, writing editor, running executor. Reading an object in a namespace the caller
does not see raises :class:`~flowplane.errors.WorkflowNotFound`; creating in a namespace
the caller may not use raises :class:`~flowplane.errors.Forbidden`. The caller's name goes
on the revision, its actor in the audit log.

The package: ``records`` (what the service returns), ``documents`` (canonical form, import
bodies), ``versions`` (the transactional write of a version), and the service in parts:
``reads`` (parse, validate, get, list), ``revisions``, ``import_export``, ``patching``
(EditOps) and ``service`` (create, update, delete, run).
"""

from __future__ import annotations

from flowplane.services.workflows.documents import canonical_document, split_documents
from flowplane.services.workflows.records import (
    ANY_VERSION,
    ExpectedVersion,
    ExportFormat,
    ImportItem,
    PatchOutcome,
    Revision,
    StoredWorkflow,
    ValidationReport,
    WorkflowPage,
)
from flowplane.services.workflows.service import WorkflowService

__all__ = [
    "ANY_VERSION",
    "ExpectedVersion",
    "ExportFormat",
    "ImportItem",
    "PatchOutcome",
    "Revision",
    "StoredWorkflow",
    "ValidationReport",
    "WorkflowPage",
    "WorkflowService",
    "canonical_document",
    "split_documents",
]
