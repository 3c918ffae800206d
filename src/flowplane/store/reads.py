"""Read queries for the control plane: runs, events, frames, logs (cursor pagination).

What services read comes back as :mod:`flowplane.store.records`; event payloads are the
wire bodies of the events committed, rebuilt from their compact stored form
(:mod:`flowplane.store.event_codec`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa

from flowplane.store import schema as t
from flowplane.store.event_codec import unpack_events, unpack_frame
from flowplane.store.node_pages import node_rows_after
from flowplane.store.records import (
    ApprovalRecord,
    AttemptRecord,
    EventRecord,
    FrameRecord,
    LogRecord,
    NodeRunRecord,
    RunRecord,
)
from flowplane.store.tx import Tx


def run(tx: Tx, run_id: str, *, with_document: bool = False) -> RunRecord | None:
    """Return one run (``None`` when absent), by default without its document."""
    return tx.get_run(run_id, with_document=with_document)


def node_runs(tx: Tx, run_id: str) -> list[NodeRunRecord]:
    """Return every node run of the run, in insertion order."""
    return tx.node_rows(run_id)


def first_node_runs(tx: Tx, run_id: str, limit: int) -> list[NodeRunRecord]:
    """Return the run's first ``limit`` node runs, in insertion order (one read, no count)."""
    return node_rows_after(tx, run_id, 0, limit)


def approvals(
    tx: Tx, *, status: str | None, namespaces: Sequence[str] | None, limit: int
) -> list[ApprovalRecord]:
    """Return approvals, pending first and longest wait first, each with its run's workflow
    name and status (one run read per distinct run)."""
    runs: dict[str, RunRecord | None] = {}
    out: list[ApprovalRecord] = []
    for approval in tx.list_approvals(status=status, namespaces=namespaces, limit=limit):
        run_id = approval.run_id
        if run_id not in runs:
            runs[run_id] = tx.get_run(run_id, with_document=False)
        found = runs[run_id]
        if found is None:
            out.append(approval)
        else:
            out.append(approval.of_run(found.workflow_name, found.status))
    return out


def approval(tx: Tx, approval_id: str) -> ApprovalRecord | None:
    """Return one approval by id, with its run's workflow name and status."""
    found = tx.approval_by_id(approval_id)
    if found is None:
        return None
    run_row = tx.get_run(found.run_id, with_document=False)
    return found if run_row is None else found.of_run(run_row.workflow_name, run_row.status)


def run_approvals(tx: Tx, run_id: str) -> list[ApprovalRecord]:
    """Return every approval of one run, oldest first."""
    return tx.run_approvals(run_id)


def run_summaries(
    tx: Tx,
    *,
    namespaces: Sequence[str] | None = None,
    statuses: Sequence[str] | None = None,
    workflow: str | None = None,
    created_after_ms: int | None = None,
    created_before_ms: int | None = None,
    before_id: str | None = None,
    limit: int = 50,
) -> list[RunRecord]:
    """Return runs (without documents), newest first; ``before_id`` is the cursor."""
    c = t.runs.c
    cols = [col for col in t.runs.c if col.name != "document"]
    query = sa.select(*cols)
    if namespaces is not None:
        query = query.where(c.namespace.in_(list(namespaces)))
    if statuses:
        query = query.where(c.status.in_(list(statuses)))
    if workflow:
        query = query.where(sa.or_(c.workflow_name == workflow, c.workflow_id == workflow))
    if created_after_ms is not None:
        query = query.where(c.created_at_ms >= created_after_ms)
    if created_before_ms is not None:
        query = query.where(c.created_at_ms < created_before_ms)
    if before_id is not None:
        query = query.where(c.id < before_id)
    query = query.order_by(c.id.desc()).limit(limit)
    return [RunRecord.from_row(r._mapping) for r in tx.conn.execute(query)]


def events_after(
    tx: Tx,
    *,
    run_id: str | None = None,
    namespaces: Sequence[str] | None = None,
    types: Sequence[str] | None = None,
    after_seq: int = 0,
    limit: int = 500,
) -> list[EventRecord]:
    """Return up to ``limit`` events with ``seq > after_seq`` in ``seq`` order.

    Events are stored in batches (one row per transaction and run): the rows are read a
    page at a time, from the one holding ``after_seq + 1`` (a resume from the middle of a
    batch), until ``limit`` events matched or the log ends.
    """
    c = t.event_batches.c
    base = sa.select(t.event_batches)
    if run_id is not None:
        base = base.where(c.run_id == run_id)
    if namespaces is not None:
        base = base.where(c.namespace.in_(list(namespaces)))
    wanted = set(types) if types else None
    out: list[EventRecord] = []
    position = after_seq
    while len(out) < limit:
        page = limit - len(out) if wanted is None else max(limit - len(out), 100)
        query = base.where(c.last_seq > position).order_by(c.last_seq).limit(page)
        rows = tx.conn.execute(query).all()
        for row in rows:
            for event in unpack_events(row._mapping, tx.dialect):
                if event.seq > after_seq and (wanted is None or event.type in wanted):
                    out.append(event)
        if len(rows) < page:
            break
        position = rows[-1].last_seq
    return out[:limit]


def event_tail(tx: Tx, after_seq: int, limit: int) -> list[tuple[str, dict[str, Any]]]:
    """Return ``(namespace, payload)`` of every event with ``seq > after_seq``, in ``seq``
    order, at most ``limit``: what the event feed's tail offers its live subscribers (only
    the namespace, which the payload lacks, and the wire body)."""
    events = events_after(tx, after_seq=after_seq, limit=limit)
    return [(event.namespace, event.payload) for event in events]


def last_seq(tx: Tx) -> int:
    """Return the newest event ``seq`` (0 when there are none)."""
    query = sa.select(sa.func.max(t.event_batches.c.last_seq))
    return int(tx.conn.execute(query).scalar() or 0)


def _frames(tx: Tx, run_id: str, *conditions: sa.ColumnElement[bool]) -> sa.Select[Any]:
    c = t.event_batches.c
    # Frame numbers grow with seq within a run (both are taken under the run's lock), so
    # the (run_id, last_seq) index gives them in order.
    return (
        sa.select(c.run_id, c.frame_no, c.last_seq, c.ts_ms, c.changes, c.events)
        .where(c.run_id == run_id, c.frame_no.is_not(None), *conditions)
        .order_by(c.last_seq)
    )


def frames_after(
    tx: Tx, run_id: str, *, after_frame_no: int = 0, limit: int = 100
) -> list[FrameRecord]:
    """Return the run's frames after ``after_frame_no``."""
    query = _frames(tx, run_id, t.event_batches.c.frame_no > after_frame_no).limit(limit)
    return [unpack_frame(r._mapping, tx.dialect) for r in tx.conn.execute(query)]


def frames_until(tx: Tx, run_id: str, frame_no: int) -> list[FrameRecord]:
    """Return the run's frames ``1..frame_no`` (to fold into a snapshot, or on a rewind)."""
    query = _frames(tx, run_id, t.event_batches.c.frame_no <= frame_no)
    return [unpack_frame(r._mapping, tx.dialect) for r in tx.conn.execute(query)]


def logs_after(tx: Tx, run_id: str, *, after_id: int = 0, limit: int = 200) -> list[LogRecord]:
    """Return the run's log lines after ``after_id``."""
    c = t.logs.c
    query = sa.select(t.logs).where(c.run_id == run_id, c.id > after_id).order_by(c.id).limit(limit)
    return [LogRecord.from_row(r._mapping) for r in tx.conn.execute(query)]


def attempts_of(tx: Tx, run_id: str) -> list[AttemptRecord]:
    """Return every attempt of the run's node runs."""
    c = t.attempts.c
    query = sa.select(t.attempts).where(c.run_id == run_id).order_by(c.id)
    return [AttemptRecord.from_row(r._mapping) for r in tx.conn.execute(query)]
