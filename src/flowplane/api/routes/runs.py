"""``/v1/runs``: dispatch, list, describe, logs, events, cancel, resume, retry, approve, signal.

The shapes are wire-compatible with Smithers' server (``POST /v1/runs`` with
``workflowPath``, ``GET /v1/runs`` as a JSON array, SSE events with ``Last-Event-ID``), so
its HTTP client works against Flowplane unchanged.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Header, Query, Request, Response
from starlette.responses import StreamingResponse

from flowplane.api.deps import get_services, require, services_dependency
from flowplane.api.models.runs import (
    DecisionBody,
    DispatchBody,
    ResumeBody,
    RetryBody,
    SignalBody,
    parse_time,
    split_values,
)
from flowplane.api.openapi import error_responses
from flowplane.api.paging import link_next
from flowplane.api.run_pages import node_page
from flowplane.api.run_stream import follow_started, run_stream, wants_stream
from flowplane.api.run_templates import render_runs
from flowplane.api.run_views import (
    MEDIA_TYPE,
    approval_model,
    log_page,
    render_detail,
    run_fields,
    run_model,
    signal_result,
)
from flowplane.api.settled_runs import list_key
from flowplane.api.sse import event_stream_content, parse_last_event_id
from flowplane.client.models import (
    Approval,
    DispatchResult,
    LogPage,
    NodePage,
    Run,
    RunDetail,
    SignalResult,
)
from flowplane.model.bounds import Seq
from flowplane.services.caller import Caller
from flowplane.services.container import Services
from flowplane.services.runs import StartResult

router = APIRouter(prefix="/v1/runs", tags=["runs"])

MAX_LIST_LIMIT = 500
MAX_LOG_LIMIT = 1000
MAX_NODE_LIMIT = 1000

Viewer = Annotated[Caller, require("viewer")]
Executor = Annotated[Caller, require("executor")]
Editor = Annotated[Caller, require("editor")]
Svc = Annotated[Services, Depends(services_dependency)]


@router.post(
    "",
    response_model=DispatchResult,
    status_code=200,
    summary="Start a run",
    responses={
        200: {
            "model": DispatchResult,
            "description": "The run started (`created: true`), the run an `Idempotency-Key` "
            "already started (`created: false`), or the run resumed (`resume: true`). With "
            "`Accept: text/event-stream`: the run's event stream from its first event, as "
            "`GET /v1/runs/{id}/events` sends it, with the run in the `Location`, `X-Run-Id` "
            "and `X-Run-Created` headers (start and follow in one request).",
            "content": event_stream_content(),
        },
        **error_responses(400, 404, 409, 422),
    },
)
async def dispatch_run(
    request: Request,
    body: DispatchBody,
    principal: Executor,
    idempotency_key: Annotated[str | None, Header(alias="Idempotency-Key", max_length=255)] = None,
) -> DispatchResult | Response:
    """Start a run of a stored workflow (by id or name) or of a file under the server root.

    Always 200, as Smithers' server answers (``created`` tells a new run from a replay).
    With ``resume: true`` and ``runId``, continue that run instead. The same
    ``Idempotency-Key`` returns the same run; reused with another body it is 422. A
    ``runId`` that is taken, without ``resume``, is 409 ``RUN_ALREADY_EXISTS``.

    With ``Accept: text/event-stream`` the answer is the run's event stream from its first
    event until it ends (as ``GET /v1/runs/{id}/events``), the run named in ``Location``,
    ``X-Run-Id`` and ``X-Run-Created``: a run started and followed in one request. Refusals
    are the same problem documents either way. A started run is never answered with an
    error: when its stream cannot be opened (the database went away after the start) the
    answer is the JSON, and the client follows with ``GET /v1/runs/{id}/events``.
    """
    result = await launch_run(request, body, principal, idempotency_key)
    if wants_stream(request.headers.getlist("accept")):
        stream = await follow_started(request, principal, result.run.id, created=result.created)
        if stream is not None:
            return stream
    return DispatchResult(**run_fields(result.run), created=result.created)


async def launch_run(
    request: Request, body: DispatchBody, principal: Caller, idempotency_key: str | None
) -> StartResult:
    """What :func:`dispatch_run` does, before rendering (shared with
    :mod:`flowplane.api.start_shortcut`)."""
    services = get_services(request)  # not a dependency: one less for FastAPI to solve
    return await services.runs.launch(
        principal,
        body.launch_request(idempotency_key),
        root=services.settings.root,
    )


@router.get(
    "",
    response_model=list[Run],
    summary="List runs",
    responses={
        200: {
            "description": "Runs, newest first. The next page's cursor is in `X-Next-Cursor` "
            'and a `Link: <...>; rel="next"` header.'
        },
        **error_responses(400),
    },
)
async def list_runs(
    request: Request,
    principal: Viewer,
    services: Svc,
    limit: Annotated[int, Query(ge=1, le=MAX_LIST_LIMIT)] = 50,
    status: Annotated[list[str] | None, Query(description="Repeat or comma-separate.")] = None,
    workflow: Annotated[str | None, Query(description="Workflow name or id.")] = None,
    namespace: Annotated[list[str] | None, Query()] = None,
    created_after: Annotated[
        str | None, Query(alias="createdAfter", description="Epoch ms or ISO-8601.")
    ] = None,
    created_before: Annotated[
        str | None, Query(alias="createdBefore", description="Epoch ms or ISO-8601.")
    ] = None,
    cursor: Annotated[str | None, Query(max_length=64)] = None,
) -> Response:
    """List runs newest first, as a JSON array (Smithers-compatible)."""
    page = await services.runs.list_runs(
        principal,
        namespaces=split_values(namespace),
        statuses=split_values(status),
        workflow=workflow,
        created_after_ms=parse_time(created_after, "createdAfter"),
        created_before_ms=parse_time(created_before, "createdBefore"),
        cursor=cursor,
        limit=limit,
        cache_key=list_key(request.scope),
    )
    answer = Response(render_runs(page.items), media_type=MEDIA_TYPE)
    if page.next_cursor is not None:
        link_next(request, answer, page.next_cursor)
    return answer


@router.get(
    "/{run_id}",
    response_model=RunDetail,
    summary="Describe a run",
    responses=error_responses(404),
)
async def get_run(run_id: str, principal: Viewer, services: Svc) -> Response:
    """The run's status, a per-state summary and every node run with attempts and timings."""
    body = await services.runs.detail(principal, run_id, render_detail)
    return Response(body, media_type=MEDIA_TYPE)


@router.get(
    "/{run_id}/nodes",
    response_model=NodePage,
    summary="Page through a run's node runs",
    responses=error_responses(400, 404),
)
async def list_run_nodes(
    run_id: str,
    principal: Viewer,
    services: Svc,
    cursor: Annotated[
        str | None,
        Query(max_length=64, description="A `nextCursor`, or the detail's `nodesNextCursor`."),
    ] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_NODE_LIMIT)] = 100,
) -> NodePage:
    """The run's node runs in order, with attempts, a page at a time (big ``foreach`` runs)."""
    return node_page(await services.runs.node_page(principal, run_id, cursor, limit))


@router.get(
    "/{run_id}/logs",
    response_model=LogPage,
    summary="Read a run's log",
    responses=error_responses(400, 404),
)
async def get_logs(
    run_id: str,
    principal: Viewer,
    services: Svc,
    after: Annotated[str | None, Query(description="The `nextCursor` of a previous page.")] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_LOG_LIMIT)] = 200,
) -> LogPage:
    """Log lines and finished attempts in time order, paginated with ``after``."""
    return log_page(await services.runs.log_page(principal, run_id, after, limit))


@router.get(
    "/{run_id}/events",
    summary="Stream a run's events (SSE)",
    response_class=StreamingResponse,
    responses={
        200: {
            "content": event_stream_content(),
            "description": "Smithers' framing: `id: <seq>`, `event: smithers`, "
            "`data: <json>` (the event's type is its `type` member) per event; "
            "`: keep-alive` comments; closes after the terminal event.",
        },
        **error_responses(404),
    },
)
async def stream_run_events(
    request: Request,
    run_id: str,
    principal: Viewer,
    after_seq: Annotated[Seq, Query(alias="afterSeq", ge=-1)] = 0,
    last_event_id: Annotated[str | None, Header(alias="Last-Event-ID")] = None,
) -> Response:
    """Replay the run's events after ``afterSeq`` / ``Last-Event-ID``, then follow live."""
    services = get_services(request)  # not a dependency: one less for FastAPI to solve
    event_filter = await services.feed.for_run(principal, run_id)
    start = max(after_seq, parse_last_event_id(last_event_id), 0)
    # The process's one event feed fans events out (one table read per commit, not one per
    # subscriber); it ends the stream once the run is terminal and fully delivered.
    return run_stream(services, event_filter, start, getattr(request.app.state, "metrics", None))


@router.post(
    "/{run_id}/cancel",
    response_model=Run,
    summary="Cancel a run",
    responses=error_responses(404, 409),
)
async def cancel_run(run_id: str, principal: Executor, services: Svc) -> Run:
    """Cancel an active run; 409 ``RUN_NOT_ACTIVE`` when it is already terminal."""
    return run_model(await services.runs.cancel(principal, run_id))


@router.delete(
    "/{run_id}",
    status_code=204,
    response_class=Response,
    summary="Delete a settled run",
    responses=error_responses(404, 409),
)
async def delete_run(run_id: str, principal: Editor, services: Svc) -> Response:
    """Delete a terminal run with its node runs, attempts, events, frames and logs (editor).

    409 ``RUN_NOT_SETTLED`` while the run is active, a node of it is still finishing, or a
    child or parent run of it is active. The audit log keeps a ``run.delete`` entry.
    """
    await services.runs.delete(principal, run_id)
    return Response(status_code=204)


@router.post(
    "/{run_id}/resume",
    response_model=Run,
    summary="Resume a failed or cancelled run",
    responses=error_responses(400, 404, 409),
)
async def resume_run(
    run_id: str, principal: Executor, services: Svc, body: ResumeBody | None = None
) -> Run:
    """Continue a failed, cancelled or timed-out run from where it stopped.

    Finished nodes keep their recorded outputs; failed, cancelled and skipped ones run again.
    A run that is still active or waiting is returned as it is; a finished run is 409.
    """
    return run_model(await services.runs.resume(principal, run_id))


@router.post(
    "/{run_id}/retry",
    response_model=DispatchResult,
    status_code=201,
    summary="Retry a run as a new run",
    responses=error_responses(400, 404),
)
async def retry_run(
    run_id: str, principal: Executor, services: Svc, body: RetryBody | None = None
) -> DispatchResult:
    """Start a new run with the same input (optionally on the workflow's latest version)."""
    result = await services.runs.retry(
        principal,
        run_id,
        use_latest_version=bool(body and body.use_latest_version),
        triggered_by=principal.name,
    )
    return DispatchResult(**run_fields(result.run), created=result.created)


async def _decide(
    services: Services,
    principal: Caller,
    run_id: str,
    node_id: str,
    body: DecisionBody | None,
    approved: bool,
) -> Approval:
    decision = body or DecisionBody()
    decided = await services.runs.decide(
        principal,
        run_id,
        node_id,
        approved=approved,
        iteration=decision.iteration,
        note=decision.note,
        by=principal.name,
    )
    return approval_model(decided)


@router.post(
    "/{run_id}/nodes/{node_id}/approve",
    response_model=Approval,
    summary="Approve a waiting node",
    responses=error_responses(400, 404, 409),
)
async def approve_node(
    run_id: str, node_id: str, principal: Executor, services: Svc, body: DecisionBody | None = None
) -> Approval:
    """Grant the approval of ``node_id`` (and ``iteration``), with an optional note."""
    return await _decide(services, principal, run_id, node_id, body, True)


@router.post(
    "/{run_id}/nodes/{node_id}/deny",
    response_model=Approval,
    summary="Deny a waiting node",
    responses=error_responses(400, 404, 409),
)
async def deny_node(
    run_id: str, node_id: str, principal: Executor, services: Svc, body: DecisionBody | None = None
) -> Approval:
    """Deny the approval of ``node_id``: the node fails (or continues, per ``on_deny``)."""
    return await _decide(services, principal, run_id, node_id, body, False)


@router.post(
    "/{run_id}/signals/{name}",
    response_model=SignalResult,
    summary="Send a signal to a run",
    responses=error_responses(400, 404, 409),
)
async def send_signal(
    run_id: str,
    name: str,
    principal: Executor,
    services: Svc,
    body: SignalBody | None = None,
) -> SignalResult:
    """Wake the oldest node waiting for ``name`` (matching ``correlationId``), or keep it."""
    signal = body or SignalBody()
    result = await services.runs.signal(
        principal, run_id, name, signal.value, signal.correlation_id
    )
    return signal_result(run_id, name, result)
