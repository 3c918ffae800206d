"""Deciding what comes after a settled node: trigger rules, ready or skipped successors,
and leasing the first ones to the completing worker (its hand-off).
"""

from __future__ import annotations

from typing import Any

from flowplane.engine.plan import Plan
from flowplane.store.records import NodeRunRecord, NodeState, RunRecord
from flowplane.store.tx import TERMINAL_NODE, Tx


class Effects:
    """What one transaction made ready, for hand-off and wake-ups.

    With :meth:`hand_off`, the first ``limit`` node runs made ready may be leased to
    ``owner`` as they are made ready (one statement instead of two); they are then in
    ``leased`` as well as in ``ready``.
    """

    def __init__(self) -> None:
        self.ready: list[int] = []
        self.leased: list[NodeRunRecord] = []
        self.limit = 0
        self.owner = ""
        self.lease_ms = 0

    def hand_off(self, owner: str, limit: int, lease_ms: int) -> None:
        self.owner, self.limit, self.lease_ms = owner, limit, lease_ms

    def can_lease(self) -> bool:
        """Whether the next node run made ready is one the hand-off would claim."""
        return len(self.ready) < self.limit


def handoff_claims(plan: Plan, node_id: str, iteration: int, limit: int) -> list[tuple[str, int]]:
    """The pending node runs :func:`evaluate_successors` will lease to the completing
    worker (:meth:`Tx.claim_pending`) once ``node_id`` finished, known before it runs.

    Only when every successor waits on ``node_id`` alone: each is then made ready
    (whatever its trigger rule) without a read, in ``downstream`` order, and the first
    ``limit`` are leased. Otherwise (joins, foreach items) nothing is predicted.
    """
    if limit <= 0 or (node_id in plan.foreach and iteration >= 0):
        return []
    successors = plan.graph.downstream(node_id)
    only = (node_id,)  # upstream ids are distinct: a successor of node_id alone has these
    if any(plan.graph.upstream(succ) != only for succ in successors):
        return []
    return [(succ, plan.level_iteration(succ)) for succ in successors[:limit]]


def trigger_decision(rule: str, upstream: list[tuple[str, bool]]) -> str | None:
    """Decide a pending node from its upstream ``(status, continues_on_error)`` pairs.

    Returns ``"ready"``, ``"skipped"`` or ``None`` (not decidable yet).
    """
    done = all(status in TERMINAL_NODE for status, _ in upstream)
    ok = [status == "finished" or (status == "failed" and cont) for status, cont in upstream]
    failed = [status == "failed" and not cont for status, cont in upstream]
    if rule == "one_success":
        if any(ok):
            return "ready"
        return "skipped" if done else None
    if not done:
        return None
    if rule == "all_done":
        return "ready"
    if rule == "none_failed":
        return "skipped" if any(failed) else "ready"
    return "ready" if all(ok) else "skipped"


def evaluate_successors(
    tx: Tx, run: RunRecord, plan: Plan, settled: str, effects: Effects, status: str | None = None
) -> None:
    frontier = [settled]
    # Statuses written in this transaction: successors whose upstream are all among them
    # are decided without reading node states, with one keyed conditional update.
    known: dict[str, str] = {settled: status} if status is not None else {}
    ns = run.namespace
    while frontier:
        successors: list[str] = []
        for node_id in frontier:
            for succ in plan.graph.downstream(node_id):
                if succ not in successors:
                    successors.append(succ)
        if not successors:
            return
        needed: set[str] = set()
        for succ in successors:
            upstream_ids = plan.graph.upstream(succ)
            if not all(u in known for u in upstream_ids):
                needed.add(succ)
                needed.update(upstream_ids)
        states = (
            {
                s.node_id: s
                for s in tx.node_states(run.id, needed)
                if s.iteration == plan.level_iteration(s.node_id)
            }
            if needed
            else {}
        )
        frontier = []
        for succ in successors:
            if succ in needed:
                state = states.get(succ)
                if state is None or state.status != "pending":
                    continue
                upstream = [
                    (states[u].status if u in states else "pending", plan.continues_on_error(u))
                    for u in plan.graph.upstream(succ)
                ]
            else:
                state = None
                upstream = [
                    (known[u], plan.continues_on_error(u)) for u in plan.graph.upstream(succ)
                ]
            decision = trigger_decision(plan.node(succ).trigger_rule, upstream)
            if decision is None:
                continue
            iteration = plan.level_iteration(succ) if state is None else state.iteration
            if decision == "ready":
                row_id = _make_ready(tx, run, succ, iteration, state, effects)
                if row_id is not None:
                    effects.ready.append(row_id)
                    tx.change(run.id, succ, iteration, "ready")
                    tx.event(run.id, ns, "NodeReady", succ, iteration=iteration)
            elif (
                _settle_pending(
                    tx, run, succ, iteration, state, status="skipped", finished_at_ms=tx.now_ms
                )
                is not None
            ):
                known[succ] = "skipped"
                tx.change(run.id, succ, iteration, "skipped")
                tx.event(
                    run.id, ns, "NodeSkipped", succ, iteration=iteration, reason="trigger_rule"
                )
                frontier.append(succ)


def _make_ready(
    tx: Tx, run: RunRecord, node_id: str, iteration: int, state: NodeState | None, effects: Effects
) -> int | None:
    """Make a pending node run ready (leasing it at once if the hand-off would claim it);
    return its row id, or ``None`` if it was not pending."""
    if state is None and effects.can_lease():
        leased = tx.claim_pending(run.id, node_id, iteration, effects.owner, effects.lease_ms)
        if leased is None:
            return None
        effects.leased.append(leased)
        return int(leased.id)
    return _settle_pending(
        tx, run, node_id, iteration, state, status="ready", available_at_ms=tx.now_ms
    )


def _settle_pending(
    tx: Tx, run: RunRecord, node_id: str, iteration: int, state: NodeState | None, **values: Any
) -> int | None:
    """Move a pending node run on; return its row id, or ``None`` if it was not pending."""
    if state is None:
        return tx.settle_pending(run.id, node_id, iteration, **values)
    if tx.update_node_run(state.id, expect_status="pending", **values):
        return int(state.id)
    return None
