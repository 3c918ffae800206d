"""What a node run's attempt leaves on record: its attempt and its log lines.

A failed, lost or superseded attempt is a row of ``attempts``. The successful attempt of a
node run is kept on the node run's own row (``worker``, ``attempt_started_ms``), written by
the fenced update that finishes it with its output (:func:`success_values`): one row per
node run (``ux_node_runs_key``), so the database holds one success and one output per node
run, and a finished node run costs no second row (issue 19, storage). Readers merge the two
(``flowplane.store.attempt_reads``).
"""

from __future__ import annotations

from typing import Any

from flowplane.store.records import NodeRunRecord, RunRecord
from flowplane.store.tx import Tx

MAX_LOG_EVENTS_PER_ATTEMPT = 200


def success_values(owner: str | None, started: int | None) -> dict[str, Any]:
    """The columns of a node run's successful attempt, set by the update that finishes it:
    the worker ``owner`` ('' for none) and when the attempt started."""
    return {"worker": owner or "", "attempt_started_ms": started}


def record_attempt(
    tx: Tx, row: NodeRunRecord, status: str, owner: str | None, started: int | None, error: Any
) -> None:
    """Record the attempt of node run ``row`` that ended ``status`` (on ``owner``): failed
    or lost. (A successful attempt is written with the node run: :func:`success_values`.)"""
    if status == "finished":
        raise ValueError("a successful attempt is recorded on its node run (success_values)")
    tx.insert_attempt(
        {
            "run_id": row.run_id,
            "node_id": row.node_id,
            "iteration": row.iteration,
            "attempt": max(1, row.attempt),
            "status": status,
            "worker": owner,
            "started_at_ms": started,
            "finished_at_ms": tx.now_ms,
            "error": error,
        }
    )


def persist_logs(
    tx: Tx, run: RunRecord, row: NodeRunRecord, logs: list[tuple[int, str, str]]
) -> None:
    """Store the attempt's log lines ``(ts_ms, level, message)``; the first
    :data:`MAX_LOG_EVENTS_PER_ATTEMPT` are also sent as ``NodeLog`` events."""
    if not logs:
        return
    tx.insert_logs(
        [
            {
                "run_id": run.id,
                "node_id": row.node_id,
                "iteration": row.iteration,
                "attempt": row.attempt,
                "level": level,
                "message": message,
                "ts_ms": ts,
            }
            for ts, level, message in logs
        ]
    )
    for _ts, level, message in logs[:MAX_LOG_EVENTS_PER_ATTEMPT]:
        tx.event(
            run.id,
            run.namespace,
            "NodeLog",
            row.node_id,
            iteration=row.iteration,
            level=level,
            message=message,
        )
