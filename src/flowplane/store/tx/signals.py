"""Operations on the ``signals`` table (and the node runs waiting for one)."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from flowplane.store import schema as t
from flowplane.store.records import NodeRunRecord, SignalRecord
from flowplane.store.tx.base import TxBase


class SignalsTx(TxBase):
    """Signals sent to runs, and their consumption by waiting node runs."""

    def insert_signal(self, values: dict[str, Any]) -> int:
        """Store a signal sent to a run; return its id."""
        res = self.conn.execute(t.signals.insert().values(**values))
        pk = res.inserted_primary_key
        return int(pk[0]) if pk is not None else 0

    def take_signal(
        self, run_id: str, name: str, correlation_id: str | None
    ) -> SignalRecord | None:
        """Return the oldest unconsumed signal ``name`` of the run (matching correlation)."""
        c = t.signals.c
        query = sa.select(t.signals).where(
            c.run_id == run_id, c.name == name, c.consumed_at_ms.is_(None)
        )
        if correlation_id is not None:
            query = query.where(c.correlation_id == correlation_id)
        row = self.conn.execute(query.order_by(c.id).limit(1)).first()
        return SignalRecord.from_row(row._mapping) if row is not None else None

    def consume_signal(self, signal_id: int, node_id: str, iteration: int) -> None:
        """Mark a signal consumed by a node run."""
        self.conn.execute(
            t.signals.update()
            .where(t.signals.c.id == signal_id)
            .values(
                consumed_node_id=node_id, consumed_iteration=iteration, consumed_at_ms=self.now_ms
            )
        )

    def waiting_signal_nodes(self, run_id: str) -> list[NodeRunRecord]:
        """Return the run's node runs waiting for a signal."""
        c = t.node_runs.c
        query = sa.select(t.node_runs).where(c.run_id == run_id, c.status == "waiting-event")
        return [NodeRunRecord.from_row(r._mapping) for r in self.conn.execute(query.order_by(c.id))]
