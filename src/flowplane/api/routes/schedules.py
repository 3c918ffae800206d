"""``/v1/schedules``: cron schedules of workflows (editor), and ``POST /v1/admin/tick`` (admin).

A schedule fires its workflow's latest version once per slot of its cron expression, read
in its IANA time zone; see ``docs/triggers.md`` for the DST rule and the catch-up policies.
Schedules declared in a workflow's ``triggers:`` appear here with ``owner: "workflow"``:
they change with the document, and here only ``enabled`` can be patched.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body, Depends, Header, Response

from flowplane.api.deps import get_services, require
from flowplane.api.models.schedules import (
    ScheduleCreate,
    ScheduleFields,
    ScheduleList,
    ScheduleOut,
    Started,
    TickOut,
    TriggerNow,
    schedule_changes,
    schedule_out,
)
from flowplane.api.openapi import error_responses
from flowplane.api.paging import OwnedListing, owned_listing
from flowplane.services.caller import Caller
from flowplane.services.container import Services

router = APIRouter(tags=["schedules"])

Editor = Annotated[Caller, require("editor")]
Admin = Annotated[Caller, require("admin")]
Svc = Annotated[Services, Depends(get_services)]


@router.post(
    "/v1/schedules",
    status_code=201,
    response_model=ScheduleOut,
    summary="Create a schedule",
    responses=error_responses(404, 409),
)
async def create_schedule(
    body: ScheduleCreate, response: Response, principal: Editor, services: Svc
) -> ScheduleOut:
    """Create a schedule of a workflow; an invalid cron expression is a 400 ``invalid_cron``."""
    row = await services.schedules.create(principal, schedule_changes(body))
    response.headers["Location"] = f"/v1/schedules/{row.id}"
    return schedule_out(row)


@router.get("/v1/schedules", response_model=ScheduleList, summary="List schedules")
async def list_schedules(
    principal: Editor, services: Svc, query: Annotated[OwnedListing, Depends(owned_listing)]
) -> ScheduleList:
    """List schedules by id, a page at a time."""
    page = await services.schedules.list(
        principal,
        namespaces=query.namespaces,
        workflow_id=query.workflow_id,
        cursor=query.cursor,
        limit=query.limit,
    )
    return ScheduleList(items=[schedule_out(r) for r in page.items], next_cursor=page.next_cursor)


@router.get("/v1/schedules/{schedule_id}", response_model=ScheduleOut, summary="Get a schedule")
async def get_schedule(schedule_id: str, principal: Editor, services: Svc) -> ScheduleOut:
    """Return a schedule with its latest fires."""
    return schedule_out(*await services.schedules.get_with_fires(principal, schedule_id))


@router.patch(
    "/v1/schedules/{schedule_id}",
    response_model=ScheduleOut,
    summary="Change a schedule",
    responses=error_responses(409),
)
async def patch_schedule(
    schedule_id: str, body: ScheduleFields, principal: Editor, services: Svc
) -> ScheduleOut:
    """Change the given fields; a new cron, zone, date range or re-enabling restarts from now."""
    row = await services.schedules.update(principal, schedule_id, schedule_changes(body))
    return schedule_out(row)


@router.delete(
    "/v1/schedules/{schedule_id}",
    status_code=204,
    summary="Delete a schedule",
    responses=error_responses(409),
)
async def delete_schedule(schedule_id: str, principal: Editor, services: Svc) -> Response:
    """Delete an API-created schedule (a workflow's own go with its ``triggers:``)."""
    await services.schedules.delete(principal, schedule_id)
    return Response(status_code=204)


@router.post(
    "/v1/schedules/{schedule_id}/trigger",
    status_code=202,
    response_model=Started,
    summary="Run a schedule now",
)
async def trigger_schedule(
    schedule_id: str,
    principal: Editor,
    services: Svc,
    body: Annotated[TriggerNow | None, Body()] = None,
    idempotency_key: Annotated[str | None, Header(alias="Idempotency-Key", max_length=255)] = None,
) -> Started:
    """Start a run of the schedule's workflow now, with its input (or ``input``)."""
    started = await services.schedules.trigger(
        principal,
        schedule_id,
        run_input=body.input if body is not None else None,
        idempotency_key=idempotency_key,
    )
    return Started(run_id=started.run.id)


@router.post("/v1/admin/tick", response_model=TickOut, summary="Fire due schedule slots now")
async def admin_tick(principal: Admin, services: Svc) -> TickOut:
    """Run one scheduler tick in this process (what every scheduler loop does on its own)."""
    result = await services.schedules.tick(principal)
    return TickOut(
        fired=result.fired,
        failed=result.failed,
        skipped_already_fired=result.skipped_already_fired,
        skipped_not_matching=result.skipped_not_matching,
        skipped_expired=result.skipped_expired,
        run_ids=result.run_ids,
    )
