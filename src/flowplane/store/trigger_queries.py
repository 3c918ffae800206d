"""Queries on ``schedules``, ``schedule_fires``, ``triggers`` and ``webhook_deliveries``.

Small functions taking the open :class:`~flowplane.store.tx.Tx`. The two that decide
"exactly once" — :func:`claim_fire` and :func:`record_delivery` — insert with
``ON CONFLICT DO NOTHING`` and report whether this transaction won the row: on PostgreSQL a
concurrent insert of the same key waits for the other transaction and then does nothing, so
no process ever sees a unique-violation error and no leader is needed.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from flowplane.store import schema as t
from flowplane.store.records import (
    DeliveryRecord,
    Record,
    ScheduleFireRecord,
    ScheduleRecord,
    TriggerRecord,
)
from flowplane.store.tx import Tx

R = TypeVar("R", bound=Record)


def _lister(table: sa.Table, record: type[R]) -> Callable[..., list[R]]:
    """The listing of a workflow-owned table (schedules, triggers): rows by id, filtered."""

    def listing(
        tx: Tx,
        *,
        namespaces: Sequence[str] | None = None,
        workflow_id: str | None = None,
        after_id: str | None = None,
        limit: int = 50,
    ) -> list[R]:
        c = table.c
        query = sa.select(table)
        if namespaces is not None:
            query = query.where(c.namespace.in_(list(namespaces)))
        if workflow_id is not None:
            query = query.where(c.workflow_id == workflow_id)
        if after_id is not None:
            query = query.where(c.id > after_id)
        return tx.records(record, query.order_by(c.id).limit(limit))

    return listing


def _of_workflow(table: sa.Table, record: type[R]) -> Callable[..., list[R]]:
    """A workflow's rows of a workflow-owned table (only those of ``owner`` when given)."""

    def of_workflow(tx: Tx, workflow_id: str, owner: str | None = None) -> list[R]:
        c = table.c
        query = sa.select(table).where(c.workflow_id == workflow_id)
        if owner is not None:
            query = query.where(c.owner == owner)
        return tx.records(record, query.order_by(c.id))

    return of_workflow


def _insert_once(tx: Tx, table: sa.Table, values: dict[str, Any], key: Sequence[str]) -> bool:
    """Insert ``values`` unless a row with the same unique ``key`` exists; return if inserted."""
    dialect = postgresql if tx.dialect == "postgresql" else sqlite
    stmt = (
        dialect.insert(table)
        .values(**values)
        .on_conflict_do_nothing(index_elements=list(key))
        .returning(table.c[key[0]])
    )
    # RETURNING, not rowcount: drivers report -1 for an INSERT with implicit RETURNING.
    return tx.conn.execute(stmt).first() is not None


# --- schedules ---------------------------------------------------------------------------


def insert_schedule(tx: Tx, values: dict[str, Any]) -> None:
    """Insert a schedule row."""
    tx.conn.execute(t.schedules.insert().values(**values))


def get_schedule(tx: Tx, schedule_id: str) -> ScheduleRecord | None:
    """Return one schedule."""
    return tx.one(ScheduleRecord, sa.select(t.schedules).where(t.schedules.c.id == schedule_id))


def schedule_by_name(tx: Tx, workflow_id: str, name: str) -> ScheduleRecord | None:
    """Return the schedule ``name`` of a workflow."""
    c = t.schedules.c
    return tx.one(
        ScheduleRecord,
        sa.select(t.schedules).where(c.workflow_id == workflow_id, c.name == name),
    )


list_schedules = _lister(t.schedules, ScheduleRecord)
"""``list_schedules(tx, *, namespaces, workflow_id, after_id, limit)``: schedules by id."""
schedules_of_workflow = _of_workflow(t.schedules, ScheduleRecord)
"""``schedules_of_workflow(tx, workflow_id, owner=None)``: a workflow's schedules."""


def update_schedule(tx: Tx, schedule_id: str, **values: Any) -> bool:
    """Update one schedule row; return whether it existed."""
    values.setdefault("updated_at_ms", tx.now_ms)
    res = tx.conn.execute(
        t.schedules.update().where(t.schedules.c.id == schedule_id).values(**values)
    )
    return bool(res.rowcount)


def delete_schedule(tx: Tx, schedule_id: str) -> bool:
    """Delete a schedule and its fire history; return whether it existed."""
    tx.conn.execute(t.schedule_fires.delete().where(t.schedule_fires.c.schedule_id == schedule_id))
    res = tx.conn.execute(t.schedules.delete().where(t.schedules.c.id == schedule_id))
    return bool(res.rowcount)


def due_schedules(tx: Tx, now_ms: int, limit: int = 100) -> list[ScheduleRecord]:
    """Return enabled schedules whose next slot is at or before ``now_ms``, earliest first."""
    c = t.schedules.c
    query = (
        sa.select(t.schedules)
        .where(c.enabled.is_(True), c.next_fire_ms.is_not(None), c.next_fire_ms <= now_ms)
        .order_by(c.next_fire_ms, c.id)
        .limit(limit)
    )
    return tx.records(ScheduleRecord, query)


def earliest_next_fire(tx: Tx) -> int | None:
    """Return the earliest pending slot of any enabled schedule."""
    c = t.schedules.c
    value = tx.conn.execute(
        sa.select(sa.func.min(c.next_fire_ms)).where(c.enabled.is_(True))
    ).scalar()
    return int(value) if value is not None else None


def advance_schedule(
    tx: Tx,
    schedule_id: str,
    *,
    expected_next_ms: int,
    next_fire_ms: int | None,
    last_fired_slot_ms: int | None,
) -> bool:
    """Move a schedule's next slot forward if nobody else did (compare-and-set)."""
    c = t.schedules.c
    values: dict[str, Any] = {"next_fire_ms": next_fire_ms}
    if last_fired_slot_ms is not None:
        values["last_fired_slot_ms"] = sa.case(
            (c.last_fired_slot_ms.is_(None), last_fired_slot_ms),
            (c.last_fired_slot_ms < last_fired_slot_ms, last_fired_slot_ms),
            else_=c.last_fired_slot_ms,
        )
    res = tx.conn.execute(
        t.schedules.update()
        .where(c.id == schedule_id, c.next_fire_ms == expected_next_ms)
        .values(**values)
    )
    return bool(res.rowcount)


# --- schedule fires ----------------------------------------------------------------------


def claim_fire(tx: Tx, values: dict[str, Any]) -> bool:
    """Insert the fire of ``(schedule_id, slot_ms)``; return whether this transaction won it."""
    return _insert_once(tx, t.schedule_fires, values, ("schedule_id", "slot_ms"))


def list_fires(tx: Tx, schedule_id: str, limit: int = 20) -> list[ScheduleFireRecord]:
    """Return a schedule's most recent fires, newest slot first."""
    c = t.schedule_fires.c
    query = (
        sa.select(t.schedule_fires)
        .where(c.schedule_id == schedule_id)
        .order_by(c.slot_ms.desc())
        .limit(limit)
    )
    return tx.records(ScheduleFireRecord, query)


# --- triggers ----------------------------------------------------------------------------


def insert_trigger(tx: Tx, values: dict[str, Any]) -> None:
    """Insert a trigger row."""
    tx.conn.execute(t.triggers.insert().values(**values))


def get_trigger(tx: Tx, trigger_id: str) -> TriggerRecord | None:
    """Return one trigger."""
    return tx.one(TriggerRecord, sa.select(t.triggers).where(t.triggers.c.id == trigger_id))


def trigger_by_key(tx: Tx, key: str) -> TriggerRecord | None:
    """Return the trigger answering ``/v1/webhooks/{key}``."""
    return tx.one(TriggerRecord, sa.select(t.triggers).where(t.triggers.c.key == key))


list_triggers = _lister(t.triggers, TriggerRecord)
"""``list_triggers(tx, *, namespaces, workflow_id, after_id, limit)``: triggers by id."""
triggers_of_workflow = _of_workflow(t.triggers, TriggerRecord)
"""``triggers_of_workflow(tx, workflow_id, owner=None)``: a workflow's triggers."""


def update_trigger(tx: Tx, trigger_id: str, **values: Any) -> bool:
    """Update one trigger row; return whether it existed."""
    values.setdefault("updated_at_ms", tx.now_ms)
    res = tx.conn.execute(t.triggers.update().where(t.triggers.c.id == trigger_id).values(**values))
    return bool(res.rowcount)


def delete_trigger(tx: Tx, trigger_id: str) -> bool:
    """Delete a trigger and its delivery log; return whether it existed."""
    c = t.webhook_deliveries.c
    tx.conn.execute(t.webhook_deliveries.delete().where(c.trigger_id == trigger_id))
    res = tx.conn.execute(t.triggers.delete().where(t.triggers.c.id == trigger_id))
    return bool(res.rowcount)


# --- webhook deliveries ------------------------------------------------------------------


def record_delivery(tx: Tx, trigger_id: str, delivery_id: str, run_id: str | None) -> bool:
    """Record a delivery id; return ``False`` when it was already seen (a replay)."""
    values = {
        "trigger_id": trigger_id,
        "delivery_id": delivery_id,
        "received_at_ms": tx.now_ms,
        "run_id": run_id,
    }
    return _insert_once(tx, t.webhook_deliveries, values, ("trigger_id", "delivery_id"))


def get_delivery(tx: Tx, trigger_id: str, delivery_id: str) -> DeliveryRecord | None:
    """Return the recorded delivery ``delivery_id`` of a trigger."""
    c = t.webhook_deliveries.c
    return tx.one(
        DeliveryRecord,
        sa.select(t.webhook_deliveries).where(
            c.trigger_id == trigger_id, c.delivery_id == delivery_id
        ),
    )


def prune_deliveries(tx: Tx, before_ms: int) -> int:
    """Forget delivery ids received before ``before_ms``; return how many."""
    c = t.webhook_deliveries.c
    res = tx.conn.execute(t.webhook_deliveries.delete().where(c.received_at_ms < before_ms))
    return int(res.rowcount or 0)


def waiting_signal_nodes(
    tx: Tx, namespace: str, *, workflow_id: str | None = None, limit: int = 1000
) -> list[tuple[str, Any]]:
    """Return ``(run_id, wait)`` of node runs waiting for a signal in ``namespace``.

    The caller filters on the ``wait`` document (signal name, correlation id) in Python, so
    the query stays the same on SQLite and PostgreSQL.
    """
    n, r = t.node_runs.c, t.runs.c
    query = (
        sa.select(n.run_id, n.wait)
        .join_from(t.node_runs, t.runs, n.run_id == r.id)
        .where(n.status == "waiting-event", r.namespace == namespace)
        .order_by(n.id)
        .limit(limit)
    )
    if workflow_id is not None:
        query = query.where(r.workflow_id == workflow_id)
    return [(row.run_id, row.wait) for row in tx.conn.execute(query)]
