"""WorkflowReader: parsing, validation and reads; the base of the service's other parts."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from flowplane.connectors.registry import Registry
from flowplane.errors import DocumentError, WorkflowInvalid
from flowplane.model.document import Workflow
from flowplane.model.graph import check_workflow
from flowplane.model.yaml import parse_workflow as _parse_workflow
from flowplane.services.paging import paginate
from flowplane.services.runs import RunService
from flowplane.services.workflows import versions
from flowplane.services.workflows.documents import canonical_document
from flowplane.services.workflows.records import StoredWorkflow, ValidationReport, WorkflowPage
from flowplane.store import workflow_queries as q
from flowplane.store.base import Store
from flowplane.store.tx import Row, Tx

__all__ = ["WorkflowReader"]


def _issue_from_parse(err: dict[str, Any]) -> dict[str, Any]:
    return {
        "node_id": err.get("node_id"),
        "node_type": None,
        "field": err.get("field"),
        "value": None,
        "error": err.get("error", ""),
        "code": "invalid_document",
        "path": err.get("path"),
        "line": err.get("line"),
    }


class WorkflowReader:
    """Parse, validate and read stored workflows (what every other part builds on)."""

    def __init__(self, store: Store, registry: Registry, runs: RunService) -> None:
        self.store = store
        self.registry = registry
        self.runs = runs

    # --- parsing ------------------------------------------------------------------------

    def parse(
        self, document: dict[str, Any] | str | bytes, *, source: str = "<request>"
    ) -> Workflow:
        """Parse and fully validate a document (structure, types, params, references).

        Raises:
            DocumentError: the text cannot be parsed.
            WorkflowInvalid: the workflow is invalid; ``errors`` lists every problem.
        """
        wf = _parse_workflow(document, source=source)
        check_workflow(wf, self.registry)
        return wf

    def validate(self, document: dict[str, Any] | str | bytes) -> ValidationReport:
        """Validate a document without storing it; never raises for an invalid document."""
        try:
            wf = _parse_workflow(document, source="<request>")
        except DocumentError as exc:
            error = {
                "node_id": None,
                "node_type": None,
                "field": None,
                "value": None,
                "error": exc.detail,
                "code": exc.code,
                "path": None,
                "line": exc.extra.get("line"),
            }
            return ValidationReport(valid=False, errors=[error])
        except WorkflowInvalid as exc:
            errors = [_issue_from_parse(e) for e in exc.extra.get("errors", [])]
            return ValidationReport(valid=False, errors=errors)
        try:
            check_workflow(wf, self.registry)
        except WorkflowInvalid as exc:
            errors = [dict(e, path=None, line=None) for e in exc.extra.get("errors", [])]
            return ValidationReport(valid=False, errors=errors, document=canonical_document(wf))
        return ValidationReport(valid=True, errors=[], document=canonical_document(wf))

    # --- reads --------------------------------------------------------------------------

    async def get(
        self, workflow_id: str, *, namespaces: Sequence[str] | None = None
    ) -> StoredWorkflow:
        """Return the live workflow ``workflow_id``.

        Raises:
            WorkflowNotFound: absent, deleted, or in a namespace not in ``namespaces``.
        """
        row = await self.store.read(lambda tx: q.get_workflow_row(tx, workflow_id))
        return versions.visible(row, workflow_id, namespaces)

    async def get_by_name(
        self, namespace: str, name: str, *, namespaces: Sequence[str] | None = None
    ) -> StoredWorkflow:
        """Return the live workflow called ``name`` in ``namespace``."""
        row = await self.store.read(lambda tx: q.get_workflow_by_name(tx, namespace, name))
        return versions.visible(row, name, namespaces)

    async def resolve(
        self,
        ref: str,
        *,
        namespace: str | None = None,
        namespaces: Sequence[str] | None = None,
    ) -> StoredWorkflow:
        """Return the workflow whose id is ``ref``, else the one named ``ref`` in
        ``namespace`` (default ``default``)."""

        def fn(tx: Tx) -> Row | None:
            row = q.get_workflow_row(tx, ref)
            return row or q.get_workflow_by_name(tx, namespace or "default", ref)

        return versions.visible(await self.store.read(fn), ref, namespaces)

    async def list_workflows(
        self,
        *,
        namespaces: Sequence[str] | None = None,
        limit: int = 50,
        cursor: str | None = None,
    ) -> WorkflowPage:
        """Return a page of live workflows in creation order; pass ``next_cursor`` on."""
        limit = max(1, min(limit, 500))
        rows = await self.store.read(
            lambda tx: q.list_workflow_rows(
                tx, namespaces=namespaces, after_id=cursor, limit=limit + 1
            )
        )
        return paginate(rows, limit).map(StoredWorkflow.from_row)
