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

__all__ = ["Page", "paginate"]

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


def _id(row: Any) -> Any:
    return row["id"]


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
