"""Events, frames and notifications: the transaction's outbox.

Events and frames are buffered and written by :meth:`EventsTx.flush` just before commit: the
event sequence counter row is bumped once per transaction, so its row lock is held for the
shortest time and ``seq`` is gap-free and in commit order (a transactional outbox).
"""

from __future__ import annotations

from typing import Any

from flowplane.store import schema as t
from flowplane.store import statements as q
from flowplane.store.tx.base import TxBase


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
