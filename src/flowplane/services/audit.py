"""AuditService: reading the audit log (entries are written by each mutating service)."""

from __future__ import annotations

from dataclasses import replace

from flowplane.services.caller import Caller
from flowplane.services.paging import Page, paginate
from flowplane.store import audit
from flowplane.store.audit import AuditFilter
from flowplane.store.base import Store
from flowplane.store.tx import Row

__all__ = ["MAX_LIST_LIMIT", "AuditFilter", "AuditPage", "AuditService"]

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
        where: AuditFilter = AuditFilter(),  # noqa: B008 - frozen, so one shared default is safe
        *,
        cursor: str | None = None,
        limit: int = 100,
    ) -> AuditPage:
        """A page of entries matching ``where``, newest first (admin).

        ``where.namespaces`` is narrowed to those the caller sees; an admin limited to some
        namespaces sees only their entries (and none of the global ones).
        """
        caller.require("admin")
        namespaces = caller.visible(where.namespaces)
        if namespaces is not None and not namespaces:
            return Page([])
        where = replace(where, namespaces=namespaces)
        limit = max(1, min(limit, MAX_LIST_LIMIT))
        before_id = int(cursor) if cursor and cursor.isdigit() else None
        rows = await self.store.read(
            lambda tx: audit.list_entries(tx, where, before_id=before_id, limit=limit + 1)
        )
        return paginate(rows, limit)
