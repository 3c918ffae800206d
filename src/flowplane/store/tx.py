"""One transaction: the small named operations the engine and services are built from.

Events and frames are buffered and written by :meth:`Tx.flush` just before commit: the
event sequence counter row is bumped once per transaction, so its row lock is held for the
shortest time and ``seq`` is gap-free and in commit order (a transactional outbox).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from flowplane.ids import now_ms as now_ms
from flowplane.status import TERMINAL_NODE as TERMINAL_NODE
from flowplane.status import TERMINAL_RUN as TERMINAL_RUN
from flowplane.status import WAITING_NODE as WAITING_NODE
from flowplane.store import schema as t
from flowplane.store import statements as q

Row = dict[str, Any]


@dataclass(frozen=True)
class Ahead:
    """What a completion will do right after its fenced update, if that applies (see
    :meth:`Tx.lock_run_and_update_node`): lease ``claims`` (``(node id, iteration)`` of
    pending node runs of the run) to ``owner``, count the items of ``item_counts_of``, count
    the run's node runs by status."""

    claims: Sequence[tuple[str, int]] = ()
    owner: str = ""
    lease_ms: int = 0
    item_counts_of: str | None = None
    status_counts: bool = False


class Tx:
    """A transaction on one connection. Not thread-safe; lives for one ``fn(tx)`` call."""

    def __init__(self, conn: sa.Connection, dialect: str) -> None:
        self.conn = conn
        self.dialect = dialect
        self.now_ms = now_ms()
        self.notifications: list[tuple[str, str]] = []
        self._events: list[tuple[str, str, str, str | None, dict[str, Any]]] = []
        self._changes: dict[str, list[dict[str, Any]]] = {}
        self.committed_events: list[dict[str, Any]] = []
        # (frame_no, namespace) of runs this transaction locked or inserted: nobody else
        # can bump their frame before it commits, so flush need not read it back.
        self._frames: dict[str, tuple[int, str]] = {}
        # Called (on the transaction's thread) once it committed, or once it did not.
        self.after_commit: list[Callable[[], None]] = []
        self.after_rollback: list[Callable[[], None]] = []
        # What lock_run_and_update_node did ahead (see Ahead): ("claim", run id, node id,
        # iteration) -> the leased row or None; ("items", run id, node id) and ("status",
        # run id) -> count rows, valid until the transaction writes node runs.
        self.ahead: dict[tuple[Any, ...], Any] = {}

    def run_hooks(self, *, committed: bool) -> None:
        """Run the :attr:`after_commit` or :attr:`after_rollback` callbacks (once)."""
        hooks = self.after_commit if committed else self.after_rollback
        self.after_commit, self.after_rollback = [], []
        for hook in hooks:
            hook()

    # --- runs ---------------------------------------------------------------------------

    def lock_run(self, run_id: str) -> Row | None:
        """Return the run row (without its document), locked against concurrent transitions
        of the same run."""
        return self._locked(self.get_run(run_id, with_document=False))

    def _locked(self, run: Row | None) -> Row | None:
        if run is not None:
            self._frames[run["id"]] = (run["frame_no"], run["namespace"])
        return run

    def lock_run_and_update_node(
        self, run_id: str, row_id: int, epoch: int, ahead: Ahead | None = None, **values: Any
    ) -> tuple[Row | None, bool]:
        """:meth:`lock_run`, then, if the run is not terminal, update the node run
        ``row_id`` if it is still ``in-progress`` under lease ``epoch`` (a fenced
        completion). Returns the locked run row and whether the node run was updated.
        (One statement on PostgreSQL.)

        ``ahead``: what the caller will do next if the update applies. A store where each
        statement costs a round trip sends those statements with this one (the claims
        applying only if the update did) and answers the later :meth:`claim_pending`,
        :meth:`item_counts` and :meth:`status_counts` calls from :attr:`ahead`; here
        nothing is done ahead."""
        run = self.lock_run(run_id)
        if run is None or run["status"] in TERMINAL_RUN:
            return run, False
        updated = self.update_node_run(
            row_id, expect_status="in-progress", expect_epoch=epoch, **values
        )
        return run, updated

    def leftover_claims(self) -> list[tuple[Any, ...]]:
        """Node runs leased ahead that no :meth:`claim_pending` call took (a bug)."""
        return [k for k, v in self.ahead.items() if k[0] == "claim" and v is not None]

    def _nodes_written(self) -> None:
        """Counts read ahead are stale once node runs change."""
        if self.ahead:
            self.ahead = {k: v for k, v in self.ahead.items() if k[0] == "claim"}

    def get_run(self, run_id: str, *, with_document: bool = True) -> Row | None:
        """Return one run row (``None`` when absent)."""
        query = q.GET_RUN if with_document else q.GET_RUN_NO_DOC
        rows, _count = query.execute(self.conn, {"_run": run_id})
        return rows[0] if rows else None

    def insert_run(self, values: dict[str, Any]) -> None:
        """Insert a run row."""
        q.INSERT_RUN.defer(self.conn, values)
        self._frames[values["id"]] = (values.get("frame_no") or 0, values["namespace"])

    def update_run(self, run_id: str, **values: Any) -> None:
        """Update a run row."""
        values.setdefault("updated_at_ms", self.now_ms)
        q.UPDATE_RUN.defer(self.conn, {**values, "_run": run_id})

    def find_run_by_idempotency(self, namespace: str, key: str) -> Row | None:
        """Return the run dispatched with ``key`` in ``namespace``."""
        row = self.conn.execute(
            sa.select(t.runs).where(
                t.runs.c.namespace == namespace, t.runs.c.idempotency_key == key
            )
        ).first()
        return dict(row._mapping) if row is not None else None

    def child_runs(self, run_id: str, *, active_only: bool = True) -> list[Row]:
        """Return the sub-workflow runs started by ``run_id``."""
        query = sa.select(t.runs.c.id, t.runs.c.status).where(t.runs.c.parent_run_id == run_id)
        if active_only:
            query = query.where(t.runs.c.status.not_in(TERMINAL_RUN))
        return [dict(r._mapping) for r in self.conn.execute(query)]

    def runs_past_deadline(self, limit: int = 100) -> list[str]:
        """Return ids of active runs whose whole-run timeout has passed."""
        query = (
            sa.select(t.runs.c.id)
            .where(
                t.runs.c.deadline_ms.is_not(None),
                t.runs.c.deadline_ms <= self.now_ms,
                t.runs.c.status.not_in(TERMINAL_RUN),
            )
            .limit(limit)
        )
        return [r[0] for r in self.conn.execute(query)]

    # --- node runs ----------------------------------------------------------------------

    def insert_node_runs(self, rows: Sequence[dict[str, Any]]) -> None:
        """Insert node run rows."""
        self._nodes_written()
        if not rows:
            return
        keys = rows[0].keys()
        if all(row.keys() == keys for row in rows):
            q.INSERT_NODE_RUNS.defer_many(self.conn, rows)
        else:
            self.conn.execute(t.node_runs.insert(), list(rows))

    def insert_node_run_returning(self, values: dict[str, Any]) -> Row:
        """Insert one node run row; return it as stored (with its id)."""
        self._nodes_written()
        rows, _count = q.INSERT_NODE_RUN_RETURNING.execute(self.conn, values)
        return rows[0]

    def node_states(self, run_id: str, node_ids: Iterable[str] | None = None) -> list[Row]:
        """Return the state columns (no output) of a run's node runs."""
        if node_ids is None:
            return q.NODE_STATES.execute(self.conn, {"_run": run_id})[0]
        else:
            ids = list(node_ids)
            if not ids:
                return []
            rows = self.conn.execute(q.NODE_STATES_OF, {"_run": run_id, "_nodes": ids})
        return [dict(r._mapping) for r in rows]

    def node_rows(self, run_id: str) -> list[Row]:
        """Return every column of a run's node runs, in insertion order."""
        query = (
            sa.select(t.node_runs).where(t.node_runs.c.run_id == run_id).order_by(t.node_runs.c.id)
        )
        return [dict(r._mapping) for r in self.conn.execute(query)]

    def node_row(self, run_id: str, node_id: str, iteration: int) -> Row | None:
        """Return one node run row."""
        c = t.node_runs.c
        row = self.conn.execute(
            sa.select(t.node_runs).where(
                c.run_id == run_id, c.node_id == node_id, c.iteration == iteration
            )
        ).first()
        return dict(row._mapping) if row is not None else None

    def node_outputs(
        self, run_id: str, node_ids: Iterable[str]
    ) -> dict[tuple[str, int], tuple[str, Any, Any]]:
        """Return ``{(node_id, iteration): (status, output, error)}`` for the given nodes."""
        ids = list(node_ids)
        if not ids:
            return {}
        rows = self.conn.execute(q.NODE_OUTPUTS, {"_run": run_id, "_nodes": ids})
        return {(r.node_id, r.iteration): (r.status, r.output, r.error) for r in rows}

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
    ) -> Row | None:
        """Make a pending node run ready and lease it, in one statement: the same row as
        :meth:`settle_pending` to ``ready`` followed by :meth:`claim_ids`. Returns the
        leased row, or ``None`` if it was not pending."""
        key = ("claim", run_id, node_id, iteration)
        if key in self.ahead:
            leased: Row | None = self.ahead.pop(key)
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

    def pending_items(self, run_id: str, node_id: str, limit: int) -> list[Row]:
        """Return ``id`` and ``iteration`` of the first ``limit`` pending items of a node."""
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

    def claim(self, owner: str, limit: int, lease_ms: int) -> list[Row]:
        """Lease up to ``limit`` due node runs (``ready`` or due ``waiting-timer``)."""
        raise NotImplementedError

    def claim_ids(self, owner: str, row_ids: Sequence[int], lease_ms: int) -> list[Row]:
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
        return sorted((dict(r._mapping) for r in result), key=lambda r: r["id"])

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

    def expired_leases(self, limit: int = 100) -> list[Row]:
        """Return in-progress node runs whose lease has expired (locked where supported)."""
        c = t.node_runs.c
        query = (
            sa.select(t.node_runs)
            .where(
                c.status == "in-progress",
                c.lease_expires_ms.is_not(None),
                c.lease_expires_ms < self.now_ms,
            )
            .limit(limit)
        )
        return [dict(r._mapping) for r in self.conn.execute(self._skip_locked(query))]

    def _skip_locked(self, query: sa.Select[Any]) -> sa.Select[Any]:
        return query

    def next_due_ms(self) -> int | None:
        """Return the earliest ``available_at_ms`` of claimable work, if any."""
        rows, _count = q.NEXT_DUE.execute(self.conn, {})
        value = rows[0]["next_due"] if rows else None
        return int(value) if value is not None else None

    # --- attempts, logs -----------------------------------------------------------------

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

    # --- approvals and signals ----------------------------------------------------------

    def insert_approval(self, values: dict[str, Any]) -> None:
        """Insert an approval request."""
        self.conn.execute(t.approvals.insert().values(**values))

    def get_approval(self, run_id: str, node_id: str, iteration: int) -> Row | None:
        """Return the approval of one node run."""
        c = t.approvals.c
        row = self.conn.execute(
            sa.select(t.approvals).where(
                c.run_id == run_id, c.node_id == node_id, c.iteration == iteration
            )
        ).first()
        return dict(row._mapping) if row is not None else None

    def update_approvals(self, run_id: str, *, status_from: str, **values: Any) -> None:
        """Update every approval of a run currently in ``status_from``."""
        c = t.approvals.c
        self.conn.execute(
            t.approvals.update().where(c.run_id == run_id, c.status == status_from).values(**values)
        )

    def update_approval(self, approval_id: str, **values: Any) -> None:
        """Update one approval."""
        self.conn.execute(
            t.approvals.update().where(t.approvals.c.id == approval_id).values(**values)
        )

    def list_approvals(
        self, *, status: str | None, namespaces: Sequence[str] | None, limit: int
    ) -> list[Row]:
        """Return approvals, pending first, longest wait first."""
        c = t.approvals.c
        query = sa.select(t.approvals)
        if status is not None:
            query = query.where(c.status == status)
        if namespaces is not None:
            query = query.where(c.namespace.in_(list(namespaces)))
        pending_first = sa.case((c.status == "pending", 0), else_=1)
        query = query.order_by(pending_first, c.requested_at_ms, c.id).limit(limit)
        return [dict(r._mapping) for r in self.conn.execute(query)]

    def insert_signal(self, values: dict[str, Any]) -> int:
        """Store a signal sent to a run; return its id."""
        res = self.conn.execute(t.signals.insert().values(**values))
        pk = res.inserted_primary_key
        return int(pk[0]) if pk is not None else 0

    def take_signal(self, run_id: str, name: str, correlation_id: str | None) -> Row | None:
        """Return the oldest unconsumed signal ``name`` of the run (matching correlation)."""
        c = t.signals.c
        query = sa.select(t.signals).where(
            c.run_id == run_id, c.name == name, c.consumed_at_ms.is_(None)
        )
        if correlation_id is not None:
            query = query.where(c.correlation_id == correlation_id)
        row = self.conn.execute(query.order_by(c.id).limit(1)).first()
        return dict(row._mapping) if row is not None else None

    def consume_signal(self, signal_id: int, node_id: str, iteration: int) -> None:
        """Mark a signal consumed by a node run."""
        self.conn.execute(
            t.signals.update()
            .where(t.signals.c.id == signal_id)
            .values(
                consumed_node_id=node_id, consumed_iteration=iteration, consumed_at_ms=self.now_ms
            )
        )

    def waiting_signal_nodes(self, run_id: str) -> list[Row]:
        """Return the run's node runs waiting for a signal."""
        c = t.node_runs.c
        query = sa.select(t.node_runs).where(c.run_id == run_id, c.status == "waiting-event")
        return [dict(r._mapping) for r in self.conn.execute(query.order_by(c.id))]

    # --- workflows (for sub-workflows and services) -------------------------------------

    def get_workflow(self, workflow_id: str) -> Row | None:
        """Return a stored workflow by id (deleted ones included)."""
        row = self.conn.execute(
            sa.select(t.workflows).where(t.workflows.c.id == workflow_id)
        ).first()
        return dict(row._mapping) if row is not None else None

    def workflow_by_name(self, namespace: str, name: str) -> Row | None:
        """Return the live stored workflow ``name`` in ``namespace``."""
        c = t.workflows.c
        row = self.conn.execute(
            sa.select(t.workflows).where(
                c.namespace == namespace, c.name == name, c.deleted_at_ms.is_(None)
            )
        ).first()
        return dict(row._mapping) if row is not None else None

    # --- events, frames, notifications --------------------------------------------------

    def event(
        self, run_id: str, namespace: str, type_: str, node_id: str | None = None, **payload: Any
    ) -> None:
        """Buffer an event; it is written with its ``seq`` when the transaction commits."""
        self._events.append((run_id, namespace, type_, node_id, payload))

    def change(
        self, run_id: str, node_id: str, iteration: int, status: str, attempt: int = 0
    ) -> None:
        """Buffer a node state change for the run's next frame."""
        self._changes.setdefault(run_id, []).append(
            {"nodeId": node_id, "iteration": iteration, "status": status, "attempt": attempt}
        )

    def notify(self, kind: str, payload: str = "") -> None:
        """Queue a wake-up, delivered after commit."""
        item = (kind, payload)
        if item not in self.notifications:
            self.notifications.append(item)

    def _bump_counter(self, count: int) -> int:
        """Reserve ``count`` sequence numbers; return the last one."""
        rows, _count = q.BUMP_COUNTER.execute(self.conn, {"_count": count})
        if not rows:
            self.conn.execute(t.event_counter.insert().values(id=1, seq=count))
            return count
        return int(rows[0]["seq"])

    def flush(self) -> None:
        """Write buffered frames and events (called by the store just before commit)."""
        for run_id, changes in self._changes.items():
            known = self._frames.get(run_id)
            if known is not None:
                frame_no, namespace = known[0] + 1, known[1]
                q.BUMP_FRAME_TO.defer(self.conn, {"_run": run_id, "_frame": frame_no})
                self._frames[run_id] = (frame_no, namespace)
            else:
                bumped, _count = q.BUMP_FRAME.execute(self.conn, {"_run": run_id})
                if not bumped:
                    continue
                frame_no, namespace = bumped[0]["frame_no"], bumped[0]["namespace"]
            self._events.append(
                (
                    run_id,
                    namespace,
                    "FrameCommitted",
                    None,
                    {"frameNo": frame_no, "_changes": changes},
                )
            )
        self._changes = {}
        if not self._events:
            self._publish(self.notifications)
            return
        self._write_events()

    def _write_events(self) -> None:
        """Allocate the buffered events' ``seq`` numbers, write them (and their frames),
        queue the ``event`` wake-up and publish the notifications."""
        last = self._bump_counter(len(self._events))
        now = self.now_ms
        rows: list[dict[str, Any]] = []
        frame_rows: list[dict[str, Any]] = []
        seq = last - len(self._events)
        for run_id, namespace, type_, node_id, payload in self._events:
            seq += 1
            changes = payload.pop("_changes", None)
            body = {"type": type_, "runId": run_id, "seq": seq, "timestampMs": now}
            if node_id is not None:
                body["nodeId"] = node_id
            if payload:
                body.update(payload)
            rows.append(
                {
                    "seq": seq,
                    "run_id": run_id,
                    "namespace": namespace,
                    "type": type_,
                    "node_id": node_id,
                    "ts_ms": now,
                    "payload": body,
                }
            )
            if changes is not None:
                frame_rows.append(
                    {
                        "run_id": run_id,
                        "frame_no": payload["frameNo"],
                        "seq": seq,
                        "ts_ms": now,
                        "changes": changes,
                    }
                )
        q.INSERT_EVENTS.defer_many(self.conn, rows)
        q.INSERT_FRAMES.defer_many(self.conn, frame_rows)
        self._events = []
        self.committed_events = rows
        self.notify("event", f"{rows[-1]['seq']}")
        self._publish(self.notifications)

    def _publish(self, notifications: list[tuple[str, str]]) -> None:
        """Send notifications to other processes (PostgreSQL NOTIFY)."""
