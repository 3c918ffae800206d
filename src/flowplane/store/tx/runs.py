"""Operations on the ``runs`` table."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from flowplane.status import TERMINAL_RUN
from flowplane.store import schema as t
from flowplane.store import statements as q
from flowplane.store.records import RunRecord
from flowplane.store.tx.base import TxBase


class RunsTx(TxBase):
    """Runs: read, insert, update and lock run rows."""

    def lock_run(self, run_id: str) -> RunRecord | None:
        """Return the run (without its document), locked against concurrent transitions
        of the same run: the engine's working copy of it (see :class:`RunRecord`)."""
        return self._locked(self.get_run(run_id, with_document=False))

    def _locked(self, run: RunRecord | None) -> RunRecord | None:
        if run is not None:
            self._frames[run.id] = (run.frame_no, run.namespace)
        return run

    def get_run(self, run_id: str, *, with_document: bool = True) -> RunRecord | None:
        """Return one run (``None`` when absent)."""
        self.write_coalesced()
        query = q.GET_RUN if with_document else q.GET_RUN_NO_DOC
        rows, _count = query.execute(self.conn, {"_run": run_id})
        return rows[0] if rows else None

    def insert_run(self, values: dict[str, Any]) -> None:
        """Insert a run row (held back when :meth:`coalesce_inserts` is on)."""
        row = dict(values)  # held back: flush may set its frame number
        if self.queue_insert(q.INSERT_RUN, row):
            self._queued_runs[row["id"]] = row
        else:
            q.INSERT_RUN.defer(self.conn, values)
        self._frames[values["id"]] = (values.get("frame_no") or 0, values["namespace"])

    def update_run(self, run_id: str, **values: Any) -> None:
        """Update a run row."""
        values.setdefault("updated_at_ms", self.now_ms)
        self.write_coalesced()
        q.UPDATE_RUN.defer(self.conn, {**values, "_run": run_id})

    def find_run_by_idempotency(self, namespace: str, key: str) -> RunRecord | None:
        """Return the run dispatched with ``key`` in ``namespace``."""
        self.write_coalesced()
        row = self.conn.execute(
            sa.select(t.runs).where(
                t.runs.c.namespace == namespace, t.runs.c.idempotency_key == key
            )
        ).first()
        return RunRecord.from_row(row._mapping) if row is not None else None

    def child_runs(self, run_id: str, *, active_only: bool = True) -> list[RunRecord]:
        """Return the sub-workflow runs started by ``run_id`` (without their documents)."""
        self.write_coalesced()
        query = sa.select(*q.RUN_COLUMNS).where(t.runs.c.parent_run_id == run_id)
        if active_only:
            query = query.where(t.runs.c.status.not_in(TERMINAL_RUN))
        return [RunRecord.from_row(r._mapping) for r in self.conn.execute(query)]

    def runs_past_deadline(self, limit: int = 100) -> list[str]:
        """Return ids of active runs whose whole-run timeout has passed."""
        self.write_coalesced()
        query = (
            sa.select(t.runs.c.id)
            # The deadline index's own predicate (active runs with a deadline), then the due.
            .where(q.DEADLINED_ROWS, t.runs.c.deadline_ms <= self.now_ms)
            .limit(limit)
        )
        return [r[0] for r in self.conn.execute(query)]
