"""RevisionsMixin: a workflow's saved versions, and restoring one of them."""

from __future__ import annotations

from flowplane.errors import NotFound
from flowplane.services.caller import Caller
from flowplane.services.workflows import versions
from flowplane.services.workflows.reads import WorkflowReader
from flowplane.services.workflows.records import ExpectedVersion, Revision, StoredWorkflow
from flowplane.store import workflow_queries as q
from flowplane.store.tx import Tx

__all__ = ["RevisionsMixin"]


class RevisionsMixin(WorkflowReader):
    """List and read revisions; restore an old version as a new one."""

    async def revisions(self, caller: Caller, workflow_id: str) -> list[Revision]:
        """Return every revision of the workflow, newest first (without documents); viewer."""
        caller.require("viewer")

        def fn(tx: Tx) -> list[Revision]:
            self._load(tx, caller, workflow_id)
            return q.list_revision_rows(tx, workflow_id)

        return await self.store.read(fn)

    async def revision(self, caller: Caller, workflow_id: str, version: int) -> Revision:
        """Return one revision with its document (viewer).

        Raises:
            WorkflowNotFound: the workflow is not visible.
            NotFound: it has no such version.
        """
        caller.require("viewer")

        def fn(tx: Tx) -> Revision | None:
            self._load(tx, caller, workflow_id)
            return q.get_revision_row(tx, workflow_id, version)

        revision = await self.store.read(fn)
        if revision is None:
            raise NotFound(f"workflow {workflow_id!r} has no version {version}")
        return revision

    async def restore(
        self,
        caller: Caller,
        workflow_id: str,
        version: int,
        *,
        expected_version: ExpectedVersion = None,
    ) -> StoredWorkflow:
        """Save the document of ``version`` as a new version (history is never rewritten)."""
        caller.require("editor")
        who = caller.actor

        def fn(tx: Tx) -> StoredWorkflow:
            current = self._load(tx, caller, workflow_id)
            if expected_version is not None:
                versions.check_version(current, expected_version)
            revision = q.get_revision_row(tx, workflow_id, version)
            if revision is None:
                raise NotFound(f"workflow {workflow_id!r} has no version {version}")
            doc = dict(revision.document or {})
            return versions.save(
                tx,
                current,
                doc,
                caller.name,
                f"restored from version {version}",
                actor=who,
                action="workflow.restore",
            )

        return await self.store.transact(fn)
