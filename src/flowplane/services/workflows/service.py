"""WorkflowService: every operation on stored workflows, assembled from its parts."""

from __future__ import annotations

import dataclasses
from typing import Any

from flowplane.errors import PreconditionRequired, WorkflowNotFound
from flowplane.services.caller import Caller
from flowplane.services.declared import sync_workflow_triggers
from flowplane.services.runs import StartResult, StoredRef
from flowplane.services.workflows import versions
from flowplane.services.workflows.documents import canonical_document, draft_source, in_namespace
from flowplane.services.workflows.import_export import ImportExportMixin
from flowplane.services.workflows.patching import PatchMixin
from flowplane.services.workflows.records import ExpectedVersion, StoredWorkflow
from flowplane.services.workflows.revisions import RevisionsMixin
from flowplane.store import audit
from flowplane.store import workflow_queries as q
from flowplane.store.tx import Tx

__all__ = ["WorkflowService"]


class WorkflowService(RevisionsMixin, ImportExportMixin, PatchMixin):
    """Create, read, change, version, import/export and run stored workflows."""

    async def create(
        self,
        caller: Caller,
        document: dict[str, Any] | str | bytes,
        *,
        message: str | None = None,
    ) -> StoredWorkflow:
        """Validate and store a new workflow at version 1.

        A draft is accepted: a document without nodes (even ``{}``, which is given the
        name ``draft-<id>``) is stored, and can be edited with EditOps; running it raises
        :class:`~flowplane.errors.WorkflowEmpty` until it has nodes.

        Raises:
            DocumentError, WorkflowInvalid: the document is unreadable or invalid.
            Forbidden: its namespace is not one the caller may use.
            WorkflowExists: a live workflow has that name in the namespace.
        """
        caller.require("editor")
        wf = self.parse_draft(draft_source(document))
        versions.check_writable(wf.namespace, caller.namespaces)
        doc = canonical_document(wf)
        who = caller.actor
        return await self.store.transact(
            lambda tx: versions.insert(tx, doc, caller.name, message or "created", actor=who)
        )

    async def create_draft(
        self, caller: Caller, *, name: str | None = None, description: str | None = None
    ) -> StoredWorkflow:
        """Store an empty draft (no nodes) for EditOps to fill in.

        It goes to the caller's namespace when the caller has exactly one (a key of one
        team), else to ``default``; without ``name`` it is called ``draft-<id>``.

        Raises:
            Forbidden: the caller may not write in that namespace.
            WorkflowExists, WorkflowInvalid: as for :meth:`create` (a taken or bad name).
        """
        home = caller.namespaces[0] if caller.namespaces and len(caller.namespaces) == 1 else None
        document: dict[str, Any] = {"nodes": []}
        if name is not None:
            document["name"] = name
        if description:
            document["description"] = description
        if home is not None:
            document["namespace"] = home
        return await self.create(caller, document)

    async def update(
        self,
        caller: Caller,
        workflow_id: str,
        document: dict[str, Any] | str | bytes,
        *,
        expected_version: ExpectedVersion,
        message: str | None = None,
    ) -> StoredWorkflow:
        """Replace the document, as a new version; an identical document changes nothing.

        Args:
            workflow_id: the workflow.
            document: the new document; its ``namespace`` may be omitted, not changed.
            expected_version: the version the caller read (``If-Match``), or
                :data:`ANY_VERSION`; ``None`` is refused.
            message: recorded on the revision.

        Raises:
            PreconditionRequired: ``expected_version`` is ``None``.
            VersionMismatch: the workflow is at another version (``current`` says which).
            WorkflowNotFound, WorkflowInvalid, WorkflowExists: as for :meth:`create`.
        """
        caller.require("editor")
        if expected_version is None:
            raise PreconditionRequired(
                'updating a workflow needs If-Match with the version you read, e.g. If-Match: "3"'
            )
        wf = self.parse_draft(document)
        who = caller.actor

        def fn(tx: Tx) -> StoredWorkflow:
            current = self._load(tx, caller, workflow_id)
            versions.check_version(current, expected_version)
            doc = in_namespace(wf, current.namespace)
            if doc == current.document:
                return current
            return versions.save(tx, current, doc, caller.name, message or "updated", actor=who)

        return await self.store.transact(fn)

    async def delete(
        self, caller: Caller, workflow_id: str, *, expected_version: ExpectedVersion = None
    ) -> None:
        """Soft-delete the workflow; runs keep their pinned copy, the name becomes free."""
        caller.require("editor")
        who = caller.actor

        def fn(tx: Tx) -> None:
            current = self._load(tx, caller, workflow_id)
            if expected_version is not None:
                versions.check_version(current, expected_version)
            if not q.soft_delete_workflow(tx, workflow_id, tx.now_ms):
                raise WorkflowNotFound(f"workflow {workflow_id!r} not found")
            sync_workflow_triggers(tx, dataclasses.replace(current, deleted_at_ms=tx.now_ms))
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

    async def start_run(
        self,
        caller: Caller,
        workflow_id: str,
        run_input: Any = None,
        *,
        idempotency_key: str | None = None,
        request_hash: str | None = None,
        run_id: str | None = None,
        trigger: str = "api",
    ) -> StartResult:
        """Dispatch a run of the workflow's current version (the run pins that document).

        Raises:
            WorkflowNotFound: the workflow is not visible.
            WorkflowInvalid, InputInvalid: the workflow or the input is invalid.
            IdempotencyKeyReused: the key was used with another request.
        """
        caller.require("executor")
        return await self.runs.start_stored(
            caller,
            StoredRef(workflow_id),
            run_input,
            idempotency_key=idempotency_key,
            request_hash=request_hash,
            run_id=run_id,
            trigger=trigger,
            audit_as=Caller.system(),
        )
