"""The HTTP face of ``flowplane run FILE --serve``: one run, its status, events and controls.

Modelled on Smithers' serve mode (``smithers up --serve``): every route works on the one run
the process started, so no route names a run id or a workflow path.

| route | what |
|---|---|
| ``GET /health`` | open: ``{"ok": true, "runId": ...}`` |
| ``GET /`` | the run's status, summary and node states (as ``GET /v1/runs/{id}``) |
| ``GET /events?afterSeq=`` | SSE of the run's events (``Last-Event-ID`` honoured) |
| ``GET /frames?limit=&afterFrameNo=&order=`` | node-state snapshots |
| ``POST /approve/{nodeId}``, ``POST /deny/{nodeId}`` | ``{iteration, note, decidedBy}`` |
| ``POST /signal/{name}`` | ``{payload \\| data, correlationId}`` |
| ``POST /cancel`` | 409 ``RUN_NOT_ACTIVE`` once the run is terminal |
| ``GET /metrics`` | Prometheus text, as ``flowplane serve``'s (when given the ops service) |

Everything but ``/health`` needs the one key of the process, sent as ``Authorization: Bearer
<key>``, ``X-API-Key: <key>`` or Smithers' ``x-smithers-key: <key>`` (the API's one
credential rule). It fails closed: a path no route serves is a 401 without the key, too.
Errors are problem documents with Smithers' ``error`` envelope; JSON answers carry
``Cache-Control: no-store``; events are framed as Smithers' (``event: smithers``).
"""

from __future__ import annotations

import hmac
from typing import Annotated, Any, Literal

from fastapi import FastAPI, Header, Query, Request
from starlette.datastructures import Headers
from starlette.responses import Response, StreamingResponse

from flowplane import __version__
from flowplane.api import problems
from flowplane.api.limits import BodyLimitMiddleware
from flowplane.api.metrics import CONTENT_TYPE, Metrics, MetricsMiddleware
from flowplane.api.models.runs import DecisionBody, SignalBody
from flowplane.api.response_headers import NoStoreMiddleware
from flowplane.api.routes.timetravel import DEFAULT_FRAME_LIMIT, MAX_FRAME_LIMIT
from flowplane.api.run_views import (
    MEDIA_TYPE,
    approval_model,
    frame_model,
    render_detail,
    run_model,
    signal_result,
)
from flowplane.api.security import AuthRequired, extract_credential
from flowplane.api.sse import SMITHERS_EVENT, event_stream_response, parse_last_event_id
from flowplane.client.models import Approval, Frame, Run, RunDetail, SignalResult
from flowplane.errors import FlowplaneError
from flowplane.model.bounds import FrameNo, Seq
from flowplane.services.caller import Caller
from flowplane.services.ops import OpsService
from flowplane.services.runs import RunService
from flowplane.settings import Settings

OPEN_PATHS = frozenset({("GET", b"/health"), ("HEAD", b"/health")})
"""(method, raw path) pairs reachable without the key. Compared exactly."""


class KeyGate:
    """Plain ASGI middleware: everything but ``GET /health`` needs the process's key.

    Args:
        app: the application to protect.
        key: the one accepted key.
    """

    def __init__(self, app: Any, *, key: str) -> None:
        self.app = app
        self.key = key.encode()

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        raw_path: bytes = (scope.get("raw_path") or scope["path"].encode()).split(b"?", 1)[0]
        if (scope.get("method", "GET"), raw_path) in OPEN_PATHS:
            await self.app(scope, receive, send)
            return
        try:
            given = extract_credential(Headers(scope=scope)).encode()
            if not hmac.compare_digest(given, self.key):
                raise AuthRequired("invalid or expired credentials")
        except FlowplaneError as exc:
            response = problems.error_response(exc, getattr(exc, "headers", None))
            await response(scope, receive, send)
            return
        await self.app(scope, receive, send)


def create_single_run_app(
    runs: RunService,
    run_id: str,
    *,
    key: str,
    settings: Settings | None = None,
    caller: Caller | None = None,
    ops: OpsService | None = None,
) -> FastAPI:
    """Build the app that serves the run ``run_id`` of ``runs``.

    Args:
        runs: the run service of the process (its store is already open).
        run_id: the one run served.
        key: the key every route but ``/health`` requires.
        settings: for the request body limits (default: from the environment).
        caller: who the holder of ``key`` acts as (default: the process itself, which
            started the run).
        ops: the operations service behind ``/metrics`` (without it ``/metrics`` is 404,
            as Smithers' ``metrics: false``).
    """
    settings = settings or Settings()
    who = caller or Caller.system()
    app = FastAPI(
        title="Flowplane single run",
        version=__version__,
        description=f"The run {run_id}: status, events, frames, approvals and cancellation.",
    )
    problems.install(app)
    metrics = Metrics()
    app.add_middleware(
        BodyLimitMiddleware, max_bytes=settings.max_body_bytes, max_depth=settings.max_json_depth
    )
    app.add_middleware(KeyGate, key=key)
    app.add_middleware(MetricsMiddleware, metrics=metrics)
    app.add_middleware(NoStoreMiddleware)

    @app.get("/health", summary="Liveness (open)")
    async def health() -> dict[str, Any]:
        """Always 200, without the key."""
        return {"ok": True, "runId": run_id}

    @app.get("/", response_model=RunDetail, summary="The run's status")
    async def status() -> Response:
        """The run's status, per-state summary and every node run (as ``GET /v1/runs/{id}``)."""
        return Response(await runs.detail(who, run_id, render_detail), media_type=MEDIA_TYPE)

    @app.get("/events", response_class=StreamingResponse, summary="The run's events (SSE)")
    async def events(
        after_seq: Annotated[Seq, Query(alias="afterSeq", ge=-1)] = 0,
        last_event_id: Annotated[str | None, Header(alias="Last-Event-ID")] = None,
    ) -> StreamingResponse:
        """Replay the run's events after ``afterSeq``, follow live, close after the end."""
        start = max(after_seq, parse_last_event_id(last_event_id), 0)
        return event_stream_response(
            metrics.track_stream(runs.follow(who, run_id, after_seq=start), "sse"),
            event_name=SMITHERS_EVENT,
        )

    @app.get("/frames", response_model=list[Frame], summary="The run's frames")
    async def frames(
        after_frame_no: Annotated[FrameNo, Query(alias="afterFrameNo", ge=-1)] = 0,
        limit: Annotated[int, Query(ge=1, le=MAX_FRAME_LIMIT)] = DEFAULT_FRAME_LIMIT,
        order: Annotated[Literal["asc", "desc"], Query()] = "asc",
    ) -> list[Frame]:
        """Node-state snapshots after each committed transition."""
        found = await runs.frames(who, run_id, after_frame_no, limit=limit, order=order)
        return [frame_model(frame) for frame in found]

    async def decide(request: Request, node_id: str, body: DecisionBody | None, ok: bool) -> Any:
        decision = body or DecisionBody()
        decided = await runs.decide(
            who,
            run_id,
            node_id,
            approved=ok,
            iteration=decision.iteration,
            note=decision.note,
            by=decision.decided_by or f"http:{request.client.host if request.client else '?'}",
        )
        return approval_model(decided)

    @app.post("/approve/{node_id}", response_model=Approval, summary="Approve a waiting node")
    async def approve(request: Request, node_id: str, body: DecisionBody | None = None) -> Any:
        """Grant the approval of ``node_id`` (and ``iteration``)."""
        return await decide(request, node_id, body, True)

    @app.post("/deny/{node_id}", response_model=Approval, summary="Deny a waiting node")
    async def deny(request: Request, node_id: str, body: DecisionBody | None = None) -> Any:
        """Deny the approval of ``node_id``: the node fails (or continues, per ``on_deny``)."""
        return await decide(request, node_id, body, False)

    @app.post("/signal/{name}", response_model=SignalResult, summary="Send a signal")
    async def signal(name: str, body: SignalBody | None = None) -> SignalResult:
        """Wake the node waiting for ``name`` (or keep the signal until one does)."""
        sent = body or SignalBody()
        result = await runs.signal(who, run_id, name, sent.value, sent.correlation_id)
        return signal_result(run_id, name, result)

    @app.post("/cancel", response_model=Run, summary="Cancel the run")
    async def cancel() -> Run:
        """Cancel the run; 409 ``RUN_NOT_ACTIVE`` once it is terminal."""
        return run_model(await runs.cancel(who, run_id))

    if ops is not None:
        stats_of = ops

        @app.get("/metrics", response_class=Response, summary="Prometheus metrics")
        async def prometheus() -> Response:
            """HTTP traffic of this server, and the runs, nodes, events and approvals of the
            database (the families of ``flowplane serve``'s ``/metrics``)."""
            body = metrics.render(await stats_of.run_stats(who))
            return Response(body, media_type=CONTENT_TYPE)

    return app
