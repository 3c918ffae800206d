"""The API's edge: one plain ASGI layer for everything a request passes before routing.

It used to be six middlewares, each wrapping ``send``, so each SSE chunk crossed six
Python frames that did nothing to it (issue 19). :class:`EdgeMiddleware` does their work
in one layer with one ``send`` wrapper that touches only ``http.response.start`` (body
messages go straight on). In order, as the separate layers ran (outermost first):

1. the request id (:mod:`flowplane.api.context`): the caller's sane ``X-Request-Id`` or a
   new one, in the context variables for the request, echoed on every response;
2. ``Cache-Control: no-store`` and ``nosniff`` on JSON and plain-text answers
   (:mod:`flowplane.api.response_headers`);
3. thodare's error bodies on its ``/api/*`` paths (:mod:`flowplane.api.thodare.errors`;
   the only part that buffers, and only on those paths);
4. the HTTP metrics (:mod:`flowplane.api.metrics`): status and duration by route template;
5. the security gate (:func:`flowplane.api.security.admit`): authentication and the rate
   limit, whose ``RateLimit`` headers the response carries.

Inside it: settled runs answered from memory (:mod:`flowplane.api.settled_runs`), body
limits (:mod:`flowplane.api.limits`), run event streams (:mod:`flowplane.api.run_stream`),
starts of runs (:mod:`flowplane.api.start_shortcut`), then FastAPI's routes.
"""

from __future__ import annotations

import contextlib
import time
from typing import Any

from fastapi import FastAPI

from flowplane.api.context import HEADER, accept_request_id
from flowplane.api.limits import BodyLimitMiddleware
from flowplane.api.metrics import Metrics, route_template
from flowplane.api.openapi import install_openapi
from flowplane.api.response_headers import add_no_store
from flowplane.api.run_stream import RunStreamShortcut
from flowplane.api.security import admit
from flowplane.api.settled_runs import SettledRunMiddleware
from flowplane.api.start_shortcut import StartShortcut
from flowplane.api.thodare.errors import is_thodare_path, rewriting_send
from flowplane.services.context import actor_var, request_id_var
from flowplane.settings import Settings

_HEADER_BYTES = HEADER.encode()
_START = "http.response.start"


class EdgeMiddleware:
    """Plain ASGI middleware: request id, response headers, thodare errors, metrics and the
    security gate in one layer (see the module doc).

    Args:
        app: the wrapped application.
        metrics: where HTTP requests are counted.
    """

    def __init__(self, app: Any, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            # WebSockets (and lifespan) pass the gate only: the other parts are HTTP's.
            gated = await admit(scope, receive, send)
            if gated is not None:
                await self.app(scope, receive, send)
            return
        incoming: str | None = None
        for name, value in scope.get("headers", ()):
            if name == _HEADER_BYTES:
                incoming = value.decode("latin-1")
                break
        rid = accept_request_id(incoming)
        own = (_HEADER_BYTES, rid.encode())
        token = request_id_var.set(rid)
        actor_token = actor_var.set(None)
        started = time.perf_counter()
        status = 500
        extra: list[tuple[bytes, bytes]] = []  # the rate limit's headers, once admitted

        def finish(message: dict[str, Any]) -> dict[str, Any]:
            # The outer layers' part of the start: no-store/nosniff, then the request id.
            headers = [h for h in message.get("headers", ()) if h[0].lower() != _HEADER_BYTES]
            add_no_store(headers)
            headers.append(own)
            return {**message, "headers": headers}

        async def send_http(message: dict[str, Any]) -> None:
            nonlocal status
            if message["type"] == _START:
                status = int(message["status"])
                if extra:
                    message = {**message, "headers": [*message.get("headers", ()), *extra]}
                message = finish(message)
            await send(message)

        inner_send: Any = send_http
        if is_thodare_path(scope.get("path", "")):
            # Thodare rewrites the problem documents of the gate and the routes, between the
            # metrics (which see the original status) and the outer headers.
            async def send_outer(message: dict[str, Any]) -> None:
                await send(finish(message) if message["type"] == _START else message)

            async def send_inner(message: dict[str, Any]) -> None:
                nonlocal status
                if message["type"] == _START:
                    status = int(message["status"])
                    if extra:
                        message = {**message, "headers": [*message.get("headers", ()), *extra]}
                await rewrite(message)

            rewrite = rewriting_send(send_outer)
            inner_send = send_inner
        try:
            gated = await admit(scope, receive, inner_send)
            if gated is not None:
                extra.extend(gated)
                await self.app(scope, receive, inner_send)
        finally:
            self.metrics.observe(
                scope["method"], route_template(scope), status, time.perf_counter() - started
            )
            # Another context (a streaming task) cannot reset these; nothing to undo then.
            with contextlib.suppress(ValueError):
                actor_var.reset(actor_token)
                request_id_var.reset(token)


def install_edge(app: FastAPI, settings: Settings) -> None:
    """Add the API's middleware and its exact OpenAPI document to ``app``.

    Outermost first: :class:`EdgeMiddleware` (request id, headers, thodare errors, metrics,
    the security gate: auth and rate limit, before any body is read), settled-run details
    served from memory (:mod:`flowplane.api.settled_runs`), body limits, valid starts of
    runs answered by their routes' endpoints (:mod:`flowplane.api.start_shortcut`), then
    the routes.
    """
    metrics = Metrics()
    app.state.metrics = metrics
    app.add_middleware(StartShortcut)
    app.add_middleware(RunStreamShortcut)
    app.add_middleware(
        BodyLimitMiddleware, max_bytes=settings.max_body_bytes, max_depth=settings.max_json_depth
    )
    app.add_middleware(SettledRunMiddleware)
    app.add_middleware(EdgeMiddleware, metrics=metrics)
    install_openapi(app)
