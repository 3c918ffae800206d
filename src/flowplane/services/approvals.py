"""Approval queries: the pending-approval inbox across runs, as far as a caller sees it."""

from __future__ import annotations

from collections.abc import Sequence

from flowplane.errors import ApprovalNotFound
from flowplane.services.caller import Caller
from flowplane.store import reads
from flowplane.store.base import Store
from flowplane.store.records import ApprovalRecord

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
    ) -> list[ApprovalRecord]:
        """Return approvals, pending first and longest wait first, with ``waiting_ms``.

        Each record also carries ``workflow_name`` and ``run_status`` of its run.

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
        return await self.store.read(
            lambda tx: reads.approvals(tx, status=status, namespaces=visible, limit=limit)
        )

    async def get(self, caller: Caller, approval_id: str) -> ApprovalRecord:
        """One approval by id, with ``waiting_ms``, its workflow name and run status.

        Raises:
            Forbidden: the caller is not a viewer.
            ApprovalNotFound: no such approval, or one of a namespace the caller cannot see.
        """
        caller.require("viewer")
        found = await self.store.read(lambda tx: reads.approval(tx, approval_id))
        if found is None or not caller.can_see(found.namespace):
            raise ApprovalNotFound(f"approval {approval_id!r} not found")
        return found
