"""Reading stored workflows inside an engine transaction (sub-workflows, retries)."""

from __future__ import annotations

import sqlalchemy as sa

from flowplane.store import schema as t
from flowplane.store.records.workflows import WorkflowRecord
from flowplane.store.tx.base import TxBase


class WorkflowsTx(TxBase):
    """Stored workflows, by id or by name."""

    def get_workflow(self, workflow_id: str) -> WorkflowRecord | None:
        """Return a stored workflow by id (deleted ones included)."""
        return self.one(
            WorkflowRecord, sa.select(t.workflows).where(t.workflows.c.id == workflow_id)
        )

    def workflow_by_name(self, namespace: str, name: str) -> WorkflowRecord | None:
        """Return the live stored workflow ``name`` in ``namespace``."""
        c = t.workflows.c
        return self.one(
            WorkflowRecord,
            sa.select(t.workflows).where(
                c.namespace == namespace, c.name == name, c.deleted_at_ms.is_(None)
            ),
        )
