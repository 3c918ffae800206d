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
        """Return ``{iteration: highest recorded attempt}`` of a node's attempts."""
        c = t.attempts.c
        query = (
            sa.select(c.iteration, sa.func.max(c.attempt))
            .where(c.run_id == run_id, c.node_id == node_id)
            .group_by(c.iteration)
        )
        return {int(r[0]): int(r[1]) for r in self.conn.execute(query)}

    def supersede_attempts(self, run_id: str, node_id: str, iteration: int) -> None:
        """Mark a node run's successful attempt ``superseded`` (a rewind re-runs it)."""
        c = t.attempts.c
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
