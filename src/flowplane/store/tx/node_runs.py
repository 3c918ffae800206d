"""Operations on the ``node_runs`` table: their states, outputs, claims and leases."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import sqlalchemy as sa

from flowplane.store import schema as t
from flowplane.store import statements as q
from flowplane.store.records import NodeRunRecord, NodeState
from flowplane.store.tx.base import TxBase


class NodeRunsTx(TxBase):
    """Node runs: insert, read and fence-update them; claim, lease and count them."""

    def leftover_claims(self) -> list[tuple[Any, ...]]:
        """Node runs leased ahead that no :meth:`claim_pending` call took (a bug)."""
        return [k for k, v in self.ahead.items() if k[0] == "claim" and v is not None]

    def _nodes_written(self) -> None:
        """Counts read ahead are stale once node runs change."""
        if self.ahead:
            self.ahead = {k: v for k, v in self.ahead.items() if k[0] == "claim"}

    def insert_node_runs(self, rows: Sequence[dict[str, Any]]) -> None:
        """Insert node run rows."""
        self._nodes_written()
        if not rows:
            return
        keys = rows[0].keys()
        if all(row.keys() == keys for row in rows):
            if self._coalesced is not None:  # held back (see coalesce_inserts)
                for row in rows:
                    self.queue_insert(q.INSERT_NODE_RUNS, row)
                return
            q.INSERT_NODE_RUNS.defer_many(self.conn, rows)
        else:
            self.conn.execute(t.node_runs.insert(), list(rows))

    def insert_node_run_returning(self, values: dict[str, Any]) -> NodeRunRecord:
        """Insert one node run row; return it as stored (with its id)."""
        self._nodes_written()
        # The rows inserted before it get the lower ids, as before.
        self.write_coalesced(only=q.INSERT_NODE_RUNS)
        rows, _count = q.INSERT_NODE_RUN_RETURNING.execute(self.conn, values)
        return rows[0]

    def node_states(self, run_id: str, node_ids: Iterable[str] | None = None) -> list[NodeState]:
        """Return the state columns (no output) of a run's node runs."""
        if node_ids is None:
            return q.NODE_STATES.execute(self.conn, {"_run": run_id})[0]
        else:
            ids = list(node_ids)
            if not ids:
                return []
            rows = self.conn.execute(q.NODE_STATES_OF, {"_run": run_id, "_nodes": ids})
        return [NodeState.from_row(r._mapping) for r in rows]

    def node_rows(self, run_id: str) -> list[NodeRunRecord]:
        """Return every column of a run's node runs, in insertion order."""
        query = (
            sa.select(t.node_runs).where(t.node_runs.c.run_id == run_id).order_by(t.node_runs.c.id)
        )
        return [NodeRunRecord.from_row(r._mapping) for r in self.conn.execute(query)]

    def node_row(self, run_id: str, node_id: str, iteration: int) -> NodeRunRecord | None:
        """Return one node run."""
        c = t.node_runs.c
        row = self.conn.execute(
            sa.select(t.node_runs).where(
                c.run_id == run_id, c.node_id == node_id, c.iteration == iteration
            )
        ).first()
        return NodeRunRecord.from_row(row._mapping) if row is not None else None

    def node_outputs(
        self, run_id: str, node_ids: Iterable[str]
    ) -> dict[tuple[str, int], tuple[str, Any, Any]]:
        """Return ``{(node_id, iteration): (status, output, error)}`` for the given nodes."""
        ids = list(dict.fromkeys(node_ids))
        if not ids:
            return {}
        if len(ids) > q.NODE_OUTPUTS_PREPARED_MAX:
            rows = self.conn.execute(q.NODE_OUTPUTS, {"_run": run_id, "_nodes": ids})
            return {(r.node_id, r.iteration): (r.status, r.output, r.error) for r in rows}
        params = {"_run": run_id, **{f"_n{i}": node_id for i, node_id in enumerate(ids)}}
        found, _count = q.node_outputs_of(len(ids)).execute(self.conn, params)
        return {
            (r["node_id"], r["iteration"]): (r["status"], r["output"], r["error"]) for r in found
        }

    def update_node_run(
        self,
        row_id: int,
        *,
        expect_status: str | Sequence[str] | None = None,
        expect_epoch: int | None = None,
        **values: Any,
    ) -> bool:
        """Update one node run; with expectations, only if they hold. Returns whether it did."""
        self._nodes_written()
        if not values:
            return False
        params: dict[str, Any] = {**values, "_id": row_id}
        if expect_status is None or isinstance(expect_status, str):
            if expect_status is not None:
                params["_status"] = expect_status
            if expect_epoch is not None:
                params["_epoch"] = expect_epoch
            prepared = q.UPDATE_NODE_PREPARED[(expect_status is not None, expect_epoch is not None)]
            return bool(prepared.execute(self.conn, params)[1])
        if expect_status is not None:
            statuses = [expect_status] if isinstance(expect_status, str) else list(expect_status)
            params["_statuses"] = statuses
        if expect_epoch is not None:
            params["_epoch"] = expect_epoch
        query = q.UPDATE_NODE[(expect_status is not None, expect_epoch is not None)]
        return bool(self.conn.execute(query, params).rowcount)

    def settle_pending(
        self, run_id: str, node_id: str, iteration: int, **values: Any
    ) -> int | None:
        """Update one node run by key if it is still ``pending``; return its id if it was.

        One statement instead of reading the row's state and updating it by id.
        """
        self._nodes_written()
        params = {**values, "_run": run_id, "_node": node_id, "_iteration": iteration}
        rows, _count = q.SETTLE_PENDING.execute(self.conn, params)
        return int(rows[0]["id"]) if rows else None

    def claim_pending(
        self, run_id: str, node_id: str, iteration: int, owner: str, lease_ms: int
    ) -> NodeRunRecord | None:
        """Make a pending node run ready and lease it, in one statement: the same row as
        :meth:`settle_pending` to ``ready`` followed by :meth:`claim_ids`. Returns the
        leased node run, or ``None`` if it was not pending."""
        key = ("claim", run_id, node_id, iteration)
        if key in self.ahead:
            leased: NodeRunRecord | None = self.ahead.pop(key)
            return leased
        self._nodes_written()
        rows, _count = q.CLAIM_PENDING.execute(
            self.conn, self._claim_params(run_id, node_id, iteration, owner, lease_ms)
        )
        return rows[0] if rows else None

    def _claim_params(
        self, run_id: str, node_id: str, iteration: int, owner: str, lease_ms: int
    ) -> dict[str, Any]:
        return {
            "_run": run_id,
            "_node": node_id,
            "_iteration": iteration,
            "_now": self.now_ms,
            "_owner": owner,
            "_expires": self.now_ms + lease_ms,
        }

    def item_counts(self, run_id: str, node_id: str) -> dict[str, int]:
        """Return ``{status: count}`` over the items (iterations >= 0) of a foreach node."""
        rows = self.ahead.pop(("items", run_id, node_id), None)
        if rows is None:
            rows, _count = q.ITEM_COUNTS.execute(self.conn, {"_run": run_id, "_node": node_id})
        return {row["status"]: int(row["n"]) for row in rows}

    def has_ready_item(self, run_id: str, node_id: str) -> bool:
        """Whether an item (iteration >= 0) of the foreach node is ``ready``.

        Found through the (run, status) index and stopped at the first: one row, where
        counting the items reads them all.
        """
        rows, _count = q.READY_ITEM.execute(self.conn, {"_run": run_id, "_node": node_id})
        return bool(rows)

    def claim_ready_items(
        self, run_id: str, node_id: str, owner: str, limit: int, lease_ms: int
    ) -> list[NodeRunRecord]:
        """Lease up to ``limit`` ready items (iterations >= 0) of a foreach node to
        ``owner`` (skipping rows another transaction is claiming); in id order."""
        self._nodes_written()
        params = {
            "_run": run_id,
            "_node": node_id,
            "_limit": limit,
            "_now": self.now_ms,
            "_owner": owner,
            "_expires": self.now_ms + lease_ms,
        }
        rows, _count = q.CLAIM_READY_ITEMS.execute(self.conn, params)
        return sorted(rows, key=_by_id)

    def pending_items(self, run_id: str, node_id: str, limit: int) -> list[NodeState]:
        """Return the first ``limit`` pending items of a node, by iteration."""
        params = {"_run": run_id, "_node": node_id, "_limit": limit}
        return q.PENDING_ITEMS.execute(self.conn, params)[0]

    def status_counts(self, run_id: str) -> dict[str, int]:
        """Return ``{status: count}`` over the run's node runs.

        In-progress rows without a lease (a ``foreach`` node whose items are running) are
        counted as ``aggregate``.
        """
        rows = self.ahead.pop(("status", run_id), None)
        if rows is None:
            rows = q.STATUS_COUNTS.execute(self.conn, {"_run": run_id})[0]
        counts: dict[str, int] = {}
        for row in rows:
            status = row["status"]
            key = "aggregate" if status == "in-progress" and row["unleased"] else status
            counts[key] = counts.get(key, 0) + int(row["n"])
        return counts

    def claim(self, owner: str, limit: int, lease_ms: int) -> list[NodeRunRecord]:
        """Lease up to ``limit`` due node runs (``ready`` or due ``waiting-timer``), in id
        order: one statement on both backends (:data:`statements.CLAIM`: SQLite's write
        lock makes it safe there, PostgreSQL skips the rows other workers hold)."""
        return q.claim(self.conn, self.now_ms, owner, limit, lease_ms)

    def claim_ids(self, owner: str, row_ids: Sequence[int], lease_ms: int) -> list[NodeRunRecord]:
        """Lease the given node runs if they are (still) ready and due; in id order."""
        self._nodes_written()
        if not row_ids:
            return []
        params: dict[str, Any] = {
            "_now": self.now_ms,
            "_owner": owner,
            "_expires": self.now_ms + lease_ms,
        }
        if len(row_ids) == 1:
            rows, _count = q.CLAIM_ID.execute(self.conn, {**params, "_id": row_ids[0]})
            return rows
        result = self.conn.execute(q.CLAIM_IDS, {**params, "_ids": list(row_ids)})
        return sorted((NodeRunRecord.from_row(r._mapping) for r in result), key=_by_id)

    def extend_leases(
        self, owner: str, leases: Sequence[tuple[int, int]], lease_ms: int
    ) -> set[int]:
        """Extend the leases ``(row id, epoch)``; return the ids still held."""
        c = t.node_runs.c
        held: set[int] = set()
        for row_id, epoch in leases:
            res = self.conn.execute(
                t.node_runs.update()
                .where(
                    c.id == row_id,
                    c.lease_epoch == epoch,
                    c.status == "in-progress",
                    c.lease_owner == owner,
                )
                .values(lease_expires_ms=self.now_ms + lease_ms)
            )
            if res.rowcount:
                held.add(row_id)
        return held

    def expired_leases(self, limit: int = 100) -> list[NodeRunRecord]:
        """Return in-progress node runs whose lease has expired (locked where supported)."""
        c = t.node_runs.c
        query = (
            sa.select(t.node_runs)
            .where(
                q.CLAIMABLE_ROWS,  # the claim index's own predicate (SQLite uses it then)
                c.status == "in-progress",
                c.lease_expires_ms.is_not(None),
                c.lease_expires_ms < self.now_ms,
            )
            .limit(limit)
        )
        rows = self.conn.execute(self._skip_locked(query))
        return [NodeRunRecord.from_row(r._mapping) for r in rows]

    def _skip_locked(self, query: sa.Select[Any]) -> sa.Select[Any]:
        return query

    def next_due_ms(self) -> int | None:
        """Return the earliest ``available_at_ms`` of claimable work, if any."""
        rows, _count = q.NEXT_DUE.execute(self.conn, {})
        value = rows[0]["next_due"] if rows else None
        return int(value) if value is not None else None


def _by_id(node: NodeRunRecord) -> int:
    return node.id
