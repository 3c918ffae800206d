"""``/v1/schedules``: cron schedules of workflows (editor), and ``POST /v1/admin/tick`` (admin).

A schedule fires its workflow's latest version once per slot of its cron expression, read
in its IANA time zone; see ``docs/triggers.md`` for the DST rule and the catch-up policies.
Schedules declared in a workflow's ``triggers:`` appear here with ``owner: "workflow"``:
they change with the document, and here only ``enabled`` can be patched.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, Depends, Header, Query, Response
from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

from flowplane.api.deps import get_services, require
from flowplane.api.openapi import error_responses
from flowplane.api.paging import Cursor, NamespaceFilter, PageSize
from flowplane.api.run_views import iso
from flowplane.client.models import WireModel
from flowplane.errors import InvalidInput
from flowplane.model.document import NAMESPACE_PATTERN
from flowplane.services.caller import Caller
from flowplane.services.container import Services
from flowplane.services.paging import paginate
from flowplane.services.schedules import MAX_CATCHUP_WINDOW_SECONDS
from flowplane.store.tx import Row

router = APIRouter(tags=["schedules"])

Editor = Annotated[Caller, require("editor")]
Admin = Annotated[Caller, require("admin")]
Svc = Annotated[Services, Depends(get_services)]
Instant = int | str
CatchupPolicy = Literal["skip", "latest", "all"]
"""Mirrors :data:`flowplane.model.cron.CATCHUP_POLICIES`."""


# --- models ------------------------------------------------------------------------------


class _Body(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid")


class ScheduleFields(_Body):
    """Fields shared by create and patch."""

    name: str | None = Field(default=None, min_length=1, max_length=128)
    cron: str | None = Field(
        default=None,
        max_length=255,
        description="5-field cron (`0 8 * * 1-5`), a macro (`@hourly`), or 6 fields with a "
        "leading seconds field.",
    )
    timezone: str | None = Field(default=None, max_length=64, description="IANA zone name.")
    input: dict[str, Any] | None = Field(default=None, description="The run input.")
    enabled: bool | None = None
    start_at: Instant | None = Field(
        default=None,
        description="No slot before this: ISO-8601 (without offset: in `timezone`) or ms.",
    )
    end_at: Instant | None = Field(default=None, description="No slot after this (inclusive).")
    catchup: CatchupPolicy | None = Field(
        default=None,
        description="Slots missed during downtime: `skip` none, `latest` the newest one, "
        "`all` each one within `catchupWindowSeconds`.",
    )
    catchup_window_seconds: int | None = Field(default=None, ge=1, le=MAX_CATCHUP_WINDOW_SECONDS)


class ScheduleCreate(ScheduleFields):
    """``POST /v1/schedules``."""

    workflow_id: str | None = Field(default=None, max_length=64)
    workflow: str | None = Field(
        default=None, max_length=128, description="A workflow name (with `namespace`)."
    )
    namespace: str | None = Field(default=None, pattern=NAMESPACE_PATTERN)
    cron: str = Field(max_length=255, description=ScheduleFields.model_fields["cron"].description)


class TriggerNow(_Body):
    """``POST /v1/schedules/{id}/trigger``: optionally another input than the schedule's."""

    input: dict[str, Any] | None = None


class Fire(WireModel):
    """One handled slot."""

    slot_ms: int
    slot_at: str | None
    run_id: str | None
    fired_at_ms: int
    status: str = Field(description="`fired` or `failed`.")
    error: dict[str, Any] | None = None


class ScheduleOut(WireModel):
    """A schedule."""

    id: str
    namespace: str
    workflow_id: str
    name: str
    cron: str
    timezone: str
    input: dict[str, Any] | None
    enabled: bool
    start_at_ms: int | None
    start_at: str | None
    end_at_ms: int | None
    end_at: str | None
    catchup: str
    catchup_window_seconds: int
    next_fire_at_ms: int | None = Field(description="The next slot; null when none is left.")
    next_fire_at: str | None
    last_fired_slot_ms: int | None
    last_fired_at: str | None
    owner: str = Field(description="`api`, or `workflow` when declared in its `triggers:`.")
    created_at_ms: int
    updated_at_ms: int
    created_by: str | None = None
    recent_fires: list[Fire] | None = Field(
        default=None, description="The latest fires (single-schedule reads only)."
    )


class ScheduleList(WireModel):
    """A page of schedules; pass ``nextCursor`` as ``cursor`` for the next page."""

    items: list[ScheduleOut]
    next_cursor: str | None = None


class Started(WireModel):
    """A run started by a schedule or webhook."""

    run_id: str


class TickOut(WireModel):
    """What one tick did."""

    fired: int
    failed: int
    skipped_already_fired: int = Field(description="Slots another process fired first.")
    skipped_not_matching: int = Field(description="Due schedules with no slot to fire.")
    skipped_expired: int = Field(description="Missed slots the catch-up policy left unfired.")
    run_ids: list[str]


def schedule_out(row: Row, fires: list[Row] | None = None) -> ScheduleOut:
    """The wire form of a schedule row."""
    return ScheduleOut(
        id=row["id"],
        namespace=row["namespace"],
        workflow_id=row["workflow_id"],
        name=row["name"],
        cron=row["cron"],
        timezone=row["timezone"],
        input=row["input"],
        enabled=bool(row["enabled"]),
        start_at_ms=row["start_at_ms"],
        start_at=iso(row["start_at_ms"]),
        end_at_ms=row["end_at_ms"],
        end_at=iso(row["end_at_ms"]),
        catchup=row["catchup"],
        catchup_window_seconds=row["catchup_window_seconds"],
        next_fire_at_ms=row["next_fire_ms"],
        next_fire_at=iso(row["next_fire_ms"]),
        last_fired_slot_ms=row["last_fired_slot_ms"],
        last_fired_at=iso(row["last_fired_slot_ms"]),
        owner=row["owner"],
        created_at_ms=row["created_at_ms"],
        updated_at_ms=row["updated_at_ms"],
        created_by=row.get("created_by"),
        recent_fires=None
        if fires is None
        else [
            Fire(
                slot_ms=f["slot_ms"],
                slot_at=iso(f["slot_ms"]),
                run_id=f["run_id"],
                fired_at_ms=f["fired_at_ms"],
                status=f["status"],
                error=f["error"],
            )
            for f in fires
        ],
    )


def _changes(body: BaseModel) -> dict[str, Any]:
    values = body.model_dump(exclude_unset=True)
    for required in ("name", "cron", "timezone", "enabled", "catchup"):
        if required in values and values[required] is None:
            raise InvalidInput(f"{to_camel(required)} cannot be null")
    return values


# --- routes ------------------------------------------------------------------------------


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
    row = await services.schedules.create(
        _changes(body), namespaces=principal.visible(), created_by=principal.name
    )
    response.headers["Location"] = f"/v1/schedules/{row['id']}"
    return schedule_out(row)


@router.get("/v1/schedules", response_model=ScheduleList, summary="List schedules")
async def list_schedules(
    principal: Editor,
    services: Svc,
    namespace: NamespaceFilter = None,
    workflow_id: Annotated[str | None, Query(alias="workflowId")] = None,
    limit: PageSize = 50,
    cursor: Cursor = None,
) -> ScheduleList:
    """List schedules by id, a page at a time."""
    visible = principal.visible(namespace)
    if visible is not None and not visible:
        return ScheduleList(items=[])
    rows = await services.schedules.list_schedules(
        namespaces=visible, workflow_id=workflow_id, cursor=cursor, limit=limit + 1
    )
    page = paginate(rows, limit)
    return ScheduleList(items=[schedule_out(r) for r in page.items], next_cursor=page.next_cursor)


@router.get("/v1/schedules/{schedule_id}", response_model=ScheduleOut, summary="Get a schedule")
async def get_schedule(schedule_id: str, principal: Editor, services: Svc) -> ScheduleOut:
    """Return a schedule with its latest fires."""
    service = services.schedules
    row = await service.get(schedule_id, principal.visible())
    return schedule_out(row, await service.fires(schedule_id))


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
    row = await services.schedules.update(
        schedule_id, _changes(body), namespaces=principal.visible()
    )
    return schedule_out(row)


@router.delete(
    "/v1/schedules/{schedule_id}",
    status_code=204,
    summary="Delete a schedule",
    responses=error_responses(409),
)
async def delete_schedule(schedule_id: str, principal: Editor, services: Svc) -> Response:
    """Delete an API-created schedule (a workflow's own go with its ``triggers:``)."""
    await services.schedules.delete(schedule_id, namespaces=principal.visible())
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
        schedule_id,
        namespaces=principal.visible(),
        run_input=body.input if body is not None else None,
        triggered_by=principal.name,
        idempotency_key=idempotency_key,
    )
    return Started(run_id=started.run.id)


@router.post("/v1/admin/tick", response_model=TickOut, summary="Fire due schedule slots now")
async def admin_tick(_principal: Admin, services: Svc) -> TickOut:
    """Run one scheduler tick in this process (what every scheduler loop does on its own)."""
    result = await services.schedules.tick()
    return TickOut(
        fired=result.fired,
        failed=result.failed,
        skipped_already_fired=result.skipped_already_fired,
        skipped_not_matching=result.skipped_not_matching,
        skipped_expired=result.skipped_expired,
        run_ids=result.run_ids,
    )
