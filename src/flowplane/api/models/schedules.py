"""Wire models of ``/v1/schedules`` and ``POST /v1/admin/tick``: bodies in and out."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints
from pydantic.alias_generators import to_camel
from pydantic.json_schema import SkipJsonSchema

from flowplane.api.run_views import iso
from flowplane.client.models import WireModel
from flowplane.errors import InvalidInput
from flowplane.model.bounds import EpochMs
from flowplane.model.document import NAMESPACE_PATTERN
from flowplane.services.records import ScheduleFireRecord, ScheduleRecord
from flowplane.services.schedules import MAX_CATCHUP_WINDOW_SECONDS

Instant = EpochMs | str
CatchupPolicy = Literal["skip", "latest", "all"]
"""Mirrors :data:`flowplane.model.cron.CATCHUP_POLICIES`."""


ScheduleName = Annotated[str, StringConstraints(min_length=1, max_length=128)]
CronText = Annotated[str, StringConstraints(min_length=1, max_length=255)]
ZoneName = Annotated[str, StringConstraints(min_length=1, max_length=64)]


class _Body(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid")


class ScheduleFields(_Body):
    """Fields shared by create and patch.

    ``name``, ``cron``, ``timezone``, ``enabled`` and ``catchup`` may be left out but not set
    to null (a 400): the schema does not offer null for them (``SkipJsonSchema``).
    """

    # The bounds sit on ``str`` itself: on the union they would meet an explicit null first.
    name: ScheduleName | SkipJsonSchema[None] = None
    cron: CronText | SkipJsonSchema[None] = Field(
        default=None,
        description="5-field cron (`0 8 * * 1-5`), a macro (`@hourly`), or 6 fields with a "
        "leading seconds field.",
    )
    timezone: ZoneName | SkipJsonSchema[None] = Field(default=None, description="IANA zone name.")
    input: dict[str, Any] | None = Field(default=None, description="The run input.")
    enabled: bool | SkipJsonSchema[None] = None
    start_at: Instant | None = Field(
        default=None,
        description="No slot before this: ISO-8601 (without offset: in `timezone`) or ms.",
    )
    end_at: Instant | None = Field(default=None, description="No slot after this (inclusive).")
    catchup: CatchupPolicy | SkipJsonSchema[None] = Field(
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
    cron: str = Field(
        min_length=1, max_length=255, description=ScheduleFields.model_fields["cron"].description
    )


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


def schedule_out(
    row: ScheduleRecord, fires: Sequence[ScheduleFireRecord] | None = None
) -> ScheduleOut:
    """The wire form of a schedule."""
    return ScheduleOut(
        id=row.id,
        namespace=row.namespace,
        workflow_id=row.workflow_id,
        name=row.name,
        cron=row.cron,
        timezone=row.timezone,
        input=row.input,
        enabled=bool(row.enabled),
        start_at_ms=row.start_at_ms,
        start_at=iso(row.start_at_ms),
        end_at_ms=row.end_at_ms,
        end_at=iso(row.end_at_ms),
        catchup=row.catchup,
        catchup_window_seconds=row.catchup_window_seconds,
        next_fire_at_ms=row.next_fire_ms,
        next_fire_at=iso(row.next_fire_ms),
        last_fired_slot_ms=row.last_fired_slot_ms,
        last_fired_at=iso(row.last_fired_slot_ms),
        owner=row.owner,
        created_at_ms=row.created_at_ms,
        updated_at_ms=row.updated_at_ms,
        created_by=row.created_by,
        recent_fires=None
        if fires is None
        else [
            Fire(
                slot_ms=f.slot_ms,
                slot_at=iso(f.slot_ms),
                run_id=f.run_id,
                fired_at_ms=f.fired_at_ms,
                status=f.status,
                error=f.error,
            )
            for f in fires
        ],
    )


def schedule_changes(body: BaseModel) -> dict[str, Any]:
    """The fields a body sets, as service values (snake_case); a required one set null is a 400."""
    values = body.model_dump(exclude_unset=True)
    for required in ("name", "cron", "timezone", "enabled", "catchup"):
        if required in values and values[required] is None:
            raise InvalidInput(f"{to_camel(required)} cannot be null")
    return values
