"""Read queries for the node runs of one run a page at a time (big ``foreach`` runs).

A run's detail lists at most ``FLOWPLANE_MAX_RUN_DETAIL_NODES`` node runs; these queries read
a count, the light state columns of every node run (to summarise them), and one page of full
rows with their attempts, so that a run of 100,000 items is never read whole to answer.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa

from flowplane.store import attempt_reads
from flowplane.store import schema as t
from flowplane.store.records import AttemptRecord, NodeRunRecord
from flowplane.store.tx import Tx

__all__ = [
    "attempts_of_nodes",
    "node_rows_after",
    "node_run_count",
    "node_statuses",
    "unfinished_attempts",
]


def node_run_count(tx: Tx, run_id: str) -> int:
    """How many node runs the run has."""
    c = t.node_runs.c
    query = sa.select(sa.func.count()).select_from(t.node_runs).where(c.run_id == run_id)
    return int(tx.conn.execute(query).scalar_one())


def node_rows_after(tx: Tx, run_id: str, after_id: int, limit: int) -> list[NodeRunRecord]:
    """Every column of up to ``limit`` node runs of the run after ``after_id``, by id."""
    c = t.node_runs.c
    query = (
        sa.select(t.node_runs)
        .where(c.run_id == run_id, c.id > after_id)
        .order_by(c.id)
        .limit(limit)
    )
    return [NodeRunRecord.from_row(r._mapping) for r in tx.conn.execute(query)]


def node_statuses(tx: Tx, run_id: str) -> list[tuple[str, int, str]]:
    """``(node_id, iteration, status)`` of every node run of the run (no output)."""
    c = t.node_runs.c
    query = sa.select(c.node_id, c.iteration, c.status).where(c.run_id == run_id).order_by(c.id)
    return [(r[0], r[1], r[2]) for r in tx.conn.execute(query)]


def unfinished_attempts(tx: Tx, run_id: str) -> int:
    """How many attempts of the run have not finished."""
    c = t.attempts.c
    query = (
        sa.select(sa.func.count())
        .select_from(t.attempts)
        .where(c.run_id == run_id, c.finished_at_ms.is_(None))
    )
    return int(tx.conn.execute(query).scalar_one())


def attempts_of_nodes(tx: Tx, run_id: str, nodes: Sequence[NodeRunRecord]) -> list[AttemptRecord]:
    """The attempts of the node runs ``nodes``, in the order they finished."""
    return attempt_reads.attempts_of_nodes(tx, run_id, nodes)
