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

from typing import Any

from fastapi.routing import APIRoute

from flowplane.api.deps import api_routes
from flowplane.api.run_views import MEDIA_TYPE, render_detail
from flowplane.services.caller import Caller
from flowplane.services.container import Services

PREFIX = "/v1/runs/"
TEMPLATE = "/v1/runs/{run_id}"


def _describe_route(app: Any) -> APIRoute | None:
    for info in api_routes(app):
        if info.path == TEMPLATE and "GET" in info.methods:
            return info.route
    return None


class SettledRunMiddleware:
    """Plain ASGI middleware serving cached run details (see the module doc)."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self._route: APIRoute | None = None

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if (
            scope["type"] == "http"
            and scope["method"] == "GET"
            and scope["path"].startswith(PREFIX)
            and await self._answer(scope, send)
        ):
            return
        await self.app(scope, receive, send)

    async def _answer(self, scope: dict[str, Any], send: Any) -> bool:
        run_id: str = scope["path"][len(PREFIX) :]
        if not run_id or "/" in run_id:
            return False
        services: Services | None = getattr(scope["app"].state, "services", None)
        principal = scope.get("state", {}).get("principal")
        if services is None or not isinstance(principal, Caller):
            return False
        body = services.runs.cached_detail(principal, run_id, render_detail)
        if body is None:
            return False  # the route answers (403, 404 or a fresh read) as it always does
        if self._route is None:
            self._route = _describe_route(scope["app"])
        # Metrics label the request with the template of the route that would have served it.
        scope["route"] = self._route
        headers = [
            (b"content-length", str(len(body)).encode()),
            (b"content-type", MEDIA_TYPE.encode()),
        ]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": body})
        return True
