"""Resume, rewind and fork: re-executing part of a run while reusing recorded outputs."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from flowplane.engine.attempts import success_values
from flowplane.engine.control import _terminate
from flowplane.engine.plan import Plan, plan_of
from flowplane.engine.settlement import item_settled, update_run_status
from flowplane.engine.successors import Effects, trigger_decision
from flowplane.errors import (
    Conflict,
    InvalidInput,
    NodeNotFound,
    RunNotFound,
)
from flowplane.status import RunStatus
from flowplane.store import reads
from flowplane.store import schema as t
from flowplane.store.records import RunRecord
from flowplane.store.tx import TERMINAL_RUN, Tx

RESUMABLE_RUN = ("failed", "cancelled", "timed-out")


def resume(tx: Tx, run_id: str) -> RunRecord:
    """Continue a failed, cancelled or timed-out run from where it stopped.

    Finished node runs keep their recorded outputs and are not executed again; failed,
    cancelled and skipped ones go back to ``pending`` and are re-decided in graph order.
    """
    run = tx.lock_run(run_id)
    if run is None:
        raise RunNotFound(f"run {run_id!r} not found")
    if run.status not in RESUMABLE_RUN:
        raise Conflict(
            f"run {run_id!r} is {run.status}; only failed, cancelled or timed-out runs resume",
            status=run.status,
        )
    plan = plan_of(tx, run)
    keep = {(s.node_id, s.iteration) for s in tx.node_states(run_id) if s.status == "finished"}
    _reset_nodes(tx, run, plan, keep)
    _restart(tx, run, plan, "resume")
    return run


def _decide_pending(tx: Tx, run: RunRecord, plan: Plan, effects: Effects) -> None:
    """Mark ready (or skipped) every pending node-level row whose needs are settled."""
    states = {
        s.node_id: s
        for s in tx.node_states(run.id)
        if s.iteration == plan.level_iteration(s.node_id)
    }
    # Node-level statuses, with the decisions taken below (in topological order).
    statuses: dict[str, str] = {node_id: s.status for node_id, s in states.items()}
    for node_id in plan.graph.topological_order():
        state = states[node_id]
        if statuses[node_id] != "pending":
            continue
        upstream = [(statuses[u], plan.continues_on_error(u)) for u in plan.graph.upstream(node_id)]
        decision = (
            "ready" if not upstream else trigger_decision(plan.node(node_id).trigger_rule, upstream)
        )
        if decision is None:
            continue
        iteration = state.iteration
        if decision == "ready":
            tx.update_node_run(state.id, status="ready", available_at_ms=tx.now_ms)
            effects.ready.append(state.id)
            tx.change(run.id, node_id, iteration, "ready")
            tx.event(run.id, run.namespace, "NodeReady", node_id, iteration=iteration)
        else:
            tx.update_node_run(state.id, status="skipped", finished_at_ms=tx.now_ms)
            tx.change(run.id, node_id, iteration, "skipped")
        statuses[node_id] = decision


def states_at_frame(tx: Tx, run_id: str, frame_no: int) -> dict[tuple[str, int], str]:
    """Fold the run's frames ``1..frame_no`` into ``{(node, iteration): status}``."""

    states: dict[tuple[str, int], str] = {}
    for frame in reads.frames_until(tx, run_id, frame_no):
        for change in frame.changes:
            states[(change["nodeId"], change["iteration"])] = change["status"]
    return states


def rewind(tx: Tx, run_id: str, frame_no: int) -> RunRecord:
    """Reset the run to the state of frame ``frame_no`` and re-execute what follows.

    Node runs finished at that frame keep their recorded outputs; everything else is reset
    and re-decided. Running connectors are cancelled; active sub-workflow runs of reset nodes
    are cancelled too.
    """
    run = tx.lock_run(run_id)
    if run is None:
        raise RunNotFound(f"run {run_id!r} not found")
    if frame_no < 1 or frame_no > run.frame_no:
        raise InvalidInput(f"frameNo must be between 1 and {run.frame_no}", frameNo=frame_no)
    plan = plan_of(tx, run)
    at_frame = states_at_frame(tx, run_id, frame_no)
    keep = {key for key, status in at_frame.items() if status == "finished"}
    for child in tx.child_runs(run_id):
        child_row = tx.lock_run(child.id)
        if child_row is not None and child_row.status not in TERMINAL_RUN:
            child_row.parent_run_id = None
            _terminate(tx, child_row, "cancelled", f"parent run {run_id} was rewound")
    tx.notify("cancel", run_id)
    _reset_nodes(tx, run, plan, keep, drop_items_not_in=set(at_frame))
    tx.update_approvals(run_id, status_from="pending", status="cancelled", decided_at_ms=tx.now_ms)
    tx.event(run_id, run.namespace, "RunRewound", frameNo=frame_no)
    _restart(tx, run, plan, "rewind")
    return run


def _reset_nodes(
    tx: Tx,
    run: RunRecord,
    plan: Plan,
    keep: set[tuple[str, int]],
    drop_items_not_in: set[tuple[str, int]] | None = None,
) -> None:
    """Reset every node run not in ``keep`` (and not finished at level) to ``pending``."""

    now = tx.now_ms
    reset_values: dict[str, Any] = {
        "status": "pending",
        "error": None,
        "output": None,
        "wait": None,
        "finished_at_ms": None,
        "lease_owner": None,
        "lease_expires_ms": None,
        "available_at_ms": now,
        "worker": None,
        "attempt_started_ms": None,
    }
    for row in tx.node_states(run.id):
        key = (row.node_id, row.iteration)
        if key in keep:
            continue
        tx.supersede_attempts(run.id, row.node_id, row.iteration)
        is_item = row.node_id in plan.foreach and row.iteration >= 0
        if is_item and drop_items_not_in is not None and key not in drop_items_not_in:
            tx.conn.execute(t.node_runs.delete().where(t.node_runs.c.id == row.id))
            continue
        tx.update_node_run(row.id, **reset_values)
        tx.change(run.id, row.node_id, row.iteration, "pending", row.attempt)
    # A foreach node whose items exist again waits on them (unleased in-progress).
    for node_id in plan.foreach:
        if (node_id, -1) in keep:
            continue
        items = tx.conn.execute(
            sa.select(sa.func.count()).where(
                t.node_runs.c.run_id == run.id,
                t.node_runs.c.node_id == node_id,
                t.node_runs.c.iteration >= 0,
            )
        ).scalar()
        if items:
            level = tx.node_row(run.id, node_id, -1)
            if level is not None:
                tx.update_node_run(level.id, status="in-progress")


def _restart(tx: Tx, run: RunRecord, plan: Plan, reason: str) -> None:
    now = tx.now_ms
    timeout = plan.workflow.timeout_seconds
    tx.update_run(
        run.id,
        status="running",
        error=None,
        output=None,
        finished_at_ms=None,
        deadline_ms=now + int(timeout * 1000) if timeout else None,
    )
    previous, run.status = run.status, RunStatus.RUNNING
    if previous != "running":
        tx.event(
            run.id,
            run.namespace,
            "RunStatusChanged",
            status="running",
            previous=previous,
            reason=reason,
        )
    effects = Effects()
    _decide_pending(tx, run, plan, effects)
    for node_id in plan.foreach:
        states = tx.node_states(run.id, [node_id])
        if any(s.iteration >= 0 and s.status == "pending" for s in states):
            item_settled(tx, run, plan, node_id, effects)
    update_run_status(tx, run)
    tx.notify("ready")


def fork_outputs(
    tx: Tx, run_id: str, plan: Plan, *, frame_no: int | None, from_node: str | None
) -> dict[str, Any]:
    """Return ``{node_id: output}`` of the original run's node-level results to reuse."""
    run = tx.get_run(run_id, with_document=False)
    if run is None:
        raise RunNotFound(f"run {run_id!r} not found")
    outputs = {
        node_id: output
        for (node_id, iteration), (status, output, _error) in tx.node_outputs(
            run_id, plan.graph.node_ids
        ).items()
        if status == "finished" and iteration == plan.level_iteration(node_id)
    }
    if frame_no is not None:
        if frame_no < 1 or frame_no > run.frame_no:
            raise InvalidInput(f"frameNo must be between 1 and {run.frame_no}")
        at_frame = states_at_frame(tx, run_id, frame_no)
        return {
            n: o
            for n, o in outputs.items()
            if at_frame.get((n, plan.level_iteration(n))) == "finished"
        }
    if from_node is not None:
        if from_node not in plan.graph.node_ids:
            raise NodeNotFound(f"run {run_id!r} has no node {from_node!r}")
        rerun = {from_node} | {
            n for n in plan.graph.node_ids if from_node in plan.graph.ancestors(n)
        }
        return {n: o for n, o in outputs.items() if n not in rerun}
    return outputs


def prefill(tx: Tx, run: RunRecord, reuse: dict[str, Any], source_run: str) -> None:
    """Mark reused nodes of a freshly dispatched fork finished with the recorded outputs."""
    plan = plan_of(tx, run)
    # Only nodes whose whole upstream is reused too keep their output.
    usable = {
        n for n in reuse if n in plan.graph.node_ids and plan.graph.ancestors(n) <= set(reuse)
    }
    if not usable:
        return
    for state in tx.node_states(run.id, usable):
        if state.iteration != plan.level_iteration(state.node_id):
            continue
        output = reuse[state.node_id]
        tx.update_node_run(
            state.id,
            status="finished",
            output=output,
            attempt=1,
            finished_at_ms=tx.now_ms,
            **success_values(f"fork:{source_run}", tx.now_ms),
        )
        tx.change(run.id, state.node_id, state.iteration, "finished", 1)
        tx.event(
            run.id,
            run.namespace,
            "NodeFinished",
            state.node_id,
            iteration=state.iteration,
            attempt=1,
            output=output,
            reused=True,
        )
    for state in tx.node_states(run.id):
        if state.status == "ready" and state.node_id not in usable:
            tx.update_node_run(state.id, status="pending")
    effects = Effects()
    _decide_pending(tx, run, plan, effects)
    update_run_status(tx, run)
