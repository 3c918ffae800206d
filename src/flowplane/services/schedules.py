"""ScheduleService: cron schedules of workflows, made through the API or declared in documents.

A schedule belongs to one workflow and fires its latest version. Schedules created through
``/v1/schedules`` have ``owner="api"``; those declared in a workflow's ``triggers:`` have
``owner="workflow"`` and follow the document (:mod:`flowplane.services.declared`). Firing
is the engine's business (:func:`flowplane.engine.scheduler.tick`).
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from flowplane.connectors.registry import Registry
from flowplane.engine import scheduler
from flowplane.errors import (
    Conflict,
    InvalidInput,
    ScheduleNotFound,
    WorkflowNotFound,
)
from flowplane.ids import new_id
from flowplane.model import cron
from flowplane.model.bounds import check_epoch_ms, epoch_ms
from flowplane.services.caller import Caller
from flowplane.services.owned import (
    OwnedKind,
    OwnedService,
    find_workflow,
)
from flowplane.services.paging import Page, visible_page
from flowplane.services.runs import RunService, StartResult
from flowplane.store import trigger_queries as q
from flowplane.store import workflow_queries as wq
from flowplane.store.base import Store
from flowplane.store.records import ScheduleFireRecord, ScheduleRecord, WorkflowRecord
from flowplane.store.tx import Row, Tx

DEFAULT_CATCHUP = "latest"
DEFAULT_CATCHUP_WINDOW_SECONDS = 3600
MAX_CATCHUP_WINDOW_SECONDS = 31 * 86400
TIMING_FIELDS = ("cron", "timezone", "start_at_ms", "end_at_ms")
"""Changing one of these (or re-enabling) recomputes the next slot from now."""


def parse_instant(value: Any, timezone: str, what: str) -> int | None:
    """Milliseconds of ``value``: ``None``, epoch milliseconds, or ISO-8601.

    An ISO-8601 time without an offset is read in the schedule's time zone.

    Raises:
        InvalidInput: ``value`` is neither, or names a time outside 1970..9999
            (:data:`flowplane.model.bounds.EpochMs`).
    """
    if value is None:
        return None
    if isinstance(value, bool):
        raise InvalidInput(f"{what}: expected an ISO-8601 time or milliseconds")
    if isinstance(value, int):
        return check_epoch_ms(value, what)
    if isinstance(value, datetime):
        moment = value
    elif isinstance(value, str):
        try:
            moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            raise InvalidInput(f"{what}: {value!r} is not an ISO-8601 time") from None
    else:
        raise InvalidInput(f"{what}: expected an ISO-8601 time or milliseconds")
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=cron.load_timezone(timezone))
    return epoch_ms(moment, what)


def check_schedule(values: Mapping[str, Any]) -> cron.CronSpec:
    """Validate a schedule's fields (snake_case column names); return its cron spec.

    Raises:
        InvalidCron, InvalidTimezone, InvalidInput: a field is wrong.
    """
    spec = cron.parse_cron(str(values["cron"]), str(values["timezone"]))
    if values["catchup"] not in cron.CATCHUP_POLICIES:
        raise InvalidInput(
            f"catchup must be one of {', '.join(cron.CATCHUP_POLICIES)}, not {values['catchup']!r}"
        )
    window = values["catchup_window_seconds"]
    if not isinstance(window, int) or not 1 <= window <= MAX_CATCHUP_WINDOW_SECONDS:
        raise InvalidInput(
            f"catchupWindowSeconds must be between 1 and {MAX_CATCHUP_WINDOW_SECONDS}"
        )
    start, end = values.get("start_at_ms"), values.get("end_at_ms")
    if start is not None and end is not None and end < start:
        raise InvalidInput("endAt is before startAt")
    if values.get("input") is not None and not isinstance(values["input"], dict):
        raise InvalidInput("a schedule's input must be a JSON object")
    return spec


def next_fire(values: Mapping[str, Any], spec: cron.CronSpec, now_ms: int) -> int | None:
    """The first slot of ``spec`` from ``now_ms`` within the schedule's date range."""
    return cron.first_slot(
        spec,
        now_ms=now_ms,
        start_at_ms=values.get("start_at_ms"),
        end_at_ms=values.get("end_at_ms"),
    )


class ScheduleService(OwnedService[ScheduleRecord]):
    """Create, read, change, delete and fire schedules."""

    kind = OwnedKind.over(
        q,
        "schedule",
        ScheduleRecord,
        ScheduleNotFound,
        ("name", "workflow_id", "cron"),
        "schedules",
    )
    delete_advice = "remove it from the workflow document (or disable it with PATCH)"

    def __init__(self, store: Store, registry: Registry, runs: RunService) -> None:
        self.store = store
        self.registry = registry
        self.runs = runs

    async def create(self, caller: Caller, values: Mapping[str, Any]) -> ScheduleRecord:
        """Create an API-owned schedule (editor); the caller is its ``created_by``.

        Args:
            caller: who asks.
            values: ``workflow_id`` (or ``workflow`` name and ``namespace``), ``cron`` and
                optionally ``name``, ``timezone``, ``input``, ``enabled``, ``start_at``,
                ``end_at``, ``catchup``, ``catchup_window_seconds``.

        Raises:
            WorkflowNotFound: no such workflow visible to the caller.
            InvalidCron, InvalidTimezone, InvalidInput: a field is wrong.
            Conflict: the workflow already has a schedule with that name.
        """
        timezone = str(values.get("timezone") or "UTC")
        row: Row = {
            "id": new_id(),
            "name": values.get("name") or f"schedule-{secrets.token_hex(4)}",
            "cron": values.get("cron"),
            "timezone": timezone,
            "input": values.get("input") or {},
            "enabled": bool(values.get("enabled", True)),
            "start_at_ms": parse_instant(values.get("start_at"), timezone, "startAt"),
            "end_at_ms": parse_instant(values.get("end_at"), timezone, "endAt"),
            "catchup": values.get("catchup") or DEFAULT_CATCHUP,
            "catchup_window_seconds": values.get("catchup_window_seconds")
            or DEFAULT_CATCHUP_WINDOW_SECONDS,
            "owner": "api",
        }
        spec = check_schedule(row)

        def place(tx: Tx, row: Row) -> None:
            workflow = find_workflow(tx, values, caller)
            if workflow is None:
                raise InvalidInput("give workflowId (or workflow, a name, with namespace)")
            if q.schedule_by_name(tx, workflow.id, row["name"]) is not None:
                raise Conflict(
                    f"workflow {workflow.name!r} already has a schedule named {row['name']!r}"
                )
            row.update(
                namespace=workflow.namespace,
                workflow_id=workflow.id,
                next_fire_ms=next_fire(row, spec, tx.now_ms),
                last_fired_slot_ms=None,
            )

        return await self._create(caller, row, place)

    async def list_named(
        self, caller: Caller, *, cursor: str | None = None, limit: int = 50
    ) -> Page[tuple[ScheduleRecord, str]]:
        """:meth:`list`, each schedule with its workflow's name (what the Smithers Gateway's
        ``cron.list`` shows as ``workflow``), read in the same transaction."""
        caller.require(self.kind.role)

        def read(tx: Tx, visible: list[str] | None, n: int) -> list[tuple[ScheduleRecord, str]]:
            rows = self.kind.listing(
                tx, namespaces=visible, workflow_id=None, after_id=cursor, limit=n
            )
            names: dict[str, str] = {}
            for row in rows:
                if row.workflow_id not in names:
                    workflow = wq.get_workflow_row(tx, row.workflow_id, include_deleted=True)
                    names[row.workflow_id] = workflow.name if workflow else ""
            return [(row, names[row.workflow_id]) for row in rows]

        return await visible_page(
            self.store, caller, None, limit, read, cursor_of=lambda item: item[0].id
        )

    async def get_with_fires(
        self, caller: Caller, schedule_id: str, limit: int = 10
    ) -> tuple[ScheduleRecord, list[ScheduleFireRecord]]:
        """Return one schedule and its ``limit`` most recent fires (404 when not visible)."""
        caller.require(self.kind.role)

        def fn(tx: Tx) -> tuple[ScheduleRecord, list[ScheduleFireRecord]]:
            row = self._visible(tx, schedule_id, caller)
            return row, q.list_fires(tx, schedule_id, limit)

        return await self.store.read(fn)

    async def update(
        self, caller: Caller, schedule_id: str, changes: Mapping[str, Any]
    ) -> ScheduleRecord:
        """Change some fields of a schedule (``PATCH``); a workflow's own accept ``enabled`` only.

        Raises:
            ScheduleNotFound: absent or in another namespace.
            Conflict: a field other than ``enabled`` on a schedule declared by a workflow.
        """

        def change(tx: Tx, record: ScheduleRecord) -> tuple[dict[str, Any], dict[str, Any]]:
            if record.owner == "workflow" and set(changes) - {"enabled"}:
                raise self._declared(
                    "change the workflow document (only `enabled` can be changed here)"
                )
            current = record.columns()
            merged = dict(current)
            timezone = str(changes.get("timezone") or record.timezone)
            for key, value in changes.items():
                if key in ("start_at", "end_at"):
                    merged[f"{key}_ms"] = parse_instant(value, timezone, key)
                elif key == "catchup_window_seconds" and value is None:
                    merged[key] = DEFAULT_CATCHUP_WINDOW_SECONDS
                elif key == "input":
                    merged[key] = value or {}
                else:
                    merged[key] = value
            if not merged.get("name"):
                raise InvalidInput("name cannot be empty")
            spec = check_schedule(merged)
            if merged["name"] != current["name"]:
                other = q.schedule_by_name(tx, current["workflow_id"], merged["name"])
                if other is not None:
                    raise Conflict(f"the workflow already has a schedule named {merged['name']!r}")
            retime = any(merged[f] != current[f] for f in TIMING_FIELDS) or (
                merged["enabled"] and not current["enabled"]
            )
            if retime:
                merged["next_fire_ms"] = next_fire(merged, spec, tx.now_ms)
            merged["updated_at_ms"] = tx.now_ms
            columns = {k: v for k, v in merged.items() if k != "id"}
            return columns, {"changed": sorted(changes)}

        return await self._update(caller, schedule_id, change)

    async def trigger(
        self,
        caller: Caller,
        schedule_id: str,
        *,
        run_input: dict[str, Any] | None = None,
        idempotency_key: str | None = None,
    ) -> StartResult:
        """Start a run of the schedule's workflow now, outside its slots (by ``caller``).

        Raises:
            ScheduleNotFound: absent or in another namespace.
            WorkflowNotFound: the workflow was deleted.
        """

        caller.require(self.kind.role)

        def fn(tx: Tx) -> tuple[ScheduleRecord, WorkflowRecord | None]:
            schedule = self._visible(tx, schedule_id, caller)
            return schedule, wq.get_workflow_row(tx, schedule.workflow_id)

        schedule, workflow = await self.store.read(fn)
        if workflow is None:
            raise WorkflowNotFound(f"the workflow of schedule {schedule_id!r} was deleted")
        return await self.runs.start(
            Caller.system(),
            workflow.document,
            run_input if run_input is not None else schedule.input or {},
            namespace=schedule.namespace,
            workflow_id=workflow.id,
            workflow_version=workflow.version,
            idempotency_key=idempotency_key,
            trigger="schedule",
            triggered_by=caller.name,
        )

    async def tick(self, caller: Caller, now_ms: int | None = None) -> scheduler.TickResult:
        """Fire every due slot now (admin; what each scheduler loop does on its own)."""
        caller.require("admin")
        return await scheduler.tick(self.store, now_ms, registry=self.registry)
