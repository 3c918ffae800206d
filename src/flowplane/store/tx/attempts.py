"""Operations on the ``attempts`` and ``logs`` tables: what each attempt left on record."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa

from flowplane.store import schema as t
from flowplane.store import statements as q
from flowplane.store.tx.base import TxBase


class AttemptsTx(TxBase):
    """Attempts of node runs and their log lines."""

    def insert_attempt(self, values: dict[str, Any]) -> None:
        """Record one attempt of a node run."""
        q.INSERT_ATTEMPT.defer(self.conn, values)

    def max_attempts(self, run_id: str, node_id: str) -> dict[int, int]:
        """Return ``{iteration: highest recorded attempt}`` of a node's attempts (the
        ``attempts`` rows and the successful attempts kept on node runs)."""
        c, n = t.attempts.c, t.node_runs.c
        rows = sa.union_all(
            sa.select(c.iteration, c.attempt).where(c.run_id == run_id, c.node_id == node_id),
            sa.select(n.iteration, n.attempt).where(
                n.run_id == run_id, n.node_id == node_id, n.worker.is_not(None)
            ),
        ).subquery()
        query = sa.select(rows.c.iteration, sa.func.max(rows.c.attempt)).group_by(rows.c.iteration)
        return {int(r[0]): max(1, int(r[1])) for r in self.conn.execute(query)}

    def supersede_attempts(self, run_id: str, node_id: str, iteration: int) -> None:
        """Record a node run's successful attempt as ``superseded`` (a rewind re-runs it):
        the attempt kept on the node run becomes an ``attempts`` row (the caller resets the
        node run, clearing it there)."""
        n = t.node_runs.c
        success = sa.select(
            n.run_id,
            n.node_id,
            n.iteration,
            sa.case((n.attempt > 1, n.attempt), else_=1),
            sa.literal("superseded"),
            sa.func.nullif(n.worker, ""),
            n.attempt_started_ms,
            n.finished_at_ms,
        ).where(
            n.run_id == run_id,
            n.node_id == node_id,
            n.iteration == iteration,
            n.worker.is_not(None),
        )
        c = t.attempts.c
        columns = ["run_id", "node_id", "iteration", "attempt", "status", "worker"]
        columns += ["started_at_ms", "finished_at_ms"]
        self.conn.execute(t.attempts.insert().from_select(columns, success))
        # A successful attempt recorded before migration 0008 that could not be folded.
        self.conn.execute(
            t.attempts.update()
            .where(
                c.run_id == run_id,
                c.node_id == node_id,
                c.iteration == iteration,
                c.status == "finished",
            )
            .values(status="superseded")
        )

    def insert_logs(self, rows: Sequence[dict[str, Any]]) -> None:
        """Persist node log lines."""
        if rows:
            self.conn.execute(t.logs.insert(), list(rows))
