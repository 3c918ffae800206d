"""Events, frames and notifications: the transaction's outbox.

Events and frames are buffered and written by :meth:`EventsTx.flush` just before commit, one
``event_batches`` row per run (see :mod:`flowplane.store.event_codec`): the event sequence
counter row is bumped once per transaction, so its row lock is held for the shortest time
and ``seq`` is gap-free and in commit order (a transactional outbox).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from flowplane.store import schema as t
from flowplane.store import statements as q
from flowplane.store.event_codec import pack_change, pack_changes, pack_event
from flowplane.store.tx.base import TxBase


@dataclass
class Batch:
    """One run's events and frame of a transaction: one ``event_batches`` row."""

    run_id: str
    namespace: str
    events: list[list[Any]] = field(default_factory=list)
    frame_no: int | None = None
    changes: list[Any] | None = None
    # The frame number was known (the run is locked by this transaction): the runs row
    # is still to be set to it (with the write; BUMP_FRAME did it otherwise).
    set_frame: bool = False

    @property
    def size(self) -> int:
        """How many seqs it takes (its ``FrameCommitted`` event included)."""
        return len(self.events) + (self.frame_no is not None)


def event_rows(batches: list[Batch], last: int, ts_ms: int) -> list[dict[str, Any]]:
    """The ``event_batches`` rows of ``batches``, numbered so the last one ends at seq
    ``last`` (as inserted; what ``Store.add_event_rows_hook`` hands out)."""
    rows: list[dict[str, Any]] = []
    seq = last - sum(batch.size for batch in batches)
    for batch in batches:
        seq += batch.size
        rows.append(
            {
                "last_seq": seq,
                "size": batch.size,
                "run_id": batch.run_id,
                "namespace": batch.namespace,
                "ts_ms": ts_ms,
                "events": batch.events,
                "frame_no": batch.frame_no,
                "changes": batch.changes,
            }
        )
    return rows


class EventsTx(TxBase):
    """Buffered events and frame changes, written at commit; wake-ups sent after it."""

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
            pack_change(node_id, iteration, status, attempt)
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
        """Write buffered frames and events (called by the store just before commit), and
        the inserts held back (:meth:`coalesce_inserts`): a held-back run is inserted with
        its new frame number."""
        self._batches = self._batch()
        queued = self._queued_runs
        if queued:
            for batch in self._batches:
                row = queued.get(batch.run_id)
                if row is not None and batch.set_frame:
                    row["frame_no"] = batch.frame_no
                    batch.set_frame = False
        self.write_coalesced()
        if not self._batches:
            self._publish(self.notifications)
            return
        self._write_events()

    def _batch(self) -> list[Batch]:
        """The buffered events and frames as one batch per run, in the order the runs were
        first touched (a run's events keep their order), each with its new frame number
        (its runs row bumped; ``None`` without changes)."""
        batches: dict[str, Batch] = {}
        for run_id, namespace, type_, node_id, payload in self._events:
            batch = batches.get(run_id)
            if batch is None:
                batch = batches[run_id] = Batch(run_id, namespace)
            batch.events.append(pack_event(type_, node_id, payload))
        self._events = []
        for run_id, changes in self._changes.items():
            known = self._frames.get(run_id)
            if known is not None:
                frame_no, namespace = known[0] + 1, known[1]
                self._frames[run_id] = (frame_no, namespace)
            else:
                bumped, _count = q.BUMP_FRAME.execute(self.conn, {"_run": run_id})
                if not bumped:
                    continue
                frame_no, namespace = bumped[0]["frame_no"], bumped[0]["namespace"]
            batch = batches.get(run_id)
            if batch is None:
                batch = batches[run_id] = Batch(run_id, namespace)
            batch.frame_no, batch.changes = frame_no, pack_changes(batch.events, changes)
            batch.set_frame = known is not None
        self._changes = {}
        return list(batches.values())

    def _write_events(self) -> None:
        """Allocate the batches' ``seq`` numbers, write them, queue the ``event`` wake-up
        and publish the notifications."""
        batches, self._batches = self._batches, []
        total = sum(batch.size for batch in batches)
        last = self._bump_counter(total)
        for batch in batches:
            if batch.set_frame:
                q.BUMP_FRAME_TO.defer(self.conn, {"_run": batch.run_id, "_frame": batch.frame_no})
        rows = event_rows(batches, last, self.now_ms)
        q.INSERT_EVENT_BATCHES.defer_many(self.conn, rows)
        self.event_rows = rows
        self.notify("event", f"{last}")
        self._publish(self.notifications)

    def _publish(self, notifications: list[tuple[str, str]]) -> None:
        """Send notifications to other processes (PostgreSQL NOTIFY)."""
