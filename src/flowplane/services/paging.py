"""Cursor pagination: one read of ``limit + 1`` rows cut down to a page.

Every listing reads one row more than it returns: that extra row only says that a further
page exists, and the last row returned gives the cursor to read it from. The services hand
a :class:`Page` to the routes; ``GET /v1/runs`` advertises the cursor in headers instead
(:func:`flowplane.api.paging.link_next`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from flowplane.services.caller import Caller
from flowplane.store.base import Store
from flowplane.store.tx import Tx

__all__ = ["Page", "paginate", "visible_page"]

T = TypeVar("T")
U = TypeVar("U")


@dataclass(frozen=True)
class Page(Generic[T]):
    """One page of a listing; ``next_cursor`` is ``None`` on the last page."""

    items: list[T]
    next_cursor: str | None = None

    def map(self, convert: Callable[[T], U]) -> Page[U]:
        """The same page with each item converted (the cursor is kept)."""
        return Page([convert(item) for item in self.items], self.next_cursor)


def _id(item: Any) -> Any:
    """The ``id`` of a record (or, for the listings still made of rows, of a row)."""
    return item["id"] if isinstance(item, dict) else item.id


def paginate(rows: Sequence[T], limit: int, cursor_of: Callable[[T], Any] = _id) -> Page[T]:
    """The first ``limit`` of ``rows``, read with ``limit + 1`` as the query's limit.

    Args:
        rows: up to ``limit + 1`` rows in listing order.
        limit: the page size.
        cursor_of: the cursor after an item (default: its ``id``), as a string.
    """
    items = list(rows[:limit])
    more = len(rows) > limit
    return Page(items, str(cursor_of(items[-1])) if more else None)


async def visible_page(
    store: Store,
    caller: Caller,
    namespaces: Sequence[str] | None,
    limit: int,
    read: Callable[[Tx, list[str] | None, int], Sequence[T]],
    cursor_of: Callable[[T], Any] = _id,
) -> Page[T]:
    """One page of a listing over the namespaces ``caller`` sees.

    Args:
        store: where to read.
        caller: who asks; ``namespaces`` is narrowed to what it sees.
        namespaces: the namespaces asked for (``None``: every one the caller sees). When
            none of them is visible the page is empty, without a query.
        limit: the page size.
        read: ``read(tx, namespaces, n)`` returns up to ``n`` rows from the cursor on
            (``namespaces`` ``None``: all).
        cursor_of: the cursor after an item (default: its ``id``).
    """
    visible = caller.visible(namespaces)
    if visible is not None and not visible:
        return Page([])
    rows = await store.read(lambda tx: read(tx, visible, limit + 1))
    return paginate(rows, limit, cursor_of)
