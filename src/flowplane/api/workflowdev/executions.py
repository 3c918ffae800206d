"""``/api/v1/executions``: list, get with tasks, cancel, retry, and the logs WebSocket.

An execution is a Flowplane run; its tasks are the run's node runs (one per node: the node
level of a ``foreach``). Statuses go through :mod:`flowplane.api.workflowdev.statuses`.

``GET /api/v1/executions/{id}/logs`` (WebSocket) sends, as JSON text frames, every log line
the execution's tasks write (``{"type": "log", ...}``) and each task's status change
(``{"type": "task", ...}``), from the start, live; when the execution ends it sends
``{"type": "status", "status": "SUCCESS"|...}`` and closes (1000). Credentials go in the
upgrade's headers like any request; an execution the caller cannot see closes with 4404.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Response, WebSocket
from starlette.websockets import WebSocketDisconnect

from flowplane.api.deps import ObjectId, require, services_dependency
from flowplane.api.models.common import iso
from flowplane.api.openapi import error_responses
from flowplane.api.workflowdev.statuses import NODE_STATUS, RUN_STATUS, run_statuses_of
from flowplane.api.workflowdev.views import execution_detail, execution_view, started_view
from flowplane.errors import FlowplaneError
from flowplane.services.caller import Caller
from flowplane.services.container import Services
from flowplane.services.runs import LogRecord
from flowplane.status import NodeStatus

router = APIRouter(prefix="/api/v1/executions", tags=["workflowdev"])

Svc = Annotated[Services, Depends(services_dependency)]
Viewer = Annotated[Caller, require("viewer")]
Executor = Annotated[Caller, require("executor")]

LOG_PAGE = 500
"""Log lines read at a time while streaming."""
_TASK_EVENTS: dict[str, NodeStatus] = {
    "NodeStarted": NodeStatus.IN_PROGRESS,
    "NodeFinished": NodeStatus.FINISHED,
    "NodeFailed": NodeStatus.FAILED,
    "NodeSkipped": NodeStatus.SKIPPED,
    "NodeWaitingApproval": NodeStatus.WAITING_APPROVAL,
    "NodeWaitingEvent": NodeStatus.WAITING_EVENT,
}


@router.get("", summary="List executions")
async def list_executions(
    principal: Viewer,
    services: Svc,
    response: Response,
    flow_id: Annotated[str | None, Query(alias="flowId", max_length=128)] = None,
    status: Annotated[list[str] | None, Query(max_length=32)] = None,
    namespace: Annotated[list[str] | None, Query()] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
) -> list[dict[str, Any]]:
    """Executions, newest first; ``X-Next-Cursor`` names the next page when there is one."""
    page = await services.runs.list_runs(
        principal,
        namespaces=namespace,
        statuses=run_statuses_of(status) if status else None,
        workflow=flow_id,
        cursor=cursor,
        limit=limit,
    )
    if page.next_cursor:
        response.headers["X-Next-Cursor"] = page.next_cursor
    return [execution_view(run) for run in page.items]


@router.get("/{run_id}", summary="Get an execution with its tasks")
async def get_execution(run_id: ObjectId, principal: Viewer, services: Svc) -> dict[str, Any]:
    """``{execution: {...}, tasks: [...]}``."""
    snapshot = await services.runs.snapshot(principal, run_id)
    document = await services.runs.document(principal, run_id)
    approvals = await services.runs.approvals_of(principal, run_id)
    return execution_detail(snapshot, document, approvals)


@router.post(
    "/{run_id}/cancel", summary="Cancel a running execution", responses=error_responses(409)
)
async def cancel_execution(run_id: ObjectId, principal: Executor, services: Svc) -> dict[str, Any]:
    """Cancel the execution (409 when it has already ended); answers the execution."""
    return execution_view(await services.runs.cancel(principal, run_id))


@router.post("/{run_id}/retry", summary="Retry an execution", responses=error_responses(503))
async def retry_execution(run_id: ObjectId, principal: Executor, services: Svc) -> dict[str, Any]:
    """A new execution of the same flow version with the same input."""
    started = await services.runs.retry(principal, run_id, triggered_by=principal.name)
    nodes = (started.run.document or {}).get("nodes") or []
    if not nodes:
        nodes = (await services.runs.document(principal, started.run.id)).get("nodes") or []
    return {**started_view(started.run, len(nodes)), "retryOf": run_id}


def _log_frame(line: LogRecord) -> dict[str, Any]:
    return {
        "type": "log",
        "executionId": line.run_id,
        "taskName": line.node_id,
        "iteration": line.iteration,
        "attempt": line.attempt,
        "level": line.level.upper(),
        "message": line.message,
        "timestamp": iso(line.ts_ms),
    }


@router.websocket("/{run_id}/logs")
async def stream_logs(websocket: WebSocket, run_id: str) -> None:
    """The execution's log lines and task statuses, live, until it ends."""
    services: Services = websocket.app.state.services
    principal = websocket.scope.get("state", {}).get("principal")
    await websocket.accept()
    if not isinstance(principal, Caller):
        await websocket.close(code=4401)
        return
    try:
        await services.runs.get(principal, run_id)
    except FlowplaneError as exc:
        await websocket.send_json({"type": "error", "error": exc.detail, "code": exc.code})
        await websocket.close(code=4000 + exc.status if exc.status < 500 else 1011)
        return
    pump = asyncio.create_task(_pump(websocket, services, principal, run_id))
    listen = asyncio.create_task(_until_closed(websocket))
    done, pending = await asyncio.wait({pump, listen}, return_when=asyncio.FIRST_COMPLETED)
    for task in pending:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await task
    if pump in done and pump.exception() is None:
        with contextlib.suppress(Exception):
            await websocket.close(code=1000)


async def _until_closed(websocket: WebSocket) -> None:
    with contextlib.suppress(WebSocketDisconnect):
        while True:
            message = await websocket.receive()
            if message["type"] == "websocket.disconnect":
                return


async def _pump(websocket: WebSocket, services: Services, principal: Caller, run_id: str) -> None:
    after = 0

    async def send_new_logs() -> None:
        nonlocal after
        while True:
            lines = await services.runs.logs(principal, run_id, after_id=after, limit=LOG_PAGE)
            for line in lines:
                after = line.id
                await websocket.send_json(_log_frame(line))
            if len(lines) < LOG_PAGE:
                return

    await send_new_logs()
    async for event in services.runs.follow(principal, run_id):
        await send_new_logs()
        status = _TASK_EVENTS.get(str(event.get("type")))
        if status is not None and not event.get("willRetry"):
            await websocket.send_json(
                {
                    "type": "task",
                    "executionId": run_id,
                    "taskName": event.get("nodeId"),
                    "iteration": event.get("iteration"),
                    "status": NODE_STATUS[status],
                    "timestamp": iso(event.get("timestampMs")),
                }
            )
    await send_new_logs()
    run = await services.runs.get(principal, run_id)
    await websocket.send_json(
        {"type": "status", "executionId": run_id, "status": RUN_STATUS[run.status]}
    )
