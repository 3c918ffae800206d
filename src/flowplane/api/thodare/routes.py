"""@thodare/api's route table under ``/api``: each route one service call, in thodare's words.

Authentication, the per-key rate limit and the body limits are the app's own (the
security gate runs before any route); errors are Flowplane's, rendered in thodare's shape
by :mod:`flowplane.api.thodare.errors`. No path here can match ``/api/v1/...`` (every
route starts with a fixed word: ``workflows``, ``runs``, ``connectors``, ``schedules``,
``admin``, ``webhooks``), which belongs to the workflowdev surface.
"""

from __future__ import annotations

import hashlib
import json
import re
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Header, Query, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from flowplane.api.deps import require, services_dependency
from flowplane.api.openapi import error_responses
from flowplane.api.thodare import wire
from flowplane.api.webhook_limits import webhook_limits_of
from flowplane.errors import IfMatchInvalid, ParamsInvalid
from flowplane.services.caller import Caller
from flowplane.services.container import Services
from flowplane.services.records import ScheduleRecord
from flowplane.services.triggers import Delivery
from flowplane.services.workflows import ANY_VERSION, ExpectedVersion

__all__ = ["router"]

router = APIRouter(prefix="/api", tags=["thodare"])

Svc = Annotated[Services, Depends(services_dependency)]
Viewer = Annotated[Caller, require("viewer")]
Executor = Annotated[Caller, require("executor")]
Editor = Annotated[Caller, require("editor")]
Admin = Annotated[Caller, require("admin")]
IfMatch = Annotated[str | None, Header(alias="If-Match")]
ERROR_BODY: dict[str, Any] = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {"type": "string", "description": "thodare's error name (`not_found`, ...)."},
        "message": {"type": "string"},
        "code": {"type": "string", "description": "Flowplane's stable error code."},
    },
    "additionalProperties": True,
}
DOC: dict[str, Any] = {"x-error-content": {"application/json": {"schema": ERROR_BODY}}}
"""``openapi_extra`` of every route: errors are thodare's ``{error, ...}``, not problems."""
_NOT_A_NAME = re.compile(r"[^A-Za-z0-9_.-]+")
LOGS_PAGE = 50
MAX_LOGS_PAGE = 500
SCHEDULES_PAGE = 500


class _Body(BaseModel):
    # thodare's bodies are zod objects, which drop keys they do not know.
    model_config = ConfigDict(extra="ignore", populate_by_name=True)


class Metadata(_Body):
    """A workflow's ``metadata``: free-text name and description."""

    name: str | None = Field(default=None, max_length=200)
    description: str | None = Field(default=None, max_length=10_000)


class CreateBody(_Body):
    """``POST /api/workflows``: ``{}`` or ``{metadata: {name?, description?}}``."""

    metadata: Metadata | None = None


class PatchBody(_Body):
    """``POST /api/workflows/:id/operations``: ``{ops: EditOp[]}``."""

    ops: list[Any] = Field(max_length=1000)


class RunBody(_Body):
    """``POST /api/workflows/:id/run``: ``{input?, idempotencyKey?}``."""

    input: Any = None
    idempotency_key: str | None = Field(default=None, alias="idempotencyKey", max_length=255)


class ScheduleBody(_Body):
    """``POST /api/schedules``: ``{id?, workflowId, cron, payload?, endAt?}``."""

    id: str | None = Field(default=None, max_length=128)
    workflow_id: str = Field(alias="workflowId", min_length=1, max_length=64)
    cron: str = Field(min_length=1, max_length=255)
    payload: dict[str, Any] | None = None
    end_at: str | None = Field(default=None, alias="endAt", max_length=64)


def _expected(if_match: str | None) -> ExpectedVersion:
    """thodare's ``If-Match: 3`` (a quoted ETag and ``*`` work too)."""
    if if_match is None or not if_match.strip():
        return None
    text = if_match.strip().removeprefix("W/").strip('"')
    if text == ANY_VERSION:
        return ANY_VERSION
    if not text.isdigit() or int(text) < 1:
        raise IfMatchInvalid(f"If-Match must be a version number (1, 2, ...), not {if_match!r}")
    return int(text)


def _name(body: CreateBody | None) -> str | None:
    """``metadata.name`` as a Flowplane name (other characters become ``-``), if any."""
    metadata = body.metadata if body is not None else None
    if metadata is None or not metadata.name:
        return None
    return _NOT_A_NAME.sub("-", metadata.name).strip("-.")[:128] or None


# --- workflows -------------------------------------------------------------------------


@router.post("/workflows", status_code=201, openapi_extra=DOC)
async def create_workflow(
    principal: Editor, services: Svc, body: CreateBody | None = None
) -> dict[str, Any]:
    """Create an empty workflow (a Flowplane draft) for EditOps to fill in."""
    description = body.metadata.description if body and body.metadata else None
    stored = await services.workflows.create_draft(
        principal, name=_name(body), description=description
    )
    return wire.workflow_answer(stored)


@router.get("/workflows/{workflow_id}", openapi_extra=DOC)
async def get_workflow(workflow_id: str, principal: Viewer, services: Svc) -> dict[str, Any]:
    """The workflow as ``{id, workflow, version}``."""
    return wire.workflow_answer(await services.workflows.get(principal, workflow_id))


@router.post(
    "/workflows/{workflow_id}/operations",
    openapi_extra=DOC,
    responses=error_responses(409, 412),
)
async def patch_workflow(
    workflow_id: str, body: PatchBody, principal: Editor, services: Svc, if_match: IfMatch = None
) -> dict[str, Any]:
    """Apply thodare EditOps (translated one for one into Flowplane's)."""
    ops, reasons = wire.translate_ops(body.ops)
    outcome = await services.workflows.patch(
        principal, workflow_id, ops, expected_version=_expected(if_match)
    )
    return wire.patch_answer(outcome.result, outcome.workflow, body.ops, reasons)


@router.delete(
    "/workflows/{workflow_id}",
    status_code=204,
    openapi_extra=DOC,
    responses=error_responses(412),
)
async def delete_workflow(
    workflow_id: str, principal: Editor, services: Svc, if_match: IfMatch = None
) -> Response:
    """Delete the workflow (its runs keep their pinned copy)."""
    await services.workflows.delete(principal, workflow_id, expected_version=_expected(if_match))
    return Response(status_code=204)


@router.post(
    "/workflows/{workflow_id}/run",
    status_code=202,
    openapi_extra=DOC,
    responses=error_responses(422),
)
async def run_workflow(
    workflow_id: str, request: Request, principal: Executor, services: Svc
) -> dict[str, Any]:
    """Dispatch a run of the current version: ``{runId}``."""
    try:
        raw = await request.json()
    except ValueError:
        raw = {}  # thodare: a missing or unreadable body is an empty one
    try:
        body = RunBody.model_validate(raw if isinstance(raw, dict) else {})
    except ValidationError as exc:
        errors = [{"path": ".".join(map(str, e["loc"])), "error": e["msg"]} for e in exc.errors()]
        raise ParamsInvalid("the run body is invalid", errors=errors) from None
    run_input = body.input if body.input is not None else {}
    canonical = json.dumps({"workflowId": workflow_id, "input": run_input}, sort_keys=True)
    started = await services.workflows.start_run(
        principal,
        workflow_id,
        run_input,
        idempotency_key=body.idempotency_key,
        request_hash=hashlib.sha256(canonical.encode()).hexdigest(),
    )
    return {
        "runId": started.run.id,
        "state": wire.run_state(started.run.status),
        "created": started.created,
    }


# --- runs ------------------------------------------------------------------------------


@router.get("/runs/{run_id}", openapi_extra=DOC)
async def get_run(run_id: str, principal: Viewer, services: Svc) -> dict[str, Any]:
    """``{id, state, output?, error?, startedAt?, endedAt?, attempts}``."""
    return wire.run_view(await services.runs.snapshot(principal, run_id))


@router.get("/runs/{run_id}/logs", openapi_extra=DOC)
async def run_logs(
    run_id: str,
    principal: Viewer,
    services: Svc,
    after: Annotated[str | None, Query(max_length=64)] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_LOGS_PAGE)] = LOGS_PAGE,
) -> dict[str, Any]:
    """Step attempts and log lines, in time order: ``{data, pagination: {next, prev}}``."""
    page = await services.runs.log_page(principal, run_id, after, limit)
    return {
        "data": [wire.log_item(entry, run_id) for entry in page.items],
        "pagination": {"next": page.next_cursor, "prev": None},
    }


@router.post(
    "/runs/{run_id}/cancel",
    status_code=204,
    openapi_extra=DOC,
    responses=error_responses(409),
)
async def cancel_run(run_id: str, principal: Executor, services: Svc) -> Response:
    """Cancel an in-flight run (409 ``RUN_NOT_ACTIVE`` once it ended)."""
    await services.runs.cancel(principal, run_id)
    return Response(status_code=204)


# --- connectors ------------------------------------------------------------------------


@router.get("/connectors", openapi_extra=DOC)
async def list_connectors(
    principal: Viewer,
    services: Svc,
    detail: Literal["full", "summary"] = "full",
    category: Annotated[str | None, Query(max_length=64)] = None,
    q: Annotated[str | None, Query(max_length=200)] = None,
) -> dict[str, Any]:
    """The catalogue: full manifests by default, ``?detail=summary`` for a prompt."""
    manifests = services.catalog.search(principal, category=category, q=q)
    items = [m.summary() if detail == "summary" else m.to_dict() for m in manifests]
    if q is None and category in (None, "trigger"):
        # thodare's entry block, which ``add`` turns into a Flowplane node.
        trigger = wire.trigger_summary() if detail == "summary" else wire.trigger_manifest()
        items.insert(0, trigger)
    return {"data": items}


@router.get("/connectors/{connector_type}", openapi_extra=DOC)
async def get_connector(connector_type: str, principal: Viewer, services: Svc) -> dict[str, Any]:
    """One connector's full manifest (``trigger_*``: thodare's entry block)."""
    if connector_type.startswith(wire.TRIGGER_PREFIX):
        return wire.trigger_manifest(connector_type)
    return services.catalog.get(principal, connector_type).to_dict()


# --- schedules -------------------------------------------------------------------------


def _schedule(row: ScheduleRecord) -> dict[str, Any]:
    return {
        "id": row.id,
        "workflowId": row.workflow_id,
        "cron": row.cron,
        "payload": row.input,
        "endAt": wire.iso(row.end_at_ms),
        "name": row.name,
        "timezone": row.timezone,
        "enabled": bool(row.enabled),
        "nextFireAt": wire.iso(row.next_fire_ms),
        "lastFiredAt": wire.iso(row.last_fired_slot_ms),
        "createdAt": wire.iso(row.created_at_ms),
    }


@router.post("/schedules", status_code=201, openapi_extra=DOC, responses=error_responses(409))
async def create_schedule(body: ScheduleBody, principal: Editor, services: Svc) -> dict[str, Any]:
    """Register a cron schedule (``id`` becomes its name; Flowplane makes the id)."""
    values: dict[str, Any] = {"workflow_id": body.workflow_id, "cron": body.cron}
    if body.id is not None:
        values["name"] = body.id
    if body.payload is not None:
        values["input"] = body.payload
    if body.end_at is not None:
        values["end_at"] = body.end_at
    return _schedule(await services.schedules.create(principal, values))


@router.get("/schedules", openapi_extra=DOC)
async def list_schedules(
    principal: Editor,
    services: Svc,
    cursor: Annotated[str | None, Query(max_length=128)] = None,
) -> dict[str, Any]:
    """``{data: [...]}`` (and ``nextCursor`` past the first 500)."""
    page = await services.schedules.list(principal, cursor=cursor, limit=SCHEDULES_PAGE)
    return {"data": [_schedule(r) for r in page.items], "nextCursor": page.next_cursor}


@router.delete("/schedules/{schedule_id}", status_code=204, openapi_extra=DOC)
async def delete_schedule(schedule_id: str, principal: Editor, services: Svc) -> Response:
    """Remove a schedule."""
    await services.schedules.delete(principal, schedule_id)
    return Response(status_code=204)


@router.post("/admin/tick", openapi_extra=DOC)
async def tick(principal: Admin, services: Svc) -> dict[str, Any]:
    """Fire every due schedule slot now."""
    result = await services.schedules.tick(principal)
    return {
        "fired": [{"scheduleId": s, "runId": r} for s, r in result.fires],
        "failed": [{"scheduleId": s, "error": why} for s, why in result.failures],
        "skippedAlreadyFired": result.skipped_already_fired,
        "skippedNotMatching": result.skipped_not_matching,
        "skippedExpired": result.skipped_expired,
    }


# --- webhooks --------------------------------------------------------------------------


@router.post(
    "/webhooks/{key}",
    status_code=202,
    openapi_extra=DOC,
    responses={
        200: {
            "description": "A replayed delivery id: nothing new happened.",
            "content": {"application/json": {"schema": {"type": "object"}}},
        },
        202: {"content": {"application/json": {"schema": {"type": "object"}}}},
    },
)
async def webhook(key: str, request: Request, principal: Executor, services: Svc) -> Response:
    """A delivery to the webhook trigger ``key`` (registered with ``/v1/triggers`` or a
    document's ``triggers:``): 202 ``{runId}``; the JSON body is the run input."""
    limits = webhook_limits_of(request.app, services.settings)
    delivery = Delivery(
        body=await request.body(),
        headers=dict(request.headers),
        query=list(request.query_params.multi_items()),
        content_type=request.headers.get("content-type", ""),
    )
    outcome = await services.triggers.receive(
        key, delivery, admit=limits.admit_trigger, input_shape="body"
    )
    return JSONResponse(outcome.body, status_code=outcome.status)
