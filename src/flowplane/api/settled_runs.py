"""Cached runs: ``GET /v1/runs/{id}`` of a settled or live run, answered before routing.

Polling a run's detail is the most frequent request a dashboard, a CLI ``--wait`` or an
agent makes. Once a run is settled (run, node runs and attempts all terminal) its detail
only changes through a user action, so :meth:`RunService.detail
<flowplane.services.runs.RunService.detail>` stores the rendered body in
:class:`~flowplane.services.run_cache.SettledRunCache` and :class:`SettledRunMiddleware`
answers later requests for it straight from memory. A live run's snapshot is kept there
too until an event of the run (or an unapplied one) says it changed; it is rendered again
per answer (durations grow with the clock).

The middleware sits *inside* the security gate: the caller is authenticated and
rate-limited exactly as for any route (401/429 and the ``RateLimit`` headers unchanged),
the request id and metrics middlewares see it (labelled with the real route template), and
a caller whose role or namespaces do not allow the read (the rule is the service's:
:meth:`~flowplane.services.run_reads.RunReader.cached_detail`) falls through to the
route, which answers 403 or 404 as before. What it skips is what costs: routing through
every route of the app, dependency resolution, the database read and serialisation.
"""

from __future__ import annotations

from collections.abc import MutableMapping, Sequence
from typing import Any

from fastapi.routing import APIRoute
from starlette.requests import Request
from starlette.responses import Response

from flowplane.api.deps import api_routes
from flowplane.api.paging import link_next
from flowplane.api.run_templates import cached_body, detail_template, list_template, render_runs
from flowplane.api.run_views import MEDIA_TYPE, render_detail
from flowplane.services.caller import Caller
from flowplane.services.container import Services
from flowplane.services.run_cache import LiveRun

PREFIX = "/v1/runs/"
TEMPLATE = "/v1/runs/{run_id}"
LISTING = "/v1/runs"


def _get_route(app: Any, template: str) -> APIRoute | None:
    for info in api_routes(app):
        if info.path == template and "GET" in info.methods:
            return info.route
    return None


def list_key(scope: MutableMapping[str, Any]) -> tuple[Any, ...]:
    """What identifies the answer of ``GET /v1/runs`` for a caller: the query string as
    received (the route parses and checks it, so an equal one gets an equal answer), and
    the scheme and host its ``Link`` header is made of."""
    host = next((value for name, value in scope["headers"] if name == b"host"), b"")
    return (scope.get("scheme"), host, scope.get("root_path"), scope["query_string"])


class SettledRunMiddleware:
    """Plain ASGI middleware serving cached run details (see the module doc)."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self._route: APIRoute | None = None
        self._list_route: APIRoute | None = None

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope["method"] == "GET":
            path = scope["path"]
            if path.startswith(PREFIX) and await self._answer(scope, send):
                return
            if path == LISTING and await self._answer_list(scope, send):
                return
        await self.app(scope, receive, send)

    async def _answer_list(self, scope: dict[str, Any], send: Any) -> bool:
        services: Services | None = getattr(scope["app"].state, "services", None)
        principal = scope.get("state", {}).get("principal")
        if services is None or not isinstance(principal, Caller):
            return False
        key = list_key(scope)
        entry = services.runs.cached_list(principal, key)
        if entry is None:
            return False
        runs = entry.page.items
        body = cached_body(entry, lambda: list_template(runs), lambda: render_runs(runs))
        if entry.link is None:
            entry.link = _next_headers(scope, entry.page.next_cursor)
        if self._list_route is None:
            self._list_route = _get_route(scope["app"], LISTING)
        scope["route"] = self._list_route
        await _send_json(send, body, entry.link)
        return True

    async def _answer(self, scope: dict[str, Any], send: Any) -> bool:
        run_id: str = scope["path"][len(PREFIX) :]
        if not run_id or "/" in run_id:
            return False
        services: Services | None = getattr(scope["app"].state, "services", None)
        principal = scope.get("state", {}).get("principal")
        if services is None or not isinstance(principal, Caller):
            return False
        found = services.runs.cached_detail(principal, run_id)
        if found is None:
            return False  # the route answers (403, 404 or a fresh read) as it always does
        if isinstance(found, LiveRun):
            snapshot = found.snapshot
            body = cached_body(
                found, lambda: detail_template(snapshot), lambda: render_detail(snapshot)
            )
        else:
            body = found
        if self._route is None:
            self._route = _get_route(scope["app"], TEMPLATE)
        # Metrics label the request with the template of the route that would have served it.
        scope["route"] = self._route
        await _send_json(send, body)
        return True


async def _send_json(send: Any, body: bytes, extra: Sequence[tuple[bytes, bytes]] = ()) -> None:
    """Answer 200 with a cached JSON ``body`` (and ``extra`` headers after the two of it)."""
    headers = [
        (b"content-length", str(len(body)).encode()),
        (b"content-type", MEDIA_TYPE.encode()),
        *extra,
    ]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def _next_headers(scope: dict[str, Any], cursor: str | None) -> list[tuple[bytes, bytes]]:
    """The ``X-Next-Cursor`` and ``Link`` headers the route adds for ``cursor``."""
    if cursor is None:
        return []
    response = Response()
    link_next(Request(scope), response, cursor)
    return [(k, v) for k, v in response.raw_headers if k in (b"x-next-cursor", b"link")]
