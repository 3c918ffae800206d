"""Operational reads: readiness (database and migrations) and run statistics for metrics.

The statistics are read from the database at scrape time, so every API process of an
installation reports the same cluster-wide numbers, whichever worker did the work.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import sqlalchemy as sa

from flowplane.errors import Forbidden
from flowplane.services.caller import Caller
from flowplane.store import schema as t
from flowplane.store.base import Store
from flowplane.store.migrate import LATEST_REVISION, version_of
from flowplane.store.tx import Tx

NODE_DURATION_BUCKETS_SECONDS = (0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 10.0, 30.0, 60.0, 300.0, 3600.0)


@dataclass(frozen=True)
class Readiness:
    """Whether the process can serve: the database answers and is at the newest migration."""

    ready: bool
    database: bool
    migration: str | None
    expected_migration: str | None


@dataclass(frozen=True)
class DurationHistogram:
    """Cumulative bucket counts (one per bound in ``NODE_DURATION_BUCKETS_SECONDS``, then
    +Inf), and the sum of durations in seconds."""

    buckets: list[int]
    count: int
    sum_seconds: float


@dataclass
class RunStats:
    """Counts read from the database for ``/metrics``."""

    runs_by_status: dict[tuple[str, str], int] = field(default_factory=dict)
    runs_started: dict[str, int] = field(default_factory=dict)
    node_durations: dict[str, DurationHistogram] = field(default_factory=dict)
    queue_ready: int = 0
    queue_delayed: int = 0
    approvals_by_status: dict[str, int] = field(default_factory=dict)
    events_total: int = 0


async def readiness(store: Store) -> Readiness:
    """Check the database and the migration level."""
    expected = LATEST_REVISION

    def current(tx: Tx) -> str | None:
        return version_of(tx.conn)

    try:
        revision = await store.read(current)
    except Exception:
        return Readiness(False, False, None, expected)
    return Readiness(revision == expected, True, revision, expected)


def _read_stats(tx: Tx) -> RunStats:
    stats = RunStats()
    r = t.runs.c
    for workflow, status, count in tx.conn.execute(
        sa.select(r.workflow_name, r.status, sa.func.count()).group_by(r.workflow_name, r.status)
    ):
        stats.runs_by_status[(str(workflow), str(status))] = int(count)
    for workflow, count in tx.conn.execute(
        sa.select(r.workflow_name, sa.func.count())
        .where(r.started_at_ms.is_not(None))
        .group_by(r.workflow_name)
    ):
        stats.runs_started[str(workflow)] = int(count)

    # Every recorded attempt: the attempts rows and the successes kept on node runs.
    a, n = t.attempts.c, t.node_runs.c
    durations = sa.union_all(
        sa.select(a.run_id, (a.finished_at_ms - a.started_at_ms).label("ms")).where(
            a.started_at_ms.is_not(None)
        ),
        sa.select(n.run_id, (n.finished_at_ms - n.attempt_started_ms).label("ms")).where(
            n.worker.is_not(None), n.attempt_started_ms.is_not(None)
        ),
    ).subquery()
    duration_ms = durations.c.ms
    columns = [
        sa.func.sum(sa.case((duration_ms <= int(bound * 1000), 1), else_=0))
        for bound in NODE_DURATION_BUCKETS_SECONDS
    ]
    query = (
        sa.select(r.workflow_name, sa.func.count(), sa.func.sum(duration_ms), *columns)
        .select_from(durations.join(t.runs, t.runs.c.id == durations.c.run_id))
        .group_by(r.workflow_name)
    )
    for workflow, count, total_ms, *bucket_counts in tx.conn.execute(query):
        stats.node_durations[str(workflow)] = DurationHistogram(
            buckets=[int(b or 0) for b in bucket_counts] + [int(count)],
            count=int(count),
            sum_seconds=float(total_ms or 0) / 1000.0,
        )

    n = t.node_runs.c
    ready = sa.select(sa.func.count()).select_from(t.node_runs).where(n.status == "ready")
    stats.queue_ready = int(
        tx.conn.execute(ready.where(n.available_at_ms <= tx.now_ms)).scalar() or 0
    )
    stats.queue_delayed = int(
        tx.conn.execute(ready.where(n.available_at_ms > tx.now_ms)).scalar() or 0
    )

    p = t.approvals.c
    for status, count in tx.conn.execute(sa.select(p.status, sa.func.count()).group_by(p.status)):
        stats.approvals_by_status[str(status)] = int(count)
    # Sequence numbers are gap-free and their counter survives deleted runs: its value is
    # the number of events ever written.
    stats.events_total = int(
        tx.conn.execute(sa.select(sa.func.max(t.event_counter.c.seq))).scalar() or 0
    )
    return stats


async def run_stats(store: Store) -> RunStats:
    """Read the run, node-duration and queue statistics."""
    return await store.read(_read_stats, scan=True)


class OpsService:
    """What the operations routes ask: readiness, and statistics across every namespace."""

    def __init__(self, store: Store) -> None:
        self.store = store

    async def readiness(self) -> Readiness:
        """Check the database and the migration level (open: no caller)."""
        return await readiness(self.store)

    async def run_stats(self, caller: Caller) -> RunStats:
        """The statistics behind ``/metrics`` (viewer, not limited to namespaces).

        Raises:
            Forbidden: the caller is limited to some namespaces (the numbers span all).
        """
        caller.require("viewer")
        if caller.namespaces is not None:
            raise Forbidden("metrics span every namespace; use a key without namespace limits")
        return await run_stats(self.store)

    def run_stats_blocking(self) -> RunStats:
        """The same statistics read on the calling thread, for the open metrics port
        (``FLOWPLANE_METRICS_PORT``: the operator chose to serve them without a caller)."""
        return self.store.run_sync(_read_stats, True)
