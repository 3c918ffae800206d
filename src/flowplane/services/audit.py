"""AuditService: reading the audit log (entries are written by each mutating service)."""

from __future__ import annotations

from dataclasses import replace

from flowplane.services.caller import Caller
from flowplane.services.paging import Page, visible_page
from flowplane.store import audit
from flowplane.store.audit import AuditFilter
from flowplane.store.base import Store
from flowplane.store.records import AuditRecord
from flowplane.store.tx import Tx

__all__ = ["MAX_LIST_LIMIT", "AuditFilter", "AuditPage", "AuditService"]

MAX_LIST_LIMIT = 1000


AuditPage = Page[AuditRecord]
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
        before_id = int(cursor) if cursor and cursor.isdigit() else None

        def read(tx: Tx, visible: list[str] | None, n: int) -> list[AuditRecord]:
            narrowed = replace(where, namespaces=visible)
            return audit.list_entries(tx, narrowed, before_id=before_id, limit=n)

        limit = max(1, min(limit, MAX_LIST_LIMIT))
        return await visible_page(self.store, caller, where.namespaces, limit, read)
