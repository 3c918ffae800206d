"""Query parameters of the paginated listings, and the ``Link`` headers of ``GET /v1/runs``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated
from urllib.parse import urlencode

from fastapi import Query, Request, Response

__all__ = ["Cursor", "NamespaceFilter", "OwnedListing", "PageSize", "link_next", "owned_listing"]

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


@dataclass(frozen=True)
class OwnedListing:
    """The query of a listing of workflow-owned objects (``/v1/schedules``, ``/v1/triggers``)."""

    namespaces: list[str] | None
    workflow_id: str | None
    limit: int
    cursor: str | None


async def owned_listing(
    namespace: NamespaceFilter = None,
    workflow_id: Annotated[str | None, Query(alias="workflowId")] = None,
    limit: PageSize = 50,
    cursor: Cursor = None,
) -> OwnedListing:
    """``?namespace=&workflowId=&limit=&cursor=`` as one dependency."""
    return OwnedListing(namespace, workflow_id, limit, cursor)
