"""Steering runs from outside: cancel, timeouts, approvals, signals and lease recovery."""

from __future__ import annotations

from typing import Any

from flowplane.engine.attempts import record_attempt
from flowplane.engine.plan import plan_of
from flowplane.engine.settlement import (
    close_run,
    deliver_signal,
    node_settled,
    settle_waiting,
)
from flowplane.engine.successors import Effects
from flowplane.errors import (
    AlreadyDecided,
    ApprovalNotFound,
    NodeNotFound,
    RunNotActive,
    RunNotFound,
)
from flowplane.store.records import ApprovalRecord, NodeRunRecord, RunRecord, SignalRecord
from flowplane.store.tx import TERMINAL_NODE, TERMINAL_RUN, Tx

MAX_LOST_ATTEMPTS = 3
"""Attempts lost to crashed workers that are retried beyond the node's own retry policy."""


def cancel(tx: Tx, run_id: str, *, status: str = "cancelled", reason: str = "") -> RunRecord:
    """Cancel (or time out) a run: nothing starts after this commits."""
    run = tx.lock_run(run_id)
    if run is None:
        raise RunNotFound(f"run {run_id!r} not found")
    if run.status in TERMINAL_RUN:
        raise RunNotActive(f"run {run_id!r} is already {run.status}", status=run.status)
    _terminate(tx, run, status, reason)
    return run


def _terminate(tx: Tx, run: RunRecord, status: str, reason: str) -> None:
    for row in tx.node_states(run.id):
        if row.status in TERMINAL_NODE:
            continue
        tx.update_node_run(
            row.id,
            status="cancelled",
            lease_owner=None,
            lease_expires_ms=None,
            finished_at_ms=tx.now_ms,
        )
        tx.change(run.id, row.node_id, row.iteration, "cancelled", row.attempt)
    tx.update_approvals(run.id, status_from="pending", status="cancelled", decided_at_ms=tx.now_ms)
    tx.notify("cancel", run.id)
    for child in tx.child_runs(run.id):
        child_row = tx.lock_run(child.id)
        if child_row is not None and child_row.status not in TERMINAL_RUN:
            child_row.parent_run_id = None  # the parent is ending itself
            _terminate(tx, child_row, "cancelled", f"parent run {run.id} ended")
    error = None
    if status == "timed-out":
        error = {"code": "run_timeout", "message": reason or "run exceeded its timeout"}
    elif reason:
        error = {"code": "cancelled", "message": reason}
    close_run(tx, run, status, None, error)


def time_out_runs(tx: Tx) -> int:
    """Time out every active run past its deadline."""
    count = 0
    for run_id in tx.runs_past_deadline():
        run = tx.lock_run(run_id)
        if run is None or run.status in TERMINAL_RUN:
            continue
        _terminate(tx, run, "timed-out", "run exceeded its timeout")
        count += 1
    return count


def decide(
    tx: Tx,
    run_id: str,
    node_id: str,
    iteration: int,
    *,
    approved: bool,
    note: str | None,
    by: str | None,
) -> ApprovalRecord:
    """Approve or deny a waiting approval; returns the approval as decided."""
    run = tx.lock_run(run_id)
    if run is None:
        raise RunNotFound(f"run {run_id!r} not found")
    approval = tx.get_approval(run_id, node_id, iteration)
    if approval is None:
        plan = plan_of(tx, run)
        if node_id not in plan.graph.node_ids:
            raise NodeNotFound(f"run {run_id!r} has no node {node_id!r}")
        raise ApprovalNotFound(f"node {node_id!r} (iteration {iteration}) has no approval request")
    if approval.status != "pending":
        raise AlreadyDecided(
            f"approval for {node_id!r} was already {approval.status}",
            decision=approval.status,
        )
    if run.status in TERMINAL_RUN:
        raise RunNotActive(f"run {run_id!r} is already {run.status}", status=run.status)
    plan = plan_of(tx, run)
    status = "approved" if approved else "denied"
    tx.update_approval(
        approval.id, status=status, decided_at_ms=tx.now_ms, decided_by=by, note=note
    )
    row = tx.node_row(run_id, node_id, iteration)
    assert row is not None
    ns = run.namespace
    output = {"approved": approved, "note": note, "decidedBy": by}
    tx.event(
        run_id,
        ns,
        "ApprovalGranted" if approved else "ApprovalDenied",
        node_id,
        iteration=iteration,
        note=note,
        decidedBy=by,
    )
    if approved or approval.on_deny == "continue":
        settle_waiting(tx, run, plan, row, "finished", output, None)
    else:
        error = {
            "code": "approval_denied",
            "message": f"approval denied{': ' + note if note else ''}",
        }
        settle_waiting(tx, run, plan, row, "failed", output, error)
    effects = Effects()
    node_settled(tx, run, plan, node_id, iteration, effects)
    if effects.ready:
        tx.notify("ready")
    return approval.decided(status, by=by, note=note, at_ms=tx.now_ms)


def send_signal(
    tx: Tx, run_id: str, name: str, payload: Any, correlation_id: str | None = None
) -> dict[str, Any]:
    """Deliver a signal to a run: wakes the oldest matching waiting node, or is kept."""
    run = tx.lock_run(run_id)
    if run is None:
        raise RunNotFound(f"run {run_id!r} not found")
    if run.status in TERMINAL_RUN:
        raise RunNotActive(f"run {run_id!r} is already {run.status}", status=run.status)
    signal_id = tx.insert_signal(
        {
            "run_id": run_id,
            "name": name,
            "correlation_id": correlation_id,
            "payload": payload,
            "created_at_ms": tx.now_ms,
        }
    )
    tx.event(run_id, run.namespace, "SignalReceived", name=name, correlationId=correlation_id)
    for row in tx.waiting_signal_nodes(run_id):
        wait = row.wait or {}
        if wait.get("kind") != "signal" or wait.get("name") != name:
            continue
        if wait.get("correlationId") is not None and wait["correlationId"] != correlation_id:
            continue
        effects = Effects()
        signal = SignalRecord(
            id=signal_id,
            run_id=run_id,
            name=name,
            correlation_id=correlation_id,
            payload=payload,
            created_at_ms=tx.now_ms,
        )
        deliver_signal(tx, run, plan_of(tx, run), row, signal, effects)
        if effects.ready:
            tx.notify("ready")
        return {"delivered": True, "nodeId": row.node_id, "iteration": row.iteration}
    return {"delivered": False, "nodeId": None, "iteration": None}


def reap(tx: Tx) -> int:
    """Return node runs with expired leases to ``ready`` (counting the lost attempt)."""
    count = 0
    for row in tx.expired_leases():
        run = tx.lock_run(row.run_id)
        if run is None:
            continue
        fresh = tx.node_row(row.run_id, row.node_id, row.iteration)
        if fresh is None or fresh.status != "in-progress" or fresh.lease_epoch != row.lease_epoch:
            continue
        if run.status in TERMINAL_RUN:
            tx.update_node_run(row.id, status="cancelled", lease_owner=None, lease_expires_ms=None)
            continue
        plan = plan_of(tx, run)
        error = {
            "code": "lease_expired",
            "message": f"worker {row.lease_owner} stopped heartbeating",
        }
        record_attempt(tx, row, "lost", row.lease_owner, row.started_at_ms, error)
        policy = plan.node(row.node_id).retry_policy
        ns = run.namespace
        count += 1
        if row.attempt < policy.max_attempts + MAX_LOST_ATTEMPTS:
            tx.update_node_run(
                row.id,
                status="ready",
                available_at_ms=tx.now_ms,
                lease_owner=None,
                lease_expires_ms=None,
            )
            tx.change(run.id, row.node_id, row.iteration, "ready", row.attempt)
            tx.event(
                run.id,
                ns,
                "NodeRetrying",
                row.node_id,
                iteration=row.iteration,
                attempt=row.attempt + 1,
                delayMs=0,
                reason="lease expired",
            )
            tx.notify("ready")
            continue
        tx.update_node_run(
            row.id,
            status="failed",
            error=error,
            finished_at_ms=tx.now_ms,
            lease_owner=None,
            lease_expires_ms=None,
        )
        tx.change(run.id, row.node_id, row.iteration, "failed", row.attempt)
        tx.event(
            run.id,
            ns,
            "NodeFailed",
            row.node_id,
            iteration=row.iteration,
            attempt=row.attempt,
            error=error,
            willRetry=False,
        )
        effects = Effects()
        node_settled(tx, run, plan, row.node_id, row.iteration, effects)
        if effects.ready:
            tx.notify("ready")
    return count


def release(tx: Tx, row: NodeRunRecord) -> bool:
    """Give a claimed node run back without counting the attempt (graceful shutdown)."""
    return tx.update_node_run(
        row.id,
        expect_status="in-progress",
        expect_epoch=row.lease_epoch,
        status="ready",
        attempt=max(0, row.attempt - 1),
        lease_owner=None,
        lease_expires_ms=None,
        available_at_ms=tx.now_ms,
    )


def wait_row_is_timer(row: NodeRunRecord) -> bool:
    """Whether a claimed row is a due timer (complete it without calling the connector)."""
    return (row.wait or {}).get("kind") == "timer"
