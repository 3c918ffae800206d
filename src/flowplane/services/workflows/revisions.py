"""RevisionsMixin: a workflow's saved versions, and restoring one of them."""

from __future__ import annotations

from collections.abc import Sequence

from flowplane.errors import NotFound
from flowplane.services.context import current_actor
from flowplane.services.workflows import versions
from flowplane.services.workflows.reads import WorkflowReader
from flowplane.services.workflows.records import ExpectedVersion, Revision, StoredWorkflow
from flowplane.store import workflow_queries as q
from flowplane.store.tx import Row, Tx

__all__ = ["RevisionsMixin"]


class RevisionsMixin(WorkflowReader):
    """List and read revisions; restore an old version as a new one."""

    async def revisions(
        self, workflow_id: str, *, namespaces: Sequence[str] | None = None
    ) -> list[Revision]:
        """Return every revision of the workflow, newest first (without documents)."""

        def fn(tx: Tx) -> list[Row]:
            versions.visible(q.get_workflow_row(tx, workflow_id), workflow_id, namespaces)
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
            versions.visible(q.get_workflow_row(tx, workflow_id), workflow_id, namespaces)
            return q.get_revision_row(tx, workflow_id, version)

        row = await self.store.read(fn)
        if row is None:
            raise NotFound(f"workflow {workflow_id!r} has no version {version}")
        return Revision.from_row(row)

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
        who = current_actor()

        def fn(tx: Tx) -> Row:
            current = versions.visible(q.get_workflow_row(tx, workflow_id), workflow_id, namespaces)
            if expected_version is not None:
                versions.check_version(current, expected_version)
            revision = q.get_revision_row(tx, workflow_id, version)
            if revision is None:
                raise NotFound(f"workflow {workflow_id!r} has no version {version}")
            doc = dict(revision["document"])
            return versions.save(
                tx,
                current,
                doc,
                restored_by,
                f"restored from version {version}",
                actor=who,
                action="workflow.restore",
            )

        return StoredWorkflow.from_row(await self.store.transact(fn))
