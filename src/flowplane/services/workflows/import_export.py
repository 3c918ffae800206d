"""ImportExportMixin: a workflow as YAML or JSON text, and importing many at once."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from flowplane.errors import DocumentError, InvalidInput, WorkflowInvalid
from flowplane.model.document import Workflow
from flowplane.model.yaml import dump_json, dump_yaml
from flowplane.services.caller import Caller
from flowplane.services.workflows import versions
from flowplane.services.workflows.documents import canonical_document
from flowplane.services.workflows.reads import WorkflowReader
from flowplane.services.workflows.records import (
    ExportFormat,
    ImportItem,
    StoredWorkflow,
)
from flowplane.store import workflow_queries as q
from flowplane.store.tx import Tx

__all__ = ["MAX_IMPORT_DOCUMENTS", "ImportExportMixin"]

MAX_IMPORT_DOCUMENTS = 500


class ImportExportMixin(WorkflowReader):
    """Export one workflow as text; create or update many from documents."""

    async def export(
        self, caller: Caller, workflow_id: str, fmt: ExportFormat = "yaml"
    ) -> tuple[str, StoredWorkflow]:
        """Return the document as YAML or JSON text (importing it gives the same document)."""
        if fmt not in ("yaml", "json"):
            raise InvalidInput(f"unknown export format {fmt!r}; use yaml or json")
        wf = await self.get(caller, workflow_id)
        text = dump_yaml(wf.document) if fmt == "yaml" else dump_json(wf.document)
        return text, wf

    async def import_documents(
        self, caller: Caller, documents: Sequence[dict[str, Any] | str | bytes]
    ) -> list[ImportItem]:
        """Create or update (by namespace and name) many workflows in one transaction.

        A document equal to the stored one is left ``unchanged`` (no new version). Nothing
        is stored unless every document is valid.

        Raises:
            WorkflowInvalid: some documents are invalid; ``errors`` items carry ``index``.
            InvalidInput: too many documents, or two with the same namespace and name.
            Forbidden: a namespace the caller may not use.
        """
        caller.require("editor")
        if len(documents) > MAX_IMPORT_DOCUMENTS:
            raise InvalidInput(f"an import holds at most {MAX_IMPORT_DOCUMENTS} documents")
        parsed = self._parse_many(documents)
        seen: set[tuple[str, str]] = set()
        for wf in parsed:
            versions.check_writable(wf.namespace, caller.namespaces)
            if (wf.namespace, wf.name) in seen:
                raise InvalidInput(f"the import holds workflow {wf.namespace}/{wf.name} twice")
            seen.add((wf.namespace, wf.name))
        docs = [canonical_document(wf) for wf in parsed]
        who = caller.actor
        imported_by = caller.name

        def fn(tx: Tx) -> list[ImportItem]:
            out: list[ImportItem] = []
            for doc in docs:
                current = q.get_workflow_by_name(tx, doc["namespace"], doc["name"])
                if current is None:
                    created = versions.insert(
                        tx, doc, imported_by, "imported", actor=who, action="workflow.import"
                    )
                    out.append(ImportItem(created, "created"))
                elif current.document == doc:
                    out.append(ImportItem(current, "unchanged"))
                else:
                    updated = versions.save(
                        tx,
                        current,
                        doc,
                        imported_by,
                        "imported",
                        actor=who,
                        action="workflow.import",
                    )
                    out.append(ImportItem(updated, "updated"))
            return out

        return await self.store.transact(fn)

    def _parse_many(self, documents: Sequence[dict[str, Any] | str | bytes]) -> list[Workflow]:
        parsed: list[Workflow] = []
        errors: list[dict[str, Any]] = []
        for index, document in enumerate(documents):
            try:
                parsed.append(self.parse(document, source=f"document {index}"))
            except DocumentError as exc:
                errors.append({"index": index, "error": exc.detail, "code": exc.code})
            except WorkflowInvalid as exc:
                found = exc.extra.get("errors") or [{"error": exc.detail}]
                errors.extend({"index": index, **e} for e in found)
        if errors:
            count = len({e["index"] for e in errors})
            raise WorkflowInvalid(
                f"{count} of {len(documents)} document(s) are invalid; nothing was imported",
                errors=errors,
            )
        return parsed
