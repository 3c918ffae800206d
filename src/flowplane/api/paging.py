"""Query parameters of the paginated listings, and the ``Link`` headers of ``GET /v1/runs``."""

from __future__ import annotations

from typing import Annotated
from urllib.parse import urlencode

from fastapi import Query, Request, Response

__all__ = ["Cursor", "NamespaceFilter", "PageSize", "link_next"]

NamespaceFilter = Annotated[
    list[str] | None, Query(description="Only these namespaces (repeatable).")
]
"""``?namespace=a&namespace=b``; default ``None``: every namespace the caller sees."""
PageSize = Annotated[int, Query(ge=1, le=500)]
"""``?limit=``: the page size (default 50)."""
Cursor = Annotated[str | None, Query(description="`nextCursor` of the previous page.")]
"""``?cursor=``: where the page starts (default ``None``: at the beginning)."""


def link_next(request: Request, response: Response, cursor: str) -> None:
    """Point at the next page: ``X-Next-Cursor`` and ``Link: <url>; rel="next"``.

    The URL is the request's own with its ``cursor`` parameter replaced, so every filter
    carries over to the next page.
    """
    params = [(k, v) for k, v in request.query_params.multi_items() if k != "cursor"]
    params.append(("cursor", cursor))
    url = request.url.replace(query=urlencode(params))
    response.headers["X-Next-Cursor"] = cursor
    response.headers["Link"] = f'<{url}>; rel="next"'
