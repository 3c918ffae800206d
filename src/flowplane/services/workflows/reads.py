"""WorkflowReader: parsing, validation and reads; the base of the service's other parts."""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

from flowplane.connectors.registry import Registry
from flowplane.engine.secrets import ENV_PREFIX
from flowplane.errors import DocumentError, WorkflowEmpty, WorkflowInvalid
from flowplane.model.document import Workflow
from flowplane.model.graph import check_workflow, credential_references
from flowplane.model.yaml import lines_of, parse_path
from flowplane.model.yaml import parse_workflow as _parse_workflow
from flowplane.services.caller import Caller
from flowplane.services.paging import visible_page
from flowplane.services.runs import RunService
from flowplane.services.workflows import versions
from flowplane.services.workflows.documents import canonical_document
from flowplane.services.workflows.records import StoredWorkflow, ValidationReport, WorkflowPage
from flowplane.store import credential_queries
from flowplane.store import workflow_queries as q
from flowplane.store.base import Store
from flowplane.store.tx import Tx

__all__ = ["WorkflowReader"]


def _issue_from_parse(err: dict[str, Any]) -> dict[str, Any]:
    return {
        "node_id": err.get("node_id"),
        "node_type": err.get("node_type"),
        "field": err.get("field"),
        "value": err.get("value"),
        "error": err.get("error", ""),
        "code": err.get("code") or "invalid_document",
        "path": err.get("path"),
        "line": err.get("line"),
    }


def _located(
    document: dict[str, Any] | str | bytes, wf: Workflow, errors: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    """The graph check's ``errors`` with the ``path`` and ``line`` of what each one names
    (the node's field, else the node), the line only when the document came as text."""
    index = {node.id: i for i, node in enumerate(wf.nodes)}
    paths: list[str | None] = []
    for e in errors:
        node_id, field = e.get("node_id"), e.get("field")
        if node_id in index:
            paths.append(f"nodes[{index[node_id]}]" + (f".{field}" if field else ""))
        else:
            paths.append(field if isinstance(field, str) and field else None)
    lines: list[int | None] = [None] * len(errors)
    if not isinstance(document, dict):
        found = lines_of(document, [parse_path(p) for p in paths if p is not None])
        at = iter(found)
        lines = [next(at) if p is not None else None for p in paths]
    return [dict(e, path=p, line=n) for e, p, n in zip(errors, paths, lines, strict=True)]


class WorkflowReader:
    """Parse, validate and read stored workflows (what every other part builds on)."""

    def __init__(self, store: Store, registry: Registry, runs: RunService) -> None:
        self.store = store
        self.registry = registry
        self.runs = runs

    def parse(
        self, document: dict[str, Any] | str | bytes, *, source: str = "<request>"
    ) -> Workflow:
        """Parse and fully validate a document (structure, types, params, references).

        Raises:
            DocumentError: the text cannot be parsed.
            WorkflowInvalid: the workflow is invalid; ``errors`` lists every problem.
        """
        wf = _parse_workflow(document, source=source, catalog=self.registry)
        check_workflow(wf, self.registry)
        return wf

    def parse_draft(
        self, document: dict[str, Any] | str | bytes, *, source: str = "<request>"
    ) -> Workflow:
        """Like :meth:`parse`, but a workflow without nodes (a draft) is accepted.

        Raises:
            DocumentError, WorkflowInvalid: as :meth:`parse`, for anything but emptiness.
        """
        wf = _parse_workflow(document, source=source, catalog=self.registry)
        try:
            check_workflow(wf, self.registry)
        except WorkflowEmpty:
            pass
        return wf

    async def validate(
        self, caller: Caller, document: dict[str, Any] | str | bytes
    ) -> ValidationReport:
        """Validate a document without storing it (viewer); never raises for an invalid one.

        A valid document's ``warnings`` name the credentials it uses that are neither
        stored in its namespace nor set in this process's environment
        (``FLOWPLANE_SECRET_<NAME>``): its runs would fail with ``credential_missing``.
        """
        caller.require("viewer")
        try:
            wf = _parse_workflow(document, source="<request>", catalog=self.registry)
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
            errors = _located(document, wf, exc.extra.get("errors", []))
            return ValidationReport(valid=False, errors=errors, document=canonical_document(wf))
        warnings = await self._credential_warnings(wf)
        return ValidationReport(
            valid=True, errors=[], document=canonical_document(wf), warnings=warnings
        )

    async def _credential_warnings(self, wf: Workflow) -> list[dict[str, Any]]:
        """One warning per node and credential it uses that exists nowhere."""
        used = [(node.id, node.type, name) for node, name in credential_references(wf)]
        wanted = {name for _, _, name in used}
        wanted -= {name for name in wanted if (ENV_PREFIX + name) in os.environ}
        if not wanted:
            return []
        rows = await self.store.read(
            lambda tx: credential_queries.by_names(tx, wf.namespace, wanted)
        )
        missing = wanted - {row.name for row in rows}
        return [
            {
                "node_id": node_id,
                "node_type": node_type,
                "field": "params",
                "value": name,
                "error": f"credential {name!r} is not stored in namespace {wf.namespace!r}: "
                f"runs will fail until it is (flowplane secrets set {name} -n {wf.namespace}, "
                "or POST /v1/credentials)",
                "code": "credential_missing",
                "path": None,
                "line": None,
            }
            for node_id, node_type, name in used
            if name in missing
        ]

    @staticmethod
    def _load(tx: Tx, caller: Caller, workflow_id: str) -> StoredWorkflow:
        """The live workflow a call refers to, in ``tx`` (``WorkflowNotFound`` if not visible)."""
        return versions.visible(q.get_workflow_row(tx, workflow_id), workflow_id, caller.namespaces)

    async def get(self, caller: Caller, workflow_id: str) -> StoredWorkflow:
        """Return the live workflow ``workflow_id`` (viewer).

        Raises:
            WorkflowNotFound: absent, deleted, or in a namespace the caller does not see.
        """
        caller.require("viewer")
        return await self.store.read(lambda tx: self._load(tx, caller, workflow_id))

    async def get_by_name(self, caller: Caller, namespace: str, name: str) -> StoredWorkflow:
        """Return the live workflow called ``name`` in ``namespace`` (viewer)."""
        caller.require("viewer")
        row = await self.store.read(lambda tx: q.get_workflow_by_name(tx, namespace, name))
        return versions.visible(row, name, caller.namespaces)

    async def resolve(
        self, caller: Caller, ref: str, *, namespace: str | None = None
    ) -> StoredWorkflow:
        """Return the workflow whose id is ``ref``, else the one named ``ref`` in
        ``namespace`` (default ``default``); viewer."""
        caller.require("viewer")

        def fn(tx: Tx) -> StoredWorkflow | None:
            found = q.get_workflow_row(tx, ref)
            return found or q.get_workflow_by_name(tx, namespace or "default", ref)

        return versions.visible(await self.store.read(fn), ref, caller.namespaces)

    async def list_workflows(
        self,
        caller: Caller,
        *,
        namespaces: Sequence[str] | None = None,
        limit: int = 50,
        cursor: str | None = None,
    ) -> WorkflowPage:
        """A page of live workflows in creation order, in ``namespaces`` the caller sees
        (``None``: all); pass ``next_cursor`` on. Viewer."""
        caller.require("viewer")

        def read(tx: Tx, visible: list[str] | None, n: int) -> list[StoredWorkflow]:
            return q.list_workflow_rows(tx, namespaces=visible, after_id=cursor, limit=n)

        limit = max(1, min(limit, 500))
        return await visible_page(self.store, caller, namespaces, limit, read)
