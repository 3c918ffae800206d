"""A run's event stream without FastAPI's generic request path (issue 19).

Following a run (``GET /v1/runs/{id}/events``, a browser's ``EventSource`` or the CLI
after a start) is one request per run. Through FastAPI it paid route matching, dependency
solving, and Starlette's ``StreamingResponse`` (an anyio task group per stream, to listen
for the client leaving), several times what the stream itself costs when the run is short.
:class:`RunStreamShortcut` binds the route's arguments by hand and serves the very stream
the route serves: the same authorization (:meth:`EventFeed.for_run
<flowplane.services.feed.EventFeed.for_run>`), the same feed batches and bytes
(:func:`~flowplane.api.sse.stream_batches`), the same headers, metrics and route label.

Anything it does not bind exactly as FastAPI would falls through, unchanged, to the route:
a query string (``afterSeq``), a repeated or out-of-range ``Last-Event-ID``, a caller
without the viewer role (the route's 403), a run the caller cannot see (the route's 404),
an app with OpenTelemetry on (the route's spans). It sits inside the security gate and the
body limits, like :mod:`flowplane.api.start_shortcut`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Sequence
from typing import Any
from urllib.parse import quote

from fastapi.routing import APIRoute
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from flowplane.api.deps import api_routes
from flowplane.api.metrics import Metrics
from flowplane.api.routes.events import counted, sse_meters
from flowplane.api.sse import (
    KEEPALIVE_SECONDS,
    SMITHERS_EVENT,
    SSE_HEADERS,
    direct_cycle,
    parse_last_event_id,
    stream_batches,
    write_direct,
)
from flowplane.errors import FlowplaneError
from flowplane.services.caller import Caller
from flowplane.services.container import Services
from flowplane.services.feed import EventFilter, FeedBatches

PREFIX = "/v1/runs/"
SUFFIX = "/events"
TEMPLATE = "/v1/runs/{run_id}/events"
_LAST_EVENT_ID = b"last-event-id"
_log = logging.getLogger("flowplane.api")


async def _no_body() -> Any:  # pragma: no cover - never iterated
    yield b""


# The route's StreamingResponse headers, computed once (lower-case names, in order).
HEADERS: list[tuple[bytes, bytes]] = list(
    StreamingResponse(_no_body(), headers=SSE_HEADERS).raw_headers
)
_END = {"type": "http.response.body", "body": b"", "more_body": False}


class RunStream(Response):
    """The SSE response of a run's stream: the route's headers, with ``extra`` headers
    after them (a start's ``Location``). Under ``flowplane serve`` (uvicorn's httptools
    protocol) the feed writes it to the socket directly, as namespace streams
    (:func:`~flowplane.api.sse.write_direct`); otherwise :func:`serve_stream` sends its
    chunks (no task group per stream)."""

    def __init__(
        self,
        batches: FeedBatches,
        metrics: Any,
        extra: Sequence[tuple[bytes, bytes]] = (),
    ) -> None:
        self.batches = batches
        self.metrics = metrics if isinstance(metrics, Metrics) else None
        self.status_code = 200
        self.background = None
        self.raw_headers = [*HEADERS, *extra]

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        cycle = direct_cycle(scope)
        if cycle is None:
            batches: AsyncIterator[Sequence[dict[str, Any]]] = self.batches
            if self.metrics is not None:
                batches = counted(batches, self.metrics)
            chunks = stream_batches(batches, SMITHERS_EVENT)
            await serve_stream(chunks, receive, send, self.raw_headers)
            return
        subscribers = sent = None
        if self.metrics is not None:
            subscribers, sent = sse_meters(self.metrics)
            subscribers.inc()
        try:
            await write_direct(
                self.batches, cycle, receive, send, self.raw_headers, SMITHERS_EVENT, sent
            )
        finally:
            if subscribers is not None:
                subscribers.dec()


def run_stream(
    services: Services,
    event_filter: EventFilter,
    after_seq: int,
    metrics: Any,
    extra: Sequence[tuple[bytes, bytes]] = (),
) -> RunStream:
    """The response following ``event_filter``'s run after ``after_seq`` until it ends, as
    the run events route streams it (Smithers' framing, counted in ``metrics``)."""
    batches = services.feed.batches(
        event_filter, after_seq, until_terminal=True, idle_seconds=KEEPALIVE_SECONDS
    )
    return RunStream(batches, metrics, extra)


STREAM_MEDIA_TYPE = "text/event-stream"


def wants_stream(accept: Sequence[str]) -> bool:
    """Whether an ``Accept`` header (its values) names ``text/event-stream``: a start that
    asks for the new run's event stream instead of its JSON."""
    for value in accept:
        for part in value.split(","):
            media, *params = part.split(";")
            if media.strip().lower() == STREAM_MEDIA_TYPE and _quality(params) > 0:
                return True
    return False


def _quality(params: Sequence[str]) -> float:
    """A media range's ``q`` (1 when absent or unreadable; 0: not acceptable)."""
    for param in params:
        name, _, value = param.partition("=")
        if name.strip().lower() == "q":
            try:
                return float(value.strip())
            except ValueError:
                return 1.0
    return 1.0


async def follow_started(
    request: Request, principal: Caller, run_id: str, *, created: bool
) -> RunStream | None:
    """The event stream of a run the request just started (or named again), from its first
    event, the run named in the headers. The feed starts it from what its tail saw of the
    run (usually no read of the table: :meth:`EventFeed.recent_run
    <flowplane.services.feed.EventFeed.recent_run>`).

    ``None`` when the stream cannot be authorized now (the database went away after the
    start committed, the run was deleted at once): the caller answers the start's JSON
    instead, never an error for a run that was started (a client would start it again);
    a client that asked for the stream follows with ``GET /v1/runs/{id}/events``."""
    services: Services = request.app.state.services
    try:
        event_filter = await services.feed.for_run(principal, run_id)
    except FlowplaneError as exc:
        _log.warning("run %s started; answering its JSON, not its stream (%s)", run_id, exc.code)
        return None
    location = f"/v1/runs/{quote(run_id, safe='')}".encode()
    extra = [
        (b"location", location),
        (b"x-run-id", run_id.encode()),
        (b"x-run-created", b"true" if created else b"false"),
    ]
    metrics = getattr(request.app.state, "metrics", None)
    return run_stream(services, event_filter, 0, metrics, extra)


class RunStreamShortcut:
    """Plain ASGI middleware serving run event streams (see the module doc)."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self._route: APIRoute | None = None
        self._found = False

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope["method"] == "GET":
            path: str = scope["path"]
            if path.startswith(PREFIX) and path.endswith(SUFFIX):
                bound = await self._bind(scope, path[len(PREFIX) : -len(SUFFIX)])
                if bound is not None:
                    services, event_filter, after = bound
                    scope["route"] = self._route_of(scope["app"])  # the metrics' label
                    metrics = getattr(scope["app"].state, "metrics", None)
                    await run_stream(services, event_filter, after, metrics)(scope, receive, send)
                    return
        await self.app(scope, receive, send)

    async def _bind(
        self, scope: dict[str, Any], run_id: str
    ) -> tuple[Services, EventFilter, int] | None:
        """The services, the run's filter and the stream's start, or ``None`` for the
        route to answer."""
        if not run_id or "/" in run_id or scope.get("query_string"):
            return None
        app = scope["app"]
        if getattr(app.state.settings, "opentelemetry", False):
            return None
        services: Services | None = getattr(app.state, "services", None)
        principal = scope.get("state", {}).get("principal")
        if services is None or not isinstance(principal, Caller):
            return None
        if not principal.allows("viewer"):
            return None
        last: bytes | None = None
        for name, value in scope.get("headers", ()):
            if name == _LAST_EVENT_ID:
                if last is not None:
                    return None
                last = value
        try:
            after = parse_last_event_id(last.decode("latin-1") if last is not None else None)
            event_filter = await services.feed.for_run(principal, run_id)
        except FlowplaneError:
            return None  # the route answers its 400 / 404 as it always does
        return services, event_filter, after

    def _route_of(self, app: Any) -> APIRoute | None:
        if not self._found:
            for info in api_routes(app):
                if info.path == TEMPLATE and "GET" in info.methods:
                    self._route = info.route
                    break
            self._found = True
        return self._route


async def serve_stream(
    chunks: AsyncIterator[bytes],
    receive: Any,
    send: Any,
    headers: list[tuple[bytes, bytes]] = HEADERS,
) -> None:
    """Send an SSE response of ``chunks`` (closed at the end): ``headers``, one body
    message per chunk, then the end. Stops when the client leaves (uvicorn's ``send`` says
    nothing then: its ``receive`` does, in a task)."""
    task = asyncio.current_task()
    done = gone = False

    async def listen() -> None:
        nonlocal gone
        while (await receive())["type"] != "http.disconnect":
            pass
        gone = True
        if not done and task is not None:
            task.cancel()

    listener = asyncio.ensure_future(listen())
    try:
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        async for chunk in chunks:
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
        await send(_END)
        done = True
    except asyncio.CancelledError:
        if not gone or task is None:
            raise
        task.uncancel()  # the client left: the stream ends here
    finally:
        done = True
        listener.cancel()
        aclose = getattr(chunks, "aclose", None)
        if aclose is not None:
            with contextlib.suppress(Exception):
                await aclose()
