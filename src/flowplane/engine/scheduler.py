"""The scheduler: the exactly-once tick of cron schedules, and the loop that runs it.

:func:`tick` fires the due slots of every due schedule (the slots themselves are computed by
:mod:`flowplane.model.cron`); any number of processes may call it at once: a unique
``(schedule_id, slot_ms)`` row, inserted in the same transaction as the run it starts, decides
which one fires a slot, and the run's idempotency key (``schedule:<id>:<slot_ms>``) is derived
from the slot.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import time
from dataclasses import dataclass, field
from typing import Any

from flowplane.connectors.registry import Registry, default_registry
from flowplane.engine import starting
from flowplane.engine.outage import Backoff
from flowplane.errors import FlowplaneError
from flowplane.ids import new_id
from flowplane.ids import now_ms as clock_ms
from flowplane.model.cron import MISFIRE_GRACE_MS, parse_cron, plan_slots
from flowplane.store import trigger_queries as q
from flowplane.store import workflow_queries as wq
from flowplane.store.base import Store
from flowplane.store.records import ScheduleRecord, WorkflowRecord
from flowplane.store.tx import Tx
from flowplane.timeouts import wait_for

_log = logging.getLogger("flowplane.cron")

DUE_LIMIT = 100
"""Most schedules one tick handles."""
SCHEDULER_MAX_SLEEP_SECONDS = 5.0
"""Longest idle wait of the scheduler loop (a ``schedules`` wake-up cuts it)."""
SCHEDULER_MIN_SLEEP_SECONDS = 0.02
DELIVERY_RETENTION_SECONDS = 30 * 86400
"""Webhook delivery ids are remembered (replays refused) this long."""
PRUNE_INTERVAL_SECONDS = 3600.0


@dataclass
class TickResult:
    """What one tick did, summed over schedules (``POST /v1/admin/tick`` returns it)."""

    fired: int = 0
    failed: int = 0
    skipped_already_fired: int = 0
    skipped_not_matching: int = 0
    skipped_expired: int = 0
    run_ids: list[str] = field(default_factory=list)
    fires: list[tuple[str, str]] = field(default_factory=list)
    """``(schedule id, run id)`` of each slot fired."""
    failures: list[tuple[str, str]] = field(default_factory=list)
    """``(schedule id, why)`` of each failure."""


@dataclass
class _ScheduleRun:
    """A schedule's run, prepared once per tick (or the reason it cannot start)."""

    run: starting.Prepared | None = None
    version: int | None = None
    error: dict[str, Any] | None = None


def schedule_idempotency_key(schedule_id: str, slot_ms: int) -> str:
    """The idempotency key of the run fired for a slot."""
    return f"schedule:{schedule_id}:{slot_ms}"


def _prepare(
    workflow_row: WorkflowRecord | None, schedule: ScheduleRecord, registry: Registry
) -> _ScheduleRun:
    if workflow_row is None:
        return _ScheduleRun(
            error={"code": "workflow_not_found", "message": "the schedule's workflow is deleted"}
        )
    try:
        run = starting.prepare(
            workflow_row.document,
            schedule.input or {},
            registry,
            namespace=schedule.namespace,
        )
    except FlowplaneError as exc:
        return _ScheduleRun(error=exc.to_dict())
    except ValueError as exc:  # pydantic ValidationError
        return _ScheduleRun(error={"code": "workflow_invalid", "message": str(exc)[:2000]})
    return _ScheduleRun(run=run, version=workflow_row.version)


def fire_slot(tx: Tx, schedule: ScheduleRecord, slot_ms: int, prepared: _ScheduleRun) -> str | None:
    """Fire one slot in the open transaction.

    Returns the run id, ``""`` when the fire was recorded as failed, or ``None`` when another
    process already handled the slot.
    """
    run_id = new_id() if prepared.error is None else None
    won = q.claim_fire(
        tx,
        {
            "schedule_id": schedule.id,
            "slot_ms": slot_ms,
            "run_id": run_id,
            "fired_at_ms": tx.now_ms,
            "status": "fired" if run_id else "failed",
            "error": prepared.error,
        },
    )
    if not won:
        return None
    if run_id is None:
        return ""
    assert prepared.run is not None
    run, _created = starting.start(
        tx,
        prepared.run,
        run_id=run_id,
        workflow_id=schedule.workflow_id,
        workflow_version=prepared.version,
        idempotency_key=schedule_idempotency_key(schedule.id, slot_ms),
        trigger="schedule",
        triggered_by=f"schedule:{schedule.id}",
    )
    return str(run.id)


async def tick(
    store: Store,
    now_ms: int | None = None,
    *,
    registry: Registry | None = None,
    grace_ms: int = MISFIRE_GRACE_MS,
) -> TickResult:
    """Fire every due slot of every due schedule once; safe to call from many processes.

    Args:
        store: the store.
        now_ms: the clock (default: now); tests pass a simulated time.
        registry: connectors used to check the workflow before a run starts.
        grace_ms: how late a slot may be handled and still count as on time.
    """
    now = clock_ms() if now_ms is None else now_ms
    reg = registry or _registry()
    result = TickResult()
    due = await store.read(lambda tx: q.due_schedules(tx, now, DUE_LIMIT))
    for schedule in due:
        try:
            await _tick_schedule(store, reg, schedule, now, grace_ms, result)
        except FlowplaneError as exc:
            _log.warning("schedule %s: tick failed: %s", schedule.id, exc)
            result.failed += 1
            result.failures.append((str(schedule.id), exc.detail))
    return result


async def _tick_schedule(
    store: Store,
    registry: Registry,
    schedule: ScheduleRecord,
    now: int,
    grace_ms: int,
    result: TickResult,
) -> None:
    due_ms = schedule.next_fire_ms
    assert due_ms is not None  # due_schedules returns only schedules with a next slot
    try:
        spec = parse_cron(schedule.cron, schedule.timezone)
    except FlowplaneError:
        # Stored before a rule change: park it rather than fail every tick.
        await store.transact(
            lambda tx: q.advance_schedule(
                tx,
                schedule.id,
                expected_next_ms=due_ms,
                next_fire_ms=None,
                last_fired_slot_ms=None,
            )
        )
        result.failed += 1
        result.failures.append((str(schedule.id), "its cron expression no longer parses"))
        return
    plan = plan_slots(
        spec,
        next_fire_ms=due_ms,
        now_ms=now,
        catchup=schedule.catchup,
        window_ms=schedule.catchup_window_seconds * 1000,
        end_at_ms=schedule.end_at_ms,
        grace_ms=grace_ms,
    )
    result.skipped_expired += plan.expired
    if not plan.fire:
        result.skipped_not_matching += 1 if not plan.expired else 0
    else:
        row = await store.read(lambda tx: wq.get_workflow_row(tx, schedule.workflow_id))
        prepared = _prepare(row, schedule, registry)
        for slot in plan.fire:
            outcome = await store.transact(
                functools.partial(fire_slot, schedule=schedule, slot_ms=slot, prepared=prepared)
            )
            if outcome is None:
                result.skipped_already_fired += 1
            elif outcome == "":
                result.failed += 1
                why = "the run could not start (the schedule's recent fires say why)"
                result.failures.append((str(schedule.id), why))
            else:
                result.fired += 1
                result.run_ids.append(outcome)
                result.fires.append((str(schedule.id), outcome))
    last_fired = plan.fire[-1] if plan.fire else None

    def advance(tx: Tx) -> None:
        q.advance_schedule(
            tx,
            schedule.id,
            expected_next_ms=due_ms,
            next_fire_ms=plan.next_fire_ms,
            last_fired_slot_ms=last_fired,
        )

    await store.transact(advance)


_REGISTRY: Registry | None = None


def _registry() -> Registry:
    global _REGISTRY
    if _REGISTRY is None:
        _REGISTRY = default_registry()
    return _REGISTRY


class Scheduler:
    """Ticks whenever a schedule is due; one runs next to every worker.

    There is no leader: every process's scheduler ticks, and the unique slot rows make each
    slot fire once. The loop sleeps until the earliest pending slot (at most
    :data:`SCHEDULER_MAX_SLEEP_SECONDS`); a ``schedules`` notification (a schedule created or
    changed, on any process when on PostgreSQL) wakes it early.
    """

    def __init__(
        self,
        store: Store,
        *,
        registry: Registry | None = None,
        max_sleep_seconds: float = SCHEDULER_MAX_SLEEP_SECONDS,
    ) -> None:
        self.store = store
        self.registry = registry
        self.max_sleep_seconds = max_sleep_seconds
        self._wake = asyncio.Event()
        self._stopping = False
        self._pruned_at: float | None = None

    def _on_notify(self, kind: str, _payload: str) -> None:
        if kind == "schedules":
            self._wake.set()

    async def run(self) -> None:
        """Tick until :meth:`stop` is called (or the task is cancelled)."""
        remove = self.store.add_listener(self._on_notify, kinds=("schedules",))
        backoff = Backoff("scheduler tick")
        try:
            while not self._stopping:
                self._wake.clear()
                try:
                    await tick(self.store, registry=self.registry)
                    await self._prune()
                    delay = await self._delay()
                    backoff.succeeded()
                except Exception as exc:
                    # A database outage (or a bug) must not end the loop: retry with
                    # backoff, so slots due meanwhile fire soon after the database is back.
                    if not isinstance(exc, FlowplaneError):
                        _log.exception("scheduler tick failed")
                    delay = min(self.max_sleep_seconds, backoff.failed(exc))
                with contextlib.suppress(TimeoutError):
                    await wait_for(self._wake.wait(), delay)
        finally:
            remove()

    async def stop(self) -> None:
        """Ask the loop to finish after the current tick."""
        self._stopping = True
        self._wake.set()

    async def _prune(self) -> None:
        if (
            self._pruned_at is not None
            and time.monotonic() - self._pruned_at < PRUNE_INTERVAL_SECONDS
        ):
            return
        self._pruned_at = time.monotonic()
        cutoff = clock_ms() - DELIVERY_RETENTION_SECONDS * 1000
        await self.store.transact(lambda tx: q.prune_deliveries(tx, cutoff))

    async def _delay(self) -> float:
        earliest = await self.store.read(q.earliest_next_fire)
        if earliest is None:
            return self.max_sleep_seconds
        seconds = (earliest - clock_ms()) / 1000
        return min(self.max_sleep_seconds, max(SCHEDULER_MIN_SLEEP_SECONDS, seconds))
