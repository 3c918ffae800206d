"""Claiming node runs: leasing due work to a worker, and recording that it started.

Each function runs inside one transaction.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import sqlalchemy as sa

from flowplane.engine.faults import maybe_crash
from flowplane.engine.plan import plan_of
from flowplane.store import schema as t
from flowplane.store.records import NodeRunRecord, RunRecord
from flowplane.store.tx import Tx


def claim(tx: Tx, owner: str, limit: int, lease_ms: int) -> list[NodeRunRecord]:
    """Lease due node runs to ``owner`` and record ``NodeStarted`` for each."""
    return claim_work(tx, owner, limit, lease_ms).rows


@dataclass
class Claimed:
    """What :func:`claim_work` leased, with what the worker needs next."""

    rows: list[NodeRunRecord]
    # The runs (without document) of the claimed node runs; their plans are cached.
    runs: dict[str, RunRecord]
    # When the claim left free slots: the earliest ``available_at_ms`` of claimable work
    # left (a timer, a retry), so the worker knows how long it may sleep.
    next_due_ms: int | None


def claim_work(tx: Tx, owner: str, limit: int, lease_ms: int) -> Claimed:
    """:func:`claim`, also returning the claimed rows' runs and, when fewer than ``limit``
    were due, when the next work is due: one transaction for the worker's claim loop."""
    rows = tx.claim(owner, limit, lease_ms)
    runs = record_started(tx, rows)
    for run in runs.values():
        plan_of(tx, run)  # cached for the worker (reads the document if not yet)
    due = tx.next_due_ms() if len(rows) < limit else None
    if rows:
        maybe_crash("claim")
    return Claimed(rows, runs, due)


def record_started(
    tx: Tx, rows: list[NodeRunRecord], namespace: str | None = None
) -> dict[str, RunRecord]:
    """Record a frame change and a ``NodeStarted`` event for each leased row (not for due
    timers); return the rows' runs when they had to be read (``namespace`` given for rows
    of one run spares that read)."""
    if not rows:
        return {}
    run_ids = {r.run_id for r in rows}
    runs: dict[str, RunRecord] = {}
    if namespace is not None and len(run_ids) == 1:
        namespaces = {next(iter(run_ids)): namespace}
    else:
        runs = _runs(tx, run_ids)
        namespaces = {run_id: run.namespace for run_id, run in runs.items()}
    for row in rows:
        if (row.wait or {}).get("kind") == "timer":
            continue
        ns = namespaces.get(row.run_id, "default")
        tx.change(row.run_id, row.node_id, row.iteration, "in-progress", row.attempt)
        tx.event(
            row.run_id,
            ns,
            "NodeStarted",
            row.node_id,
            iteration=row.iteration,
            attempt=row.attempt,
        )
    return runs


_RUNS = sa.select(*(c for c in t.runs.c if c.name != "document")).where(
    t.runs.c.id.in_(sa.bindparam("_runs", expanding=True))
)


def _runs(tx: Tx, run_ids: set[str]) -> dict[str, RunRecord]:
    """The runs (without document) of ``run_ids``."""
    if len(run_ids) == 1:
        run = tx.get_run(next(iter(run_ids)), with_document=False)
        return {run.id: run} if run is not None else {}
    rows = tx.conn.execute(_RUNS, {"_runs": list(run_ids)})
    return {r.id: RunRecord.from_row(r._mapping) for r in rows}


def claim_ids(
    tx: Tx,
    owner: str,
    row_ids: list[int],
    lease_ms: int,
    namespace: str | None = None,
    leased: Sequence[NodeRunRecord] = (),
) -> list[NodeRunRecord]:
    """Lease specific ready node runs (the completing worker's hand-off).

    ``leased``: rows of the same run this transaction already leased; they are returned
    and recorded (``NodeStarted``) together with the others, in id order.
    """
    claimed = tx.claim_ids(owner, row_ids, lease_ms)
    if leased:
        claimed = sorted([*leased, *claimed], key=lambda r: r.id)
    record_started(tx, claimed, namespace)
    return claimed
