"""Read queries for the control plane: runs, events, frames, logs (cursor pagination).

What services read comes back as :mod:`flowplane.store.records`; event payloads are the
wire bodies of the events committed, rebuilt from their compact stored form
(:mod:`flowplane.store.event_codec`).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

import sqlalchemy as sa

from flowplane.jsontext import dumps
from flowplane.store import attempt_reads
from flowplane.store import schema as t
from flowplane.store.event_codec import jsonb_normal, unpack_events, unpack_frame
from flowplane.store.prepared import Prepared
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
    rows, _count = _FIRST_NODE_RUNS.execute(tx.conn, {"_run": run_id, "_limit": limit})
    return rows


# The detail's reads, prepared: a live run's detail that is not in the run cache reads them
# (they cost a third of what building the statement and its rows through SQLAlchemy did).
_FIRST_NODE_RUNS = Prepared(
    sa.select(t.node_runs)
    .where(t.node_runs.c.run_id == sa.bindparam("_run"))
    .order_by(t.node_runs.c.id)
    .limit(sa.bindparam("_limit")),
    record=NodeRunRecord,
)


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
    """Return run summaries, newest first; ``before_id`` is the cursor.

    Only the columns a listing shows are read: no document, input or output (``None``).
    """
    params: dict[str, Any] = {"_limit": limit}
    for index, namespace in enumerate(namespaces or ()):
        params[f"_ns{index}"] = namespace
    for index, status in enumerate(statuses or ()):
        params[f"_st{index}"] = status
    if workflow:
        params["_workflow"] = workflow
    if created_after_ms is not None:
        params["_after"] = created_after_ms
    if created_before_ms is not None:
        params["_before"] = created_before_ms
    if before_id is not None:
        params["_cursor"] = before_id
    shape = (None if namespaces is None else len(namespaces), *params)
    statement = _SUMMARY_STATEMENTS.get(shape)
    if statement is None:
        statement = Prepared(_summary_query(namespaces is not None, params), record=RunRecord)
        if len(_SUMMARY_STATEMENTS) < MAX_SUMMARY_SHAPES:
            _SUMMARY_STATEMENTS[shape] = statement
    rows, _count = statement.execute(tx.conn, params)
    return rows


MAX_SUMMARY_SHAPES = 256
"""Prepared listing statements kept (one per filter shape: which filters, how many values)."""
_SUMMARY_STATEMENTS: dict[tuple[Any, ...], Prepared[RunRecord]] = {}


def _summary_query(by_namespace: bool, params: dict[str, Any]) -> sa.Select[Any]:
    """The listing statement for the filters ``params`` names (see :func:`run_summaries`).

    Filtered by workflow (its name or its id), it is two pages, one per column, each read
    in id order from that column's index (``ix_runs_workflow_name_id``,
    ``ix_runs_workflow_id_id``), and the first page of the two: an ``OR`` of the columns
    would read and sort every run of the workflow for each page."""
    c = t.runs.c

    def values(prefix: str) -> list[Any]:
        return [sa.bindparam(name) for name in params if name.startswith(prefix)]

    conditions: list[sa.ColumnElement[bool]] = []
    if by_namespace:
        conditions.append(c.namespace.in_(values("_ns")) if values("_ns") else sa.false())
    if statuses := values("_st"):
        conditions.append(c.status.in_(statuses))
    if "_after" in params:
        conditions.append(c.created_at_ms >= sa.bindparam("_after"))
    if "_before" in params:
        conditions.append(c.created_at_ms < sa.bindparam("_before"))
    if "_cursor" in params:
        conditions.append(c.id < sa.bindparam("_cursor"))
    limit: sa.BindParameter[Any] = sa.bindparam("_limit")

    def page(*more: sa.ColumnElement[bool]) -> sa.Select[Any]:
        query = sa.select(*_SUMMARY_COLUMNS, sa.null().label("input"))
        return query.where(*conditions, *more).order_by(c.id.desc()).limit(limit)

    if "_workflow" not in params:
        return page()
    workflow: sa.BindParameter[Any] = sa.bindparam("_workflow")
    # (A run the name finds is left out of the id half: no run twice.)
    by_name = page(c.workflow_name == workflow).subquery().select()
    by_id = page(c.workflow_id == workflow, c.workflow_name != workflow).subquery().select()
    both = sa.union_all(by_name, by_id).subquery()
    return sa.select(*both.c).order_by(both.c.id.desc()).limit(limit)


_SUMMARY_COLUMNS = [
    t.runs.c[name]
    for name in (
        "id",
        "namespace",
        "workflow_id",
        "workflow_name",
        "workflow_version",
        "status",
        "error",
        "parent_run_id",
        "forked_from",
        "trigger",
        "triggered_by",
        "created_at_ms",
        "started_at_ms",
        "finished_at_ms",
    )
]
"""What a run listing shows (:func:`run_summaries`)."""


def runs_changed_after(tx: Tx, after_seq: int, limit: int) -> list[tuple[int, str]]:
    """``(last seq, run id)`` of the first ``limit`` event batches (one per transaction and
    run) ending after ``after_seq``: which runs changed since (the live-run cache's
    catch-up, :mod:`flowplane.services.run_cache`)."""
    c = t.event_batches.c
    query = (
        sa.select(c.last_seq, c.run_id)
        .where(c.last_seq > after_seq)
        .order_by(c.last_seq)
        .limit(limit)
    )
    return [(int(seq), str(run_id)) for seq, run_id in tx.conn.execute(query)]


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
    # A namespace list is an IN list (not preparable): that read is built here, once.
    scope: list[sa.ColumnElement[bool]] = []
    if namespaces is not None:
        if run_id is not None:
            scope.append(c.run_id == run_id)
        scope.append(c.namespace.in_(list(namespaces)))
    wanted = set(types) if types else None
    out: list[EventRecord] = []
    position = after_seq
    while len(out) < limit:
        page = limit - len(out) if wanted is None else max(limit - len(out), 100)
        rows: Sequence[Mapping[Any, Any]]
        if namespaces is None:  # the tail's and a run's reads: prepared (no IN list)
            params: dict[str, Any] = {"_after": position, "_limit": page}
            if run_id is None:
                rows, _ = _EVENTS_AFTER.execute(tx.conn, params)
            else:
                rows, _ = _RUN_EVENTS_AFTER.execute(tx.conn, {**params, "_run": run_id})
        else:
            query = _events_query(*scope, c.last_seq > position).limit(page)
            rows = [row._mapping for row in tx.conn.execute(query)]
        for row in rows:
            for event in unpack_events(row, tx.dialect):
                if event.seq > after_seq and (wanted is None or event.type in wanted):
                    out.append(event)
        if len(rows) < page:
            break
        position = rows[-1]["last_seq"]
    return out[:limit]


# What unpack_events reads of a batch (not its frame's changes).
_EVENT_COLUMNS = tuple(
    t.event_batches.c[name]
    for name in ("last_seq", "size", "run_id", "namespace", "ts_ms", "events", "frame_no")
)


def _events_query(*conditions: sa.ColumnElement[bool]) -> sa.Select[Any]:
    """The batches matching ``conditions``, in ``seq`` order (what unpack_events reads)."""
    return sa.select(*_EVENT_COLUMNS).where(*conditions).order_by(t.event_batches.c.last_seq)


# The event feed's tail and a run's event reads, run on the driver's cursor (prepared.py):
# the tail reads once per commit or so while anyone streams, and SQLAlchemy's execution
# cost more than the read itself (issue 19).
_AFTER = t.event_batches.c.last_seq > sa.bindparam("_after")
_EVENTS_AFTER = Prepared(_events_query(_AFTER).limit(sa.bindparam("_limit")))
_RUN_EVENTS_AFTER = Prepared(
    _events_query(t.event_batches.c.run_id == sa.bindparam("_run"), _AFTER).limit(
        sa.bindparam("_limit")
    )
)


def event_tail(tx: Tx, after_seq: int, limit: int) -> list[tuple[str, dict[str, Any]]]:
    """Return ``(namespace, payload)`` of every event with ``seq > after_seq``, in ``seq``
    order, at most ``limit``: what the event feed's tail offers its live subscribers (only
    the namespace, which the payload lacks, and the wire body)."""
    events = events_after(tx, after_seq=after_seq, limit=limit)
    return [(event.namespace, event.payload) for event in events]


def stored_copy(row: Mapping[str, Any], dialect: str) -> dict[str, Any]:
    """An ``event_batches`` row as this transaction inserted it, as a read of the table
    gives it back (its ``events`` through the stored JSON text: the values a reader gets,
    none of the writer's objects; on PostgreSQL in JSONB's key order, as written)."""
    events = json.loads(dumps(row["events"]))
    return {
        "last_seq": row["last_seq"],
        "size": row["size"],
        "run_id": row["run_id"],
        "namespace": row["namespace"],
        "ts_ms": row["ts_ms"],
        "frame_no": row["frame_no"],
        "events": jsonb_normal(events) if dialect == "postgresql" else events,
    }


def event_rows_tail(
    rows: Sequence[Mapping[str, Any]], dialect: str
) -> list[tuple[str, dict[str, Any]]]:
    """:func:`event_tail` of ``event_batches`` rows already in hand (as read back from
    the table: their ``events`` decoded from the stored JSON), every event of them."""
    return [
        (event.namespace, event.payload) for row in rows for event in unpack_events(row, dialect)
    ]


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


def attempts_of(
    tx: Tx, run_id: str, nodes: Sequence[NodeRunRecord] | None = None
) -> list[AttemptRecord]:
    """Return every attempt of the run's node runs, in the order they finished (see
    :mod:`flowplane.store.attempt_reads`); ``nodes``: every node run of the run, when
    already read."""
    return attempt_reads.attempts_of(tx, run_id, nodes)
