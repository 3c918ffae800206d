"""``/v1/runs``: dispatch, list, describe, logs, events, cancel, resume, retry, approve, signal.

The shapes are wire-compatible with Smithers' server (``POST /v1/runs`` with
``workflowPath``, ``GET /v1/runs`` as a JSON array, SSE events with ``Last-Event-ID``), so
its HTTP client works against Flowplane unchanged.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Query, Request, Response
from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel
from starlette.responses import StreamingResponse

from flowplane.api import hot_routes
from flowplane.api.deps import require, services_dependency
from flowplane.api.openapi import error_responses
from flowplane.api.paging import link_next
from flowplane.api.routes.events import sse_response
from flowplane.api.run_views import (
    approval_model,
    describe,
    log_page,
    parse_log_cursor,
    run_fields,
    run_model,
)
from flowplane.api.sse import parse_last_event_id
from flowplane.client.models import (
    Approval,
    DispatchResult,
    LogPage,
    Run,
    RunDetail,
    SignalResult,
)
from flowplane.errors import (
    InvalidInput,
    WorkflowNotFound,
    WorkflowPathOutsideRoot,
)
from flowplane.model.document import Workflow
from flowplane.model.yaml import parse_workflow
from flowplane.services.caller import Caller
from flowplane.services.container import Services
from flowplane.services.feed import run_filter
from flowplane.services.paging import paginate
from flowplane.services.workflows.records import StoredWorkflow
from flowplane.store.tx import TERMINAL_RUN, Row

router = APIRouter(prefix="/v1/runs", tags=["runs"])

MAX_LIST_LIMIT = 500
MAX_LOG_LIMIT = 1000
MAX_WORKFLOW_FILE_BYTES = 2 * 1024 * 1024


# --- request models ---------------------------------------------------------------------


class _Body(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid")


class DispatchBody(_Body):
    """``POST /v1/runs``: one of ``workflowId``, ``workflow`` (a name) or ``workflowPath``."""

    workflow_id: str | None = Field(default=None, description="A stored workflow's id.")
    workflow: str | None = Field(default=None, description="A stored workflow's name.")
    workflow_path: str | None = Field(
        default=None, description="A workflow file under the server's root folder."
    )
    namespace: str | None = Field(
        default=None, description="Namespace of `workflow` (default: default)."
    )
    input: Any = Field(default=None, description="The run input (validated at dispatch).")
    run_id: str | None = Field(
        default=None, max_length=64, pattern=r"^[A-Za-z0-9_.:-]+$", description="Own run id."
    )
    resume: bool = Field(default=False, description="Resume the run `runId` instead.")
    idempotency_key: str | None = Field(
        default=None, max_length=255, description="Same as the Idempotency-Key header."
    )
    config: dict[str, Any] | None = Field(
        default=None, description="Accepted for Smithers compatibility; ignored."
    )


class ResumeBody(_Body):
    """``POST /v1/runs/{id}/resume``. Smithers' fields are accepted and ignored: a run
    resumes from its pinned workflow document."""

    workflow_path: str | None = None
    input: Any = None
    config: dict[str, Any] | None = None


class RetryBody(_Body):
    """``POST /v1/runs/{id}/retry``."""

    use_latest_version: bool = Field(
        default=False, description="Run the workflow's current version, not the run's."
    )


class DecisionBody(_Body):
    """``POST /v1/runs/{id}/nodes/{nodeId}/approve|deny``."""

    iteration: int = Field(default=0, ge=0, description="The foreach iteration (0 otherwise).")
    note: str | None = Field(default=None, max_length=10_000)
    decided_by: str | None = Field(
        default=None, description="Accepted for Smithers compatibility; the caller is recorded."
    )


class SignalBody(_Body):
    """``POST /v1/runs/{id}/signals/{name}``."""

    payload: Any = None
    data: Any = Field(default=None, description="Smithers' name for `payload`.")
    correlation_id: str | None = Field(default=None, max_length=255)
    received_by: str | None = Field(default=None, description="Accepted; ignored.")


# --- helpers ----------------------------------------------------------------------------


def request_hash(body: DispatchBody) -> str:
    """A stable hash of what a dispatch asks for (the idempotency key is left out)."""
    data = body.model_dump(mode="json", exclude={"idempotency_key", "config"})
    canonical = json.dumps(data, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


def resolve_workflow_path(root: Path, workflow_path: str) -> Path:
    """Resolve ``workflow_path`` inside ``root``; refuse anything that leaves it."""
    base = root.resolve()
    candidate = (base / workflow_path).resolve()
    if candidate == base or not candidate.is_relative_to(base):
        raise WorkflowPathOutsideRoot(
            "workflowPath must be a file within the server's root directory",
            workflowPath=workflow_path,
        )
    return candidate


def _load_workflow_file(root: Path, workflow_path: str) -> tuple[Workflow, str]:
    path = resolve_workflow_path(root, workflow_path)
    if not path.is_file():
        raise WorkflowNotFound(f"no workflow file {workflow_path!r} under the server root")
    if path.stat().st_size > MAX_WORKFLOW_FILE_BYTES:
        raise InvalidInput(f"workflow file {workflow_path!r} is too large")
    text = path.read_bytes()
    relative = path.relative_to(root.resolve()).as_posix()
    return parse_workflow(text, source=relative), relative


async def _stored_workflow(
    services: Services,
    principal: Caller,
    *,
    workflow_id: str | None,
    name: str | None,
    namespace: str | None,
) -> StoredWorkflow:
    """A visible stored workflow, by id or by name."""
    if workflow_id is not None:
        stored = await services.workflows.get(principal, workflow_id)
    else:
        assert name is not None
        stored = await services.workflows.get_by_name(principal, namespace or "default", name)
    return stored


def _parse_time(value: str | None, name: str) -> int | None:
    """Accept epoch milliseconds or an ISO-8601 time."""
    if value is None or value == "":
        return None
    if value.lstrip("-").isdigit():
        return int(value)
    try:
        parsed = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise InvalidInput(f"{name} must be epoch milliseconds or ISO-8601") from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=dt.UTC)
    return int(parsed.timestamp() * 1000)


def _split(values: list[str] | None) -> list[str] | None:
    if not values:
        return None
    out = [part.strip() for value in values for part in value.split(",") if part.strip()]
    return out or None


async def _visible_run(services: Services, principal: Caller, run_id: str) -> Row:
    return await services.runs.get(run_id, principal.namespaces)


Viewer = Annotated[Caller, require("viewer")]
Executor = Annotated[Caller, require("executor")]
Svc = Annotated[Services, Depends(services_dependency)]


# --- routes -----------------------------------------------------------------------------


@router.post(
    "",
    response_model=DispatchResult,
    status_code=201,
    summary="Start a run",
    responses={
        200: {"model": DispatchResult, "description": "An existing run (idempotent replay)."},
        **error_responses(400, 404, 409, 422),
    },
)
async def dispatch_run(
    body: DispatchBody,
    response: Response,
    principal: Executor,
    services: Svc,
    idempotency_key: Annotated[str | None, Header(alias="Idempotency-Key", max_length=255)] = None,
) -> DispatchResult:
    """Start a run of a stored workflow (by id or name) or of a file under the server root.

    With ``resume: true`` and ``runId``, continue that run instead. The same
    ``Idempotency-Key`` returns the same run (200); reused with another body it is 422.
    """
    runs = services.runs
    if body.resume:
        if not body.run_id:
            raise InvalidInput("runId is required when resume is true")
        run = await _visible_run(services, principal, body.run_id)
        if run["status"] in TERMINAL_RUN:
            run = await runs.resume(body.run_id)
        response.status_code = 200
        return DispatchResult(**run_fields(run), created=False)
    sources = [s for s in (body.workflow_id, body.workflow, body.workflow_path) if s]
    if len(sources) != 1:
        raise InvalidInput("give exactly one of workflowId, workflow or workflowPath")
    key = idempotency_key or body.idempotency_key
    workflow_id: str | None = None
    version: int | None = None
    source_path: str | None = None
    workflow: Workflow | dict[str, Any]
    if body.workflow_path:
        workflow, source_path = _load_workflow_file(services.settings.root, body.workflow_path)
        workflow_namespace = workflow.namespace
    else:
        stored = await _stored_workflow(
            services,
            principal,
            workflow_id=body.workflow_id,
            name=body.workflow,
            namespace=body.namespace,
        )
        # The stored document as it is: RunService.start validates a document once per
        # content (and connector set), not on every dispatch.
        workflow, workflow_id, version = stored.document, stored.id, stored.version
        workflow_namespace = stored.namespace
    principal.check_namespace(workflow_namespace, "workflow")
    result = await runs.start(
        workflow,
        body.input,
        workflow_id=workflow_id,
        workflow_version=version,
        idempotency_key=key,
        request_hash=request_hash(body),
        trigger="api",
        triggered_by=principal.name,
        run_id=body.run_id,
        source_path=source_path,
    )
    response.status_code = 201 if result.created else 200
    return DispatchResult(**run_fields(result.run), created=result.created)


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
    response: Response,
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
) -> list[Run]:
    """List runs newest first, as a JSON array (Smithers-compatible)."""
    namespaces = principal.visible(_split(namespace))
    if namespaces is not None and not namespaces:
        return []
    rows = await services.runs.list_runs(
        namespaces=namespaces,
        statuses=_split(status),
        workflow=workflow,
        created_after_ms=_parse_time(created_after, "createdAfter"),
        created_before_ms=_parse_time(created_before, "createdBefore"),
        before_id=cursor or None,
        limit=limit + 1,
    )
    page = paginate(rows, limit)
    if page.next_cursor is not None:
        link_next(request, response, page.next_cursor)
    return [run_model(row) for row in page.items]


@router.get(
    "/{run_id}",
    response_model=RunDetail,
    summary="Describe a run",
    responses=error_responses(404),
)
async def get_run(run_id: str, principal: Viewer, services: Svc) -> Response:
    """The run's status, a per-state summary and every node run with attempts and timings."""
    body = await run_detail_body(run_id, principal, services)
    return Response(body, media_type=hot_routes.MEDIA_TYPE)


async def run_detail_body(run_id: str, principal: Caller, services: Services) -> bytes:
    """The rendered ``RunDetail`` of a run, from the settled-run cache when it is there."""
    settled = services.runs.settled
    cached = settled.get(run_id)
    if cached is not None and principal.can_see(cached.namespace):
        return cached.body
    token = settled.token()
    run, nodes, attempts = await services.runs.snapshot(run_id, principal.namespaces)
    body = hot_routes.render(describe(run, nodes, attempts))
    if hot_routes.is_settled(run, nodes, attempts):
        settled.put(run_id, run["namespace"], body, token)
    return body


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
    await _visible_run(services, principal, run_id)
    cursor = parse_log_cursor(after)
    logs = await services.runs.logs(run_id, after_id=cursor[0], limit=limit + 1)
    attempts = [a for a in await services.runs.attempts(run_id) if a["id"] > cursor[1]]
    return log_page(logs, attempts, after=cursor, limit=limit)


@router.get(
    "/{run_id}/events",
    summary="Stream a run's events (SSE)",
    response_class=StreamingResponse,
    responses={
        200: {
            "content": {"text/event-stream": {"schema": {"type": "string"}}},
            "description": "`id: <seq>`, `event: <type>`, `data: <json>` per event; "
            "`: keep-alive` comments; closes after the terminal event.",
        },
        **error_responses(404),
    },
)
async def stream_run_events(
    request: Request,
    run_id: str,
    principal: Viewer,
    services: Svc,
    after_seq: Annotated[int, Query(alias="afterSeq", ge=-1)] = 0,
    last_event_id: Annotated[str | None, Header(alias="Last-Event-ID")] = None,
) -> StreamingResponse:
    """Replay the run's events after ``afterSeq`` / ``Last-Event-ID``, then follow live."""
    await _visible_run(services, principal, run_id)
    start = max(after_seq, parse_last_event_id(last_event_id), 0)
    # The process's one event feed fans events out (one table read per commit, not one per
    # subscriber); it ends the stream once the run is terminal and fully delivered.
    source = services.feed.stream(run_filter(run_id), start, until_terminal=True)
    return sse_response(request, source)


@router.post(
    "/{run_id}/cancel",
    response_model=Run,
    summary="Cancel a run",
    responses=error_responses(404, 409),
)
async def cancel_run(run_id: str, principal: Executor, services: Svc) -> Run:
    """Cancel an active run; 409 ``RUN_NOT_ACTIVE`` when it is already terminal."""
    await _visible_run(services, principal, run_id)
    return run_model(await services.runs.cancel(run_id))


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
    """
    await _visible_run(services, principal, run_id)
    return run_model(await services.runs.resume(run_id))


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
    await _visible_run(services, principal, run_id)
    result = await services.runs.retry(
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
    await _visible_run(services, principal, run_id)
    decision = body or DecisionBody()
    row = await services.runs.decide(
        run_id,
        node_id,
        approved=approved,
        iteration=decision.iteration,
        note=decision.note,
        by=principal.name,
    )
    requested = row.get("requested_at_ms") or 0
    row["waiting_ms"] = max(0, (row.get("decided_at_ms") or requested) - requested)
    return approval_model(row)


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
    await _visible_run(services, principal, run_id)
    signal = body or SignalBody()
    payload = signal.payload if signal.payload is not None else signal.data
    result = await services.runs.signal(run_id, name, payload, signal.correlation_id)
    return SignalResult(
        run_id=run_id,
        signal=name,
        delivered=bool(result.get("delivered")),
        node_id=result.get("nodeId"),
        iteration=result.get("iteration"),
    )
