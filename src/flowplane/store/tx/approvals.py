"""Operations on the ``approvals`` table."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa

from flowplane.store import schema as t
from flowplane.store.records import ApprovalRecord
from flowplane.store.tx.base import TxBase


class ApprovalsTx(TxBase):
    """Approval requests of node runs waiting for a decision."""

    def insert_approval(self, values: dict[str, Any]) -> None:
        """Insert an approval request."""
        self.conn.execute(t.approvals.insert().values(**values))

    def get_approval(self, run_id: str, node_id: str, iteration: int) -> ApprovalRecord | None:
        """Return the approval of one node run (``waiting_ms`` counted to now)."""
        c = t.approvals.c
        row = self.conn.execute(
            sa.select(t.approvals).where(
                c.run_id == run_id, c.node_id == node_id, c.iteration == iteration
            )
        ).first()
        return (
            ApprovalRecord.from_row(row._mapping, now_ms=self.now_ms) if row is not None else None
        )

    def update_approvals(self, run_id: str, *, status_from: str, **values: Any) -> None:
        """Update every approval of a run currently in ``status_from``."""
        c = t.approvals.c
        self.conn.execute(
            t.approvals.update().where(c.run_id == run_id, c.status == status_from).values(**values)
        )

    def update_approval(self, approval_id: str, **values: Any) -> None:
        """Update one approval."""
        self.conn.execute(
            t.approvals.update().where(t.approvals.c.id == approval_id).values(**values)
        )

    def list_approvals(
        self, *, status: str | None, namespaces: Sequence[str] | None, limit: int
    ) -> list[ApprovalRecord]:
        """Return approvals, pending first, longest wait first (``waiting_ms`` counted to
        now; without their runs' workflow name and status)."""
        c = t.approvals.c
        query = sa.select(t.approvals)
        if status is not None:
            query = query.where(c.status == status)
        if namespaces is not None:
            query = query.where(c.namespace.in_(list(namespaces)))
        pending_first = sa.case((c.status == "pending", 0), else_=1)
        query = query.order_by(pending_first, c.requested_at_ms, c.id).limit(limit)
        now = self.now_ms
        return [ApprovalRecord.from_row(r._mapping, now_ms=now) for r in self.conn.execute(query)]
