"""AuditService: reading the audit log (entries are written by each mutating service)."""

from __future__ import annotations

from collections.abc import Sequence

from flowplane.services.caller import Caller
from flowplane.services.paging import Page, paginate
from flowplane.store import audit
from flowplane.store.base import Store
from flowplane.store.tx import Row

MAX_LIST_LIMIT = 1000


AuditPage = Page[Row]
"""Entries newest first; ``next_cursor`` (an entry id) is ``None`` on the last page."""


class AuditService:
    """Query the audit log."""

    def __init__(self, store: Store) -> None:
        self.store = store

    async def list(
        self,
        caller: Caller,
        *,
        namespaces: Sequence[str] | None = None,
        actor: str | None = None,
        action: str | None = None,
        target_type: str | None = None,
        target_id: str | None = None,
        request_id: str | None = None,
        since_ms: int | None = None,
        until_ms: int | None = None,
        cursor: str | None = None,
        limit: int = 100,
    ) -> AuditPage:
        """A page of entries matching every filter (see :func:`audit.list_entries`); admin.

        ``namespaces`` is narrowed to those the caller sees; an admin limited to some
        namespaces sees only their entries (and none of the global ones).
        """
        caller.require("admin")
        namespaces = caller.visible(namespaces)
        if namespaces is not None and not namespaces:
            return Page([])
        limit = max(1, min(limit, MAX_LIST_LIMIT))
        before_id = int(cursor) if cursor and cursor.isdigit() else None
        rows = await self.store.read(
            lambda tx: audit.list_entries(
                tx,
                namespaces=namespaces,
                actor=actor,
                action=action,
                target_type=target_type,
                target_id=target_id,
                request_id=request_id,
                since_ms=since_ms,
                until_ms=until_ms,
                before_id=before_id,
                limit=limit + 1,
            )
        )
        return paginate(rows, limit)
