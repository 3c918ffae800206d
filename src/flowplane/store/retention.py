"""Deleting settled runs: what may go, and the statements that remove a run and its rows.

A run may be deleted only when nothing still needs it: it is terminal (``finished``,
``failed``, ``cancelled``, ``timed-out``), no node run of it is leased to a worker (a
cancelled run's connector may still be finishing), none of its child runs is active, and
its parent run (if any) is terminal too (an active parent may still read its child). A
rewind or resume makes a run active again under the run's row lock, which every deletion
takes (``FOR UPDATE`` on PostgreSQL, the database lock on SQLite), so a run is never deleted
from under a transition.

The rows of a run live in ``runs``, ``node_runs``, ``attempts``, ``event_batches`` (its
events and frames), ``logs``, ``approvals`` and ``signals``; the audit log, schedule fires
and webhook deliveries keep their own history (their ``run_id`` then names a deleted run).
"""

from __future__ import annotations

from collections.abc import Collection, Sequence

import sqlalchemy as sa

from flowplane.status import TERMINAL_RUN
from flowplane.store import schema as t
from flowplane.store.tx import Tx

RUN_TABLES: tuple[sa.Table, ...] = (
    t.node_runs,
    t.attempts,
    t.event_batches,
    t.logs,
    t.approvals,
    t.signals,
)
"""The tables whose rows belong to one run (``run_id``), deleted with it."""


def _settled_conditions(runs: sa.Table) -> list[sa.ColumnElement[bool]]:
    """What makes a terminal run of ``runs`` safe to delete (see the module docstring)."""
    child, parent = t.runs.alias("child"), t.runs.alias("parent")
    return [
        runs.c.status.in_(TERMINAL_RUN),
        ~sa.exists().where(
            t.node_runs.c.run_id == runs.c.id, t.node_runs.c.status == "in-progress"
        ),
        ~sa.exists().where(child.c.parent_run_id == runs.c.id, child.c.status.not_in(TERMINAL_RUN)),
        ~sa.exists().where(
            parent.c.id == runs.c.parent_run_id, parent.c.status.not_in(TERMINAL_RUN)
        ),
    ]


def blocker(tx: Tx, run_id: str) -> str | None:
    """Why the run ``run_id`` cannot be deleted now (``None``: it can), read under its lock.

    Call :meth:`Tx.lock_run` first so the answer holds until the transaction ends.
    """
    run = tx.lock_run(run_id)
    if run is None:
        return None
    if run.status not in TERMINAL_RUN:
        return f"run {run_id!r} is {run.status}; cancel it first"
    query = sa.select(t.runs.c.id).where(t.runs.c.id == run_id, *_settled_conditions(t.runs))
    if tx.conn.execute(query).first() is None:
        return (
            f"run {run_id!r} is still in use (a node is finishing, a child run or its "
            "parent run is active); try again later"
        )
    return None


def _expired(
    *,
    statuses: Collection[str],
    settled_before_ms: int,
    namespaces: Collection[str] | None,
    exclude_namespaces: Collection[str],
) -> list[sa.ColumnElement[bool]]:
    r = t.runs.c
    settled_at = sa.func.coalesce(r.finished_at_ms, r.updated_at_ms)
    conditions = [
        r.status.in_(list(statuses)),
        settled_at < settled_before_ms,
        *_settled_conditions(t.runs),
    ]
    if namespaces is not None:
        conditions.append(r.namespace.in_(list(namespaces)))
    if exclude_namespaces:
        conditions.append(r.namespace.not_in(list(exclude_namespaces)))
    return conditions


def expired_runs(
    tx: Tx,
    *,
    statuses: Collection[str],
    settled_before_ms: int,
    namespaces: Collection[str] | None = None,
    exclude_namespaces: Collection[str] = (),
    limit: int = 100,
) -> list[tuple[str, str]]:
    """Up to ``limit`` deletable runs, as ``(id, namespace)``, with one of ``statuses`` that
    settled before ``settled_before_ms``, oldest first; in ``namespaces`` (all when
    ``None``) but not in ``exclude_namespaces``.

    On PostgreSQL the rows are locked (``SKIP LOCKED``: runs another process is deleting,
    or a transition holds, are left for the next batch).
    """
    r = t.runs.c
    conditions = _expired(
        statuses=statuses,
        settled_before_ms=settled_before_ms,
        namespaces=namespaces,
        exclude_namespaces=exclude_namespaces,
    )
    query = (
        sa.select(r.id, r.namespace)
        .where(*conditions)
        .order_by(sa.func.coalesce(r.finished_at_ms, r.updated_at_ms), r.id)
        .limit(limit)
    )
    if tx.dialect == "postgresql":
        query = query.with_for_update(of=t.runs, skip_locked=True)
    return [(str(run_id), str(namespace)) for run_id, namespace in tx.conn.execute(query)]


def count_expired(
    tx: Tx,
    *,
    statuses: Collection[str],
    settled_before_ms: int,
    namespaces: Collection[str] | None = None,
    exclude_namespaces: Collection[str] = (),
) -> dict[str, int]:
    """How many runs :func:`expired_runs` would hand out, by namespace (a dry run)."""
    r = t.runs.c
    conditions = _expired(
        statuses=statuses,
        settled_before_ms=settled_before_ms,
        namespaces=namespaces,
        exclude_namespaces=exclude_namespaces,
    )
    query = sa.select(r.namespace, sa.func.count()).where(*conditions).group_by(r.namespace)
    return {str(namespace): int(count) for namespace, count in tx.conn.execute(query)}


def delete_runs(tx: Tx, run_ids: Sequence[str]) -> int:
    """Delete the runs ``run_ids`` and every row that belongs to them; return how many runs
    were deleted. The caller has checked (under lock) that each may go."""
    if not run_ids:
        return 0
    ids = list(run_ids)
    for table in RUN_TABLES:
        tx.conn.execute(table.delete().where(table.c.run_id.in_(ids)))
    result = tx.conn.execute(t.runs.delete().where(t.runs.c.id.in_(ids)))
    return int(result.rowcount or 0)
