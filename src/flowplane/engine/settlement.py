"""Settling: what follows a node run reaching a terminal state, up to its run's end.

A settled node run makes its successors ready (or skips them), counts a ``foreach`` item
towards its node, and recomputes its run's status; a run with nothing left to do is closed
(finished or failed), and a closed child run settles its parent's waiting node run.
"""

from __future__ import annotations

from typing import Any

from flowplane.engine.attempts import record_attempt, success_values
from flowplane.engine.plan import Plan, plan_of
from flowplane.engine.successors import Effects, evaluate_successors
from flowplane.store.records import NodeRunRecord, RunRecord, SignalRecord, run_status
from flowplane.store.tx import TERMINAL_NODE, TERMINAL_RUN, WAITING_NODE, Tx


def node_settled(
    tx: Tx,
    run: RunRecord,
    plan: Plan,
    node_id: str,
    iteration: int,
    effects: Effects,
    status: str | None = None,
) -> None:
    """React to a node run reaching a terminal state: foreach bookkeeping, successors, run.

    ``status`` is the state the node run was just given in this transaction, when the
    caller knows it: successors depending only on it are then decided without a read.
    """
    if node_id in plan.foreach and iteration >= 0:
        item_settled(tx, run, plan, node_id, effects)
        return
    evaluate_successors(tx, run, plan, node_id, effects, status)
    update_run_status(tx, run, made_ready=bool(effects.ready))


OFF_LOOP_ITEMS = 1_000
"""A foreach of more items is settled off the event loop (see :meth:`Tx.off_loop`)."""


def item_settled(tx: Tx, run: RunRecord, plan: Plan, node_id: str, effects: Effects) -> None:
    """An item of ``foreach`` node ``node_id`` settled: start pending items up to its
    ``max_parallel``; once every item settled, settle the node itself with their outputs."""
    if plan.node(node_id).max_parallel is None and tx.has_ready_item(run.id, node_id):
        # Items still ready: the node is not settled, no item waits for a free slot, and the
        # run is running. Counting the items (and the run's node runs) on every item's
        # completion made a fan-out quadratic; only its last items are counted.
        update_run_status(tx, run, made_ready=True)
        return
    # Counted in SQL: reading every item row on each item's completion made a fan-out
    # quadratic in Python rows. The item rows are read once, when the last one settles.
    counts = tx.item_counts(run.id, node_id)
    total = sum(counts.values())
    pending = counts.get("pending", 0)
    settled = sum(n for status, n in counts.items() if status in TERMINAL_NODE)
    in_flight = total - settled - pending
    limit = plan.node(node_id).max_parallel or total
    ns = run.namespace
    if pending and in_flight < limit:
        for state in tx.pending_items(run.id, node_id, limit - in_flight):
            if tx.update_node_run(
                state.id, expect_status="pending", status="ready", available_at_ms=tx.now_ms
            ):
                effects.ready.append(state.id)
                tx.change(run.id, node_id, state.iteration, "ready")
                tx.event(run.id, ns, "NodeReady", node_id, iteration=state.iteration)
    if settled < total:
        # An item still ready keeps the run running: no need to count all its node runs
        # (that count, on every item's completion, made a big fan-out quadratic).
        update_run_status(tx, run, made_ready=bool(effects.ready) or counts.get("ready", 0) > 0)
        return
    level = tx.node_row(run.id, node_id, -1)
    assert level is not None
    if level.status in TERMINAL_NODE:
        return
    if total > OFF_LOOP_ITEMS:
        # Reading every item's output (and, when the run ends here, every node run) would
        # hold the event loop for a big foreach (0.35 s for 10,000 items).
        tx.off_loop()
    outputs = tx.node_outputs(run.id, [node_id])
    # (iteration, status) of every item, in order.
    items = sorted((it, v[0]) for (_n, it), v in outputs.items() if it >= 0)
    result = [outputs[(node_id, it)][1] for it, _status in items]
    failed = [it for it, status in items if status == "failed"]
    if failed:
        first = outputs[(node_id, failed[0])][2] or {}
        error = {
            "code": "foreach_item_failed",
            "message": f"{len(failed)} of {len(items)} items failed; first: "
            f"[{failed[0]}] {first.get('message', '')}",
            "failedIterations": failed,
        }
        tx.update_node_run(
            level.id, status="failed", output=result, error=error, finished_at_ms=tx.now_ms
        )
        tx.change(run.id, node_id, -1, "failed", level.attempt)
        tx.event(
            run.id,
            ns,
            "NodeFailed",
            node_id,
            iteration=-1,
            attempt=level.attempt,
            error=error,
            willRetry=False,
        )
    else:
        tx.update_node_run(level.id, status="finished", output=result, finished_at_ms=tx.now_ms)
        tx.change(run.id, node_id, -1, "finished", level.attempt)
        tx.event(
            run.id,
            ns,
            "NodeFinished",
            node_id,
            iteration=-1,
            attempt=level.attempt,
            output=result,
        )
    level_status = "failed" if failed else "finished"
    evaluate_successors(tx, run, plan, node_id, effects, level_status)
    update_run_status(tx, run, made_ready=bool(effects.ready))


_WAIT_RANK = {"waiting-approval": 3, "waiting-event": 2, "waiting-timer": 1}


def update_run_status(tx: Tx, run: RunRecord, *, made_ready: bool = False) -> None:
    """Recompute the run's status from its node runs; finish it when nothing is left.

    ``made_ready``: this transaction has just made one of the run's node runs ready, so the
    run is certainly ``running`` and its node runs need not be counted.
    """
    if run.status in TERMINAL_RUN:
        return
    if made_ready:
        _set_run_status(tx, run, "running")
        return
    counts = tx.status_counts(run.id)
    active = {s: n for s, n in counts.items() if s not in TERMINAL_NODE and n > 0}
    if not active:
        _finish_run(tx, run)
        return
    if "ready" in active or "in-progress" in active or set(active) <= {"pending", "aggregate"}:
        status = "running"
    else:
        waits = [s for s in active if s in WAITING_NODE]
        status = max(waits, key=lambda s: _WAIT_RANK[s]) if waits else "running"
    _set_run_status(tx, run, status)


def _set_run_status(tx: Tx, run: RunRecord, status: str) -> None:
    if status != run.status:
        previous = run.status
        tx.update_run(run.id, status=status)
        run.status = run_status(status)
        tx.event(run.id, run.namespace, "RunStatusChanged", status=status, previous=previous)


def _finish_run(tx: Tx, run: RunRecord) -> None:
    plan = plan_of(tx, run)
    rows = tx.node_states(run.id)
    level_rows = [r for r in rows if r.iteration == plan.level_iteration(r.node_id)]
    failed = [
        r for r in level_rows if r.status == "failed" and not plan.continues_on_error(r.node_id)
    ]
    leaves = plan.graph.leaves()
    outputs = tx.node_outputs(run.id, [*leaves, *(r.node_id for r in failed)])
    output = {
        leaf: outputs[(leaf, plan.level_iteration(leaf))][1]
        for leaf in leaves
        if outputs.get((leaf, plan.level_iteration(leaf)), ("",))[0] == "finished"
    }
    if failed:
        first = min(failed, key=lambda r: r.id)
        node_error = outputs.get((first.node_id, first.iteration), ("", None, None))[2] or {}
        error = {
            "code": node_error.get("code", "node_failed"),
            "message": f"node {first.node_id!r} failed: {node_error.get('message', '')}",
            "nodeId": first.node_id,
        }
        close_run(tx, run, "failed", output, error)
    else:
        close_run(tx, run, "finished", output, None)


def close_run(tx: Tx, run: RunRecord, status: str, output: Any, error: Any) -> None:
    """End the run with ``status`` (its terminal event; a child run settles its parent)."""
    tx.update_run(run.id, status=status, output=output, error=error, finished_at_ms=tx.now_ms)
    previous = run.status
    run.status = run_status(status)
    ns = run.namespace
    if status == "finished":
        tx.event(run.id, ns, "RunFinished", output=output)
    elif status == "failed":
        tx.event(run.id, ns, "RunFailed", error=error)
    elif status == "cancelled":
        tx.event(run.id, ns, "RunCancelled", previous=previous)
    else:
        tx.event(run.id, ns, "RunTimedOut", error=error)
    if run.parent_run_id:
        _child_settled(tx, run, status, output, error)


def stop_run(tx: Tx, run: RunRecord, plan: Plan, status: str, error: Any) -> None:
    """End the run early (StopRun): leftover work is skipped or cancelled."""
    rows = tx.node_states(run.id)
    for row in rows:
        if row.status in TERMINAL_NODE:
            continue
        new = "skipped" if row.status in ("pending", "ready") else "cancelled"
        tx.update_node_run(
            row.id, status=new, lease_owner=None, lease_expires_ms=None, finished_at_ms=tx.now_ms
        )
        tx.change(run.id, row.node_id, row.iteration, new, row.attempt)
    tx.update_approvals(run.id, status_from="pending", status="cancelled", decided_at_ms=tx.now_ms)
    outputs = tx.node_outputs(run.id, plan.graph.leaves())
    output = {k[0]: v[1] for k, v in outputs.items() if v[0] == "finished"}
    tx.notify("cancel", run.id)
    close_run(tx, run, status, output, error)


def _child_settled(tx: Tx, child: RunRecord, status: str, output: Any, error: Any) -> None:
    parent_id, node_id, iteration = (
        child.parent_run_id,
        child.parent_node_id,
        child.parent_iteration,
    )
    if parent_id is None or node_id is None or iteration is None:
        return
    parent = tx.lock_run(parent_id)
    if parent is None or parent.status in TERMINAL_RUN:
        return
    row = tx.node_row(parent.id, node_id, iteration)
    if row is None or row.status != "waiting-event":
        return
    plan = plan_of(tx, parent)
    effects = Effects()
    if status == "finished":
        settle_waiting(tx, parent, plan, row, "finished", output, None)
    else:
        err = {
            "code": "child_run_failed",
            "message": f"sub-workflow run {child.id} ended {status}: "
            f"{(error or {}).get('message', '')}".strip(),
            "childRunId": child.id,
            "childStatus": status,
        }
        settle_waiting(tx, parent, plan, row, "failed", None, err)
    settled = "finished" if status == "finished" else "failed"
    node_settled(tx, parent, plan, row.node_id, row.iteration, effects, settled)
    if effects.ready:
        tx.notify("ready")


def settle_waiting(
    tx: Tx, run: RunRecord, plan: Plan, row: NodeRunRecord, status: str, output: Any, error: Any
) -> None:
    """Finish (or fail) a node run that was waiting; the caller evaluates successors."""
    success = success_values(None, row.started_at_ms) if status == "finished" else {}
    tx.update_node_run(
        row.id,
        status=status,
        output=output,
        error=error,
        finished_at_ms=tx.now_ms,
        available_at_ms=tx.now_ms,
        **success,
    )
    if status != "finished":
        record_attempt(tx, row, status, None, row.started_at_ms, error)
    tx.change(run.id, row.node_id, row.iteration, status, row.attempt)
    if status == "finished":
        tx.event(
            run.id,
            run.namespace,
            "NodeFinished",
            row.node_id,
            iteration=row.iteration,
            attempt=row.attempt,
            output=output,
        )
    else:
        tx.event(
            run.id,
            run.namespace,
            "NodeFailed",
            row.node_id,
            iteration=row.iteration,
            attempt=row.attempt,
            error=error,
            willRetry=False,
        )


def deliver_signal(
    tx: Tx, run: RunRecord, plan: Plan, row: NodeRunRecord, signal: SignalRecord, effects: Effects
) -> None:
    """Consume ``signal`` for node run ``row`` waiting for it: it finishes with the signal."""
    tx.consume_signal(signal.id, row.node_id, row.iteration)
    output = {
        "name": signal.name,
        "payload": signal.payload,
        "correlationId": signal.correlation_id,
    }
    settle_waiting(tx, run, plan, row, "finished", output, None)
    node_settled(tx, run, plan, row.node_id, row.iteration, effects, "finished")
