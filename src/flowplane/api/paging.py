"""Link headers of a paginated listing that answers with a bare JSON array."""

from __future__ import annotations

from urllib.parse import urlencode

from fastapi import Request, Response

__all__ = ["link_next"]


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
