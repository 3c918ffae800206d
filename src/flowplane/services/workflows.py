"""WorkflowService: stored, versioned workflow documents and their revisions.

Every change (create, update, import, restore, an EditOps batch that applied something)
bumps the version and writes a revision row in the same transaction, so the history is
complete. Versions are compared-and-swapped (``UPDATE ... WHERE version = expected``), which
gives optimistic concurrency without row locks on both SQLite and PostgreSQL. Deletion is
soft: the row stays, invisible, and runs keep the copy of the document they pinned.

``namespaces`` arguments are the namespaces the caller may see (``None`` = all). Reading an
object in another namespace raises :class:`~flowplane.errors.WorkflowNotFound`; creating in
a namespace the caller may not use raises :class:`~flowplane.errors.Forbidden`.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from flowplane.connectors.registry import Registry
from flowplane.engine.transitions import new_id
from flowplane.errors import (
    DocumentError,
    Forbidden,
    InvalidInput,
    NotFound,
    PreconditionRequired,
    VersionMismatch,
    WorkflowExists,
    WorkflowInvalid,
    WorkflowNotFound,
)
from flowplane.model.document import Workflow
from flowplane.model.edits import PatchResult, apply_ops
from flowplane.model.graph import check_workflow
from flowplane.model.yaml import MAX_DOCUMENT_BYTES, dump_json, dump_yaml, load_document
from flowplane.model.yaml import parse_workflow as _parse_workflow
from flowplane.services.paging import Page, paginate
from flowplane.services.runs import RunService, StartResult
from flowplane.services.schedules import sync_workflow_triggers
from flowplane.store import audit
from flowplane.store import workflow_queries as q
from flowplane.store.base import Store
from flowplane.store.tx import Row, Tx

__all__ = [
    "ANY_VERSION",
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

ANY_VERSION: Literal["*"] = "*"
"""``If-Match: *``: the caller accepts whatever the current version is."""

ExpectedVersion = int | Literal["*"] | None
ExportFormat = Literal["yaml", "json"]
ImportAction = Literal["created", "updated", "unchanged"]
MAX_IMPORT_DOCUMENTS = 500
PATCH_ATTEMPTS = 3

_DOC_SEPARATOR = re.compile(r"^---[ \t]*(?:#.*)?$", re.M)


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
    ``code``, plus ``path`` and ``line`` for problems found while parsing.
    """

    valid: bool
    errors: list[dict[str, Any]]
    document: dict[str, Any] | None = None


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


def canonical_document(wf: Workflow) -> dict[str, Any]:
    """Return the stored form of ``wf``: name, namespace, then the fields that were set."""
    data = wf.to_document()
    for key in ("name", "namespace", "version"):
        data.pop(key, None)
    return {"name": wf.name, "namespace": wf.namespace, **data}


def split_documents(text: str | bytes, *, source: str = "<request>") -> list[dict[str, Any]]:
    """Split an import body into workflow documents.

    Accepts a JSON array of documents, a JSON/YAML object ``{"workflows": [...]}``, one
    document, or a YAML stream of documents separated by ``---`` lines.

    Raises:
        DocumentError: a part cannot be parsed.
    """
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            raise DocumentError(f"{source}: body is not valid UTF-8: {exc.reason}") from None
    stripped = text.lstrip()
    if stripped.startswith("["):
        return _json_list(text, source)
    chunks = [c for c in _DOC_SEPARATOR.split(text) if _has_content(c)]
    if len(chunks) == 1:
        doc = load_document(chunks[0], source=source)
        wrapped = doc.get("workflows")
        if isinstance(wrapped, list) and set(doc) == {"workflows"}:
            return _checked_list(wrapped, source)
        return [doc]
    return [load_document(c, source=f"{source} document {i}") for i, c in enumerate(chunks)]


def _has_content(chunk: str) -> bool:
    lines = (line.strip() for line in chunk.splitlines())
    return any(line and not line.startswith("#") and line != "..." for line in lines)


def _json_list(text: str, source: str) -> list[dict[str, Any]]:
    if len(text) > MAX_DOCUMENT_BYTES * 16:
        raise DocumentError(f"{source}: the import is too large")
    try:
        data = json.loads(text)
    except (json.JSONDecodeError, RecursionError) as exc:
        raise DocumentError(f"{source}: invalid JSON: {exc}") from None
    return _checked_list(data, source)


def _checked_list(items: Any, source: str) -> list[dict[str, Any]]:
    if not isinstance(items, list) or not all(isinstance(i, dict) for i in items):
        raise DocumentError(f"{source}: expected a list of workflow documents")
    # Re-check each document with the same limits as a single upload.
    return [
        load_document(json.dumps(i), source=f"{source} document {n}") for n, i in enumerate(items)
    ]


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


class WorkflowService:
    """Create, read, change, version, import/export and run stored workflows."""

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
        return self._visible(row, workflow_id, namespaces)

    async def get_by_name(
        self, namespace: str, name: str, *, namespaces: Sequence[str] | None = None
    ) -> StoredWorkflow:
        """Return the live workflow called ``name`` in ``namespace``."""
        row = await self.store.read(lambda tx: q.get_workflow_by_name(tx, namespace, name))
        return self._visible(row, name, namespaces)

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

        return self._visible(await self.store.read(fn), ref, namespaces)

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

    async def revisions(
        self, workflow_id: str, *, namespaces: Sequence[str] | None = None
    ) -> list[Revision]:
        """Return every revision of the workflow, newest first (without documents)."""

        def fn(tx: Tx) -> list[Row]:
            self._visible(q.get_workflow_row(tx, workflow_id), workflow_id, namespaces)
            return q.list_revision_rows(tx, workflow_id)

        return [Revision.from_row(r) for r in await self.store.read(fn)]

    async def revision(
        self, workflow_id: str, version: int, *, namespaces: Sequence[str] | None = None
    ) -> Revision:
        """Return one revision with its document.

        Raises:
            WorkflowNotFound: the workflow is not visible.
            NotFound: it has no such version.
        """

        def fn(tx: Tx) -> Row | None:
            self._visible(q.get_workflow_row(tx, workflow_id), workflow_id, namespaces)
            return q.get_revision_row(tx, workflow_id, version)

        row = await self.store.read(fn)
        if row is None:
            raise NotFound(f"workflow {workflow_id!r} has no version {version}")
        return Revision.from_row(row)

    async def export(
        self,
        workflow_id: str,
        fmt: ExportFormat = "yaml",
        *,
        namespaces: Sequence[str] | None = None,
    ) -> tuple[str, StoredWorkflow]:
        """Return the document as YAML or JSON text (importing it gives the same document)."""
        if fmt not in ("yaml", "json"):
            raise InvalidInput(f"unknown export format {fmt!r}; use yaml or json")
        wf = await self.get(workflow_id, namespaces=namespaces)
        text = dump_yaml(wf.document) if fmt == "yaml" else dump_json(wf.document)
        return text, wf

    # --- writes -------------------------------------------------------------------------

    async def create(
        self,
        document: dict[str, Any] | str | bytes,
        *,
        namespaces: Sequence[str] | None = None,
        created_by: str | None = None,
        message: str | None = None,
    ) -> StoredWorkflow:
        """Validate and store a new workflow at version 1.

        Raises:
            DocumentError, WorkflowInvalid: the document is unreadable or invalid.
            Forbidden: its namespace is not one the caller may use.
            WorkflowExists: a live workflow has that name in the namespace.
        """
        wf = self.parse(document)
        _check_writable(wf.namespace, namespaces)
        doc = canonical_document(wf)
        who = audit.current_actor()
        row = await self.store.transact(
            lambda tx: self._insert(tx, doc, created_by, message or "created", actor=who)
        )
        return StoredWorkflow.from_row(row)

    async def update(
        self,
        workflow_id: str,
        document: dict[str, Any] | str | bytes,
        *,
        expected_version: ExpectedVersion,
        namespaces: Sequence[str] | None = None,
        updated_by: str | None = None,
        message: str | None = None,
    ) -> StoredWorkflow:
        """Replace the document, as a new version; an identical document changes nothing.

        Args:
            workflow_id: the workflow.
            document: the new document; its ``namespace`` may be omitted, not changed.
            expected_version: the version the caller read (``If-Match``), or
                :data:`ANY_VERSION`; ``None`` is refused.
            namespaces: the namespaces the caller may see.
            updated_by: recorded on the revision.
            message: recorded on the revision.

        Raises:
            PreconditionRequired: ``expected_version`` is ``None``.
            VersionMismatch: the workflow is at another version (``current`` says which).
            WorkflowNotFound, WorkflowInvalid, WorkflowExists: as for :meth:`create`.
        """
        if expected_version is None:
            raise PreconditionRequired(
                'updating a workflow needs If-Match with the version you read, e.g. If-Match: "3"'
            )
        wf = self.parse(document)
        who = audit.current_actor()

        def fn(tx: Tx) -> Row:
            current = self._visible(q.get_workflow_row(tx, workflow_id), workflow_id, namespaces)
            _check_version(current, expected_version)
            doc = _in_namespace(wf, current.namespace)
            if doc == current.document:
                return _row_of(current)
            return self._save(tx, current, doc, updated_by, message or "updated", actor=who)

        return StoredWorkflow.from_row(await self.store.transact(fn))

    async def delete(
        self,
        workflow_id: str,
        *,
        expected_version: ExpectedVersion = None,
        namespaces: Sequence[str] | None = None,
    ) -> None:
        """Soft-delete the workflow; runs keep their pinned copy, the name becomes free."""
        who = audit.current_actor()

        def fn(tx: Tx) -> None:
            current = self._visible(q.get_workflow_row(tx, workflow_id), workflow_id, namespaces)
            if expected_version is not None:
                _check_version(current, expected_version)
            if not q.soft_delete_workflow(tx, workflow_id, tx.now_ms):
                raise WorkflowNotFound(f"workflow {workflow_id!r} not found")
            sync_workflow_triggers(tx, {**_row_of(current), "deleted_at_ms": tx.now_ms})
            audit.record(
                tx,
                actor=who,
                action="workflow.delete",
                namespace=current.namespace,
                target_type="workflow",
                target_id=current.id,
                before_version=current.version,
                details={"name": current.name},
            )

        await self.store.transact(fn)

    async def restore(
        self,
        workflow_id: str,
        version: int,
        *,
        expected_version: ExpectedVersion = None,
        namespaces: Sequence[str] | None = None,
        restored_by: str | None = None,
    ) -> StoredWorkflow:
        """Save the document of ``version`` as a new version (history is never rewritten)."""
        who = audit.current_actor()

        def fn(tx: Tx) -> Row:
            current = self._visible(q.get_workflow_row(tx, workflow_id), workflow_id, namespaces)
            if expected_version is not None:
                _check_version(current, expected_version)
            revision = q.get_revision_row(tx, workflow_id, version)
            if revision is None:
                raise NotFound(f"workflow {workflow_id!r} has no version {version}")
            doc = dict(revision["document"])
            return self._save(
                tx,
                current,
                doc,
                restored_by,
                f"restored from version {version}",
                actor=who,
                action="workflow.restore",
            )

        return StoredWorkflow.from_row(await self.store.transact(fn))

    async def import_documents(
        self,
        documents: Sequence[dict[str, Any] | str | bytes],
        *,
        namespaces: Sequence[str] | None = None,
        imported_by: str | None = None,
    ) -> list[ImportItem]:
        """Create or update (by namespace and name) many workflows in one transaction.

        A document equal to the stored one is left ``unchanged`` (no new version). Nothing
        is stored unless every document is valid.

        Raises:
            WorkflowInvalid: some documents are invalid; ``errors`` items carry ``index``.
            InvalidInput: too many documents, or two with the same namespace and name.
            Forbidden: a namespace the caller may not use.
        """
        if len(documents) > MAX_IMPORT_DOCUMENTS:
            raise InvalidInput(f"an import holds at most {MAX_IMPORT_DOCUMENTS} documents")
        parsed = self._parse_many(documents)
        seen: set[tuple[str, str]] = set()
        for wf in parsed:
            _check_writable(wf.namespace, namespaces)
            if (wf.namespace, wf.name) in seen:
                raise InvalidInput(f"the import holds workflow {wf.namespace}/{wf.name} twice")
            seen.add((wf.namespace, wf.name))
        docs = [canonical_document(wf) for wf in parsed]
        who = audit.current_actor()

        def fn(tx: Tx) -> list[tuple[Row, ImportAction]]:
            out: list[tuple[Row, ImportAction]] = []
            for doc in docs:
                row = q.get_workflow_by_name(tx, doc["namespace"], doc["name"])
                if row is None:
                    row = self._insert(
                        tx, doc, imported_by, "imported", actor=who, action="workflow.import"
                    )
                    out.append((row, "created"))
                elif row["document"] == doc:
                    out.append((row, "unchanged"))
                else:
                    current = StoredWorkflow.from_row(row)
                    row = self._save(
                        tx,
                        current,
                        doc,
                        imported_by,
                        "imported",
                        actor=who,
                        action="workflow.import",
                    )
                    out.append((row, "updated"))
            return out

        results = await self.store.transact(fn)
        return [
            ImportItem(workflow=StoredWorkflow.from_row(row), action=action)
            for row, action in results
        ]

    async def patch(
        self,
        workflow_id: str,
        ops: list[Any],
        *,
        expected_version: ExpectedVersion = None,
        namespaces: Sequence[str] | None = None,
        edited_by: str | None = None,
    ) -> PatchOutcome:
        """Apply an EditOps batch; save a new version when something changed.

        The batch is applied to the current version outside the write transaction and
        saved with a compare-and-swap. Without ``expected_version`` a concurrent change
        makes the batch re-apply to the newer version (a few times); with it, the caller
        gets :class:`VersionMismatch`. A result that is not structurally a workflow (every
        node deleted, say) is not saved; validation errors do not stop the save, so an
        agent can repair a workflow over several batches.
        """
        who = audit.current_actor()
        for attempt in range(1, PATCH_ATTEMPTS + 1):
            current = await self.get(workflow_id, namespaces=namespaces)
            if expected_version is not None:
                _check_version(current, expected_version)
            result = apply_ops(current.document, ops, self.registry)
            if result.parsed:
                doc = canonical_document(Workflow.model_validate(result.workflow))
                result = dataclasses.replace(result, workflow=doc, changed=doc != current.document)
            if not (result.changed and result.parsed):
                return PatchOutcome(result=result, workflow=current, saved=False)
            message = "edit: " + "; ".join(a.description for a in result.applied)
            try:
                row = await self.store.transact(
                    functools.partial(
                        self._save,
                        current=current,
                        doc=result.workflow,
                        by=edited_by,
                        message=message,
                        actor=who,
                        action="workflow.patch",
                    )
                )
            except VersionMismatch:
                if expected_version is not None or attempt == PATCH_ATTEMPTS:
                    raise
                continue
            return PatchOutcome(result=result, workflow=StoredWorkflow.from_row(row), saved=True)
        raise AssertionError("unreachable")  # pragma: no cover

    async def start_run(
        self,
        workflow_id: str,
        run_input: Any = None,
        *,
        namespaces: Sequence[str] | None = None,
        idempotency_key: str | None = None,
        request_hash: str | None = None,
        run_id: str | None = None,
        triggered_by: str | None = None,
        trigger: str = "api",
    ) -> StartResult:
        """Dispatch a run of the workflow's current version (the run pins that document).

        Raises:
            WorkflowNotFound: the workflow is not visible.
            WorkflowInvalid, InputInvalid: the workflow or the input is invalid.
            IdempotencyKeyReused: the key was used with another request.
        """
        wf = await self.get(workflow_id, namespaces=namespaces)
        return await self.runs.start(
            wf.document,
            run_input,
            namespace=wf.namespace,
            workflow_id=wf.id,
            workflow_version=wf.version,
            idempotency_key=idempotency_key,
            request_hash=request_hash,
            trigger=trigger,
            triggered_by=triggered_by,
            run_id=run_id,
        )

    # --- internals ----------------------------------------------------------------------

    @staticmethod
    def _visible(row: Row | None, ref: str, namespaces: Sequence[str] | None) -> StoredWorkflow:
        if row is None or (namespaces is not None and row["namespace"] not in namespaces):
            raise WorkflowNotFound(f"workflow {ref!r} not found")
        return StoredWorkflow.from_row(row)

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

    @staticmethod
    def _insert(
        tx: Tx,
        doc: dict[str, Any],
        by: str | None,
        message: str,
        *,
        actor: audit.Actor = audit.SYSTEM,
        action: str = "workflow.create",
    ) -> Row:
        existing = q.get_workflow_by_name(tx, doc["namespace"], doc["name"])
        if existing is not None:
            raise WorkflowExists(
                f"a workflow named {doc['name']!r} already exists in namespace "
                f"{doc['namespace']!r}",
                id=existing["id"],
            )
        row: Row = {
            "id": new_id(),
            "namespace": doc["namespace"],
            "name": doc["name"],
            "version": 1,
            "document": doc,
            "created_at_ms": tx.now_ms,
            "updated_at_ms": tx.now_ms,
            "deleted_at_ms": None,
            "created_by": by,
        }
        q.insert_workflow(tx, row)
        q.insert_revision(
            tx,
            workflow_id=row["id"],
            version=1,
            document=doc,
            created_at_ms=tx.now_ms,
            created_by=by,
            message=message,
        )
        sync_workflow_triggers(tx, row)
        audit.record(
            tx,
            actor=actor,
            action=action,
            namespace=row["namespace"],
            target_type="workflow",
            target_id=row["id"],
            after_version=1,
            details={"name": row["name"]},
        )
        return row

    @staticmethod
    def _save(
        tx: Tx,
        current: StoredWorkflow,
        doc: dict[str, Any],
        by: str | None,
        message: str,
        *,
        actor: audit.Actor = audit.SYSTEM,
        action: str = "workflow.update",
    ) -> Row:
        """Write ``doc`` as version ``current.version + 1`` (compare-and-swap) + a revision."""
        name = str(doc.get("name", current.name))
        if name != current.name:
            other = q.get_workflow_by_name(tx, current.namespace, name)
            if other is not None and other["id"] != current.id:
                raise WorkflowExists(
                    f"a workflow named {name!r} already exists in namespace {current.namespace!r}",
                    id=other["id"],
                )
        version = current.version + 1
        values = {"name": name, "document": doc, "version": version, "updated_at_ms": tx.now_ms}
        if not q.update_workflow_if_version(tx, current.id, current.version, values):
            latest = q.get_workflow_row(tx, current.id)
            if latest is None:
                raise WorkflowNotFound(f"workflow {current.id!r} not found")
            raise VersionMismatch(
                f"workflow {current.id!r} changed concurrently; it is now at version "
                f"{latest['version']}",
                current=latest["version"],
            )
        q.insert_revision(
            tx,
            workflow_id=current.id,
            version=version,
            document=doc,
            created_at_ms=tx.now_ms,
            created_by=by,
            message=message,
        )
        saved = {**_row_of(current), **values}
        sync_workflow_triggers(tx, saved)
        audit.record(
            tx,
            actor=actor,
            action=action,
            namespace=current.namespace,
            target_type="workflow",
            target_id=current.id,
            before_version=current.version,
            after_version=version,
            details={"name": name},
        )
        return saved


def _row_of(wf: StoredWorkflow) -> Row:
    return dataclasses.asdict(wf)


def _check_writable(namespace: str, namespaces: Sequence[str] | None) -> None:
    if namespaces is not None and namespace not in namespaces:
        raise Forbidden(f"you may not write workflows in namespace {namespace!r}")


def _check_version(current: StoredWorkflow, expected: int | str) -> None:
    if expected == ANY_VERSION or expected == current.version:
        return
    raise VersionMismatch(
        f"workflow {current.id!r} is at version {current.version}, not {expected}; "
        "read it again and retry",
        current=current.version,
    )


def _in_namespace(wf: Workflow, namespace: str) -> dict[str, Any]:
    """The canonical document of ``wf`` kept in ``namespace`` (which it may omit)."""
    if "namespace" in wf.model_fields_set and wf.namespace != namespace:
        raise InvalidInput(
            f"a workflow cannot move from namespace {namespace!r} to {wf.namespace!r}; "
            "export it and import it into the other namespace"
        )
    return canonical_document(wf.model_copy(update={"namespace": namespace}))
