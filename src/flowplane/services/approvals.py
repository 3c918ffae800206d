"""Approval queries: the pending-approval inbox across runs, as far as a caller sees it."""

from __future__ import annotations

from collections.abc import Sequence

from flowplane.ids import now_ms
from flowplane.services.caller import Caller
from flowplane.store.base import Store
from flowplane.store.tx import Row, Tx

APPROVAL_STATUSES = ("pending", "approved", "denied", "cancelled")


class ApprovalService:
    """Read approvals (decisions go through :meth:`RunService.decide`)."""

    def __init__(self, store: Store) -> None:
        self.store = store

    async def list(
        self,
        caller: Caller,
        *,
        status: str | None = "pending",
        namespaces: Sequence[str] | None = None,
        limit: int = 100,
    ) -> list[Row]:
        """Return approvals, pending first and longest wait first, with ``waiting_ms``.

        Each row also carries ``workflow_name`` and ``run_status`` of its run.

        Args:
            caller: who asks (a viewer); only approvals of runs it sees are listed.
            status: only approvals in this status (``None``: every status).
            namespaces: only these namespaces (default: every one the caller sees).
            limit: the most approvals returned.
        """
        caller.require("viewer")
        visible = caller.visible(namespaces)
        if visible is not None and not visible:
            return []

        def query(tx: Tx) -> list[Row]:
            rows = tx.list_approvals(status=status, namespaces=visible, limit=limit)
            runs: dict[str, Row | None] = {}
            for row in rows:
                run_id = row["run_id"]
                if run_id not in runs:
                    runs[run_id] = tx.get_run(run_id, with_document=False)
                run = runs[run_id]
                row["workflow_name"] = run["workflow_name"] if run else None
                row["run_status"] = run["status"] if run else None
            return rows

        rows = await self.store.read(query)
        now = now_ms()
        for row in rows:
            end = row["decided_at_ms"] if row["status"] != "pending" else None
            row["waiting_ms"] = max(0, (end or now) - row["requested_at_ms"])
        return rows
