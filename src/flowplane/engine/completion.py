"""Node completion: recording what executing a claimed node run produced, fenced on its lease.

A success, a failure (retried or not), a skip, a ``foreach`` expansion or a directive (wait
for a timer, an approval or a signal, start a child run, stop the run). What follows a node
run's end, successors and the run's status, is :mod:`flowplane.engine.settlement`.

Every transition of a run first locks its row, so concurrent completions of two parents of
one node cannot both miss each other.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from flowplane.connectors.base import (
    Directive,
    StartChildRun,
    StopRun,
    WaitForApproval,
    WaitForSignal,
    WaitForTimer,
)
from flowplane.engine.attempts import persist_logs, record_attempt, success_values
from flowplane.engine.claims import claim_ids
from flowplane.engine.faults import maybe_crash
from flowplane.engine.plan import Plan, plan_of, plans
from flowplane.engine.settlement import (
    deliver_signal,
    node_settled,
    stop_run,
    update_run_status,
)
from flowplane.engine.starting import Prepared, start
from flowplane.engine.successors import Effects, handoff_claims
from flowplane.ids import new_id
from flowplane.store.records import NodeRunRecord, RunRecord
from flowplane.store.tx import TERMINAL_RUN, Ahead, Tx


@dataclass
class Outcome:
    """What executing a claimed node run produced."""

    kind: Literal["success", "failure", "skip", "expand", "directive"]
    output: Any = None
    error: dict[str, Any] | None = None
    retryable: bool = True
    directive: Directive | None = None
    items: list[Any] | None = None
    # The child run a StartChildRun directive starts (validated outside the transaction).
    child: Prepared | None = None
    logs: list[tuple[int, str, str]] = field(default_factory=list)
    started_at_ms: int | None = None


@dataclass
class Completion:
    """The result of :func:`complete`."""

    accepted: bool
    handoff: list[NodeRunRecord] = field(default_factory=list)
    ready: int = 0
    run_status: str | None = None


def complete(
    tx: Tx,
    claimed: NodeRunRecord,
    outcome: Outcome,
    *,
    owner: str,
    handoff: int = 0,
    lease_ms: int = 30_000,
) -> Completion:
    """Record the outcome of a claimed node run, fenced on its lease epoch."""
    cached = plans.get(claimed.run_id)
    if outcome.kind == "success":
        # The common case: lock the run and finish the node run at once (one statement on
        # PostgreSQL); the same fenced update as _Step.success would make. The successors
        # this worker will be handed are leased in the same round trip when predictable.
        run, updated = tx.lock_run_and_update_node(
            claimed.run_id,
            claimed.id,
            claimed.lease_epoch,
            _ahead(cached, claimed, owner, handoff, lease_ms),
            status="finished",
            output=outcome.output,
            error=None,
            finished_at_ms=tx.now_ms,
            lease_owner=None,
            lease_expires_ms=None,
            **success_values(owner, outcome.started_at_ms or claimed.started_at_ms),
        )
        if run is None or run.status in TERMINAL_RUN or not updated:
            return Completion(accepted=False)
    else:
        run = tx.lock_run(claimed.run_id)
        if run is None or run.status in TERMINAL_RUN:
            return Completion(accepted=False)
        updated = False
    plan = cached if cached is not None else plan_of(tx, run)
    step = _Step(tx, run, plan, claimed, outcome, owner)
    step.node_updated = updated
    step.effects.hand_off(owner, handoff, lease_ms)
    if outcome.kind not in _HANDLERS:
        raise KeyError(outcome.kind)
    if not getattr(step, outcome.kind)():
        return Completion(accepted=False)
    leftover = tx.leftover_claims()
    if leftover:  # handoff_claims predicted a claim the successors' evaluation did not make
        raise RuntimeError(f"node runs leased ahead but not handed off: {leftover}")
    return _finish(tx, run, step.effects, owner, handoff, lease_ms)


@dataclass
class GroupCompletion:
    """The result of :func:`complete_items`: which completions were recorded (in the
    order given), what was handed off to the worker, and the run's status."""

    accepted: list[bool]
    handoff: list[NodeRunRecord] = field(default_factory=list)
    run_status: str | None = None


def groupable(plan: Plan, claimed: NodeRunRecord, outcome: Outcome) -> bool:
    """Whether this completion may be recorded in a group (:func:`complete_items`): the
    success of a ``foreach`` item."""
    return outcome.kind == "success" and claimed.iteration >= 0 and claimed.node_id in plan.foreach


def complete_items(
    tx: Tx,
    entries: Sequence[tuple[NodeRunRecord, Outcome]],
    *,
    owner: str,
    handoff: int = 0,
    lease_ms: int = 30_000,
) -> GroupCompletion:
    """Record the successes of several ``foreach`` items of one run (each
    :func:`groupable`) in one transaction: the run is locked once, every item is finished
    fenced on its own lease epoch (one fenced off is not recorded, the others are), and
    their items are counted once per node, after all of them settled, which is what the
    last of the same completions made one after the other would see. The run gets one
    frame with every item's change.

    The worker's free slots (``handoff``) are filled with the next ready items of the same
    ``foreach`` nodes, leased in the same transaction (as a ``max_parallel`` node's items,
    made ready by their predecessors' completions, already were): no claim transaction
    per group.

    One entry of a node with ``max_parallel`` is exactly :func:`complete`."""
    cached = plans.get(entries[0][0].run_id)
    if len(entries) == 1 and (cached is None or _limited(cached, entries[0][0].node_id)):
        claimed, outcome = entries[0]
        one = complete(tx, claimed, outcome, owner=owner, handoff=handoff, lease_ms=lease_ms)
        return GroupCompletion([one.accepted], one.handoff, one.run_status)
    run_id = entries[0][0].run_id
    if any(c.run_id != run_id or c.iteration < 0 or o.kind != "success" for c, o in entries):
        raise ValueError("complete_items: successes of foreach items of one run only")
    run, done = tx.lock_run_and_finish_items(
        run_id,
        [(c.id, c.lease_epoch, o.output, o.started_at_ms or c.started_at_ms) for c, o in entries],
        owner,
    )
    accepted = [c.id in done for c, _o in entries]
    if run is None or run.status in TERMINAL_RUN or not done:
        return GroupCompletion([False] * len(entries))
    plan = cached if cached is not None else plan_of(tx, run)
    effects = Effects()
    effects.hand_off(owner, handoff, lease_ms)
    nodes: list[str] = []
    ns = run.namespace
    for (claimed, outcome), ok in zip(entries, accepted, strict=True):
        if not ok:
            continue
        if not groupable(plan, claimed, outcome):
            raise ValueError(f"complete_items: not a foreach item's success: {claimed.id}")
        # What _Step.success records, item by item, in the same order (the attempt was
        # recorded with the node run's finish).
        persist_logs(tx, run, claimed, outcome.logs)
        tx.event(
            run_id,
            ns,
            "NodeFinished",
            claimed.node_id,
            iteration=claimed.iteration,
            attempt=claimed.attempt,
            output=outcome.output,
        )
        tx.change(run_id, claimed.node_id, claimed.iteration, "finished", claimed.attempt)
        if claimed.node_id not in nodes:
            nodes.append(claimed.node_id)
    free = handoff
    for node_id in nodes:
        if run.status in TERMINAL_RUN:
            break
        if free > 0 and not _limited(plan, node_id):
            # The next ready items, leased to this worker (its free slots): some were
            # ready, so the node is not settled and the run is running, which is all
            # item_settled would find (its has_ready_item read is spared).
            leased = tx.claim_ready_items(run_id, node_id, owner, free, lease_ms)
            if leased:
                effects.leased.extend(leased)
                effects.ready.extend(row.id for row in leased)
                free -= len(leased)
                update_run_status(tx, run, made_ready=True)
                continue
        # Items are counted in SQL: once after the group is the count the last of the
        # group's completions would have made, had they run one after the other.
        before = len(effects.ready)
        node_settled(tx, run, plan, node_id, 0, effects, "finished")  # (0: an item)
        free -= len(effects.ready) - before
    finished = _finish(tx, run, effects, owner, handoff, lease_ms)
    return GroupCompletion(accepted, finished.handoff, finished.run_status)


def _limited(plan: Plan, node_id: str) -> bool:
    """Whether ``node_id`` is a foreach node with ``max_parallel``."""
    return plan.node(node_id).max_parallel is not None


def _ahead(
    plan: Plan | None, claimed: NodeRunRecord, owner: str, handoff: int, lease_ms: int
) -> Ahead | None:
    """What the success of ``claimed`` leads to next, when its cached plan tells: the
    successors leased to ``owner``, or the counts deciding the run's status."""
    if plan is None:
        return None
    node_id, iteration = claimed.node_id, claimed.iteration
    if node_id in plan.foreach and iteration >= 0:  # an item: item_settled counts
        if plan.node(node_id).max_parallel is None:
            return None  # item_settled counts only once no item is ready (see there)
        return Ahead(item_counts_of=node_id, status_counts=True)
    if not plan.graph.downstream(node_id):  # a leaf: update_run_status counts
        return Ahead(status_counts=True)
    claims = handoff_claims(plan, node_id, iteration, handoff)
    return Ahead(claims, owner, lease_ms) if claims else None


# Outcome kinds, each applied by the _Step method of that name.
_HANDLERS = frozenset({"failure", "skip", "expand", "directive", "success"})


class _Step:
    """Applies one outcome to one claimed node run (each method returns whether it applied)."""

    def __init__(
        self,
        tx: Tx,
        run: RunRecord,
        plan: Plan,
        claimed: NodeRunRecord,
        outcome: Outcome,
        owner: str,
    ) -> None:
        self.tx, self.run, self.plan, self.row = tx, run, plan, claimed
        self.outcome, self.owner = outcome, owner
        self.effects = Effects()
        self.node_id: str = claimed.node_id
        self.iteration: int = claimed.iteration
        self.attempt: int = claimed.attempt
        self.ns: str = run.namespace
        self.started = outcome.started_at_ms or claimed.started_at_ms
        # Whether complete() already applied the success update.
        self.node_updated = False

    def _update(self, **values: Any) -> bool:
        return self.tx.update_node_run(
            self.row.id,
            expect_status="in-progress",
            expect_epoch=self.row.lease_epoch,
            lease_owner=None,
            lease_expires_ms=None,
            **values,
        )

    def _event(self, type_: str, **payload: Any) -> None:
        self.tx.event(
            self.run.id, self.ns, type_, self.node_id, iteration=self.iteration, **payload
        )

    def _settled(self, status: str) -> None:
        self.tx.change(self.run.id, self.node_id, self.iteration, status, self.attempt)
        node_settled(
            self.tx, self.run, self.plan, self.node_id, self.iteration, self.effects, status
        )

    def failure(self) -> bool:
        tx, now = self.tx, self.tx.now_ms
        policy = self.plan.node(self.node_id).retry_policy
        will_retry = self.outcome.retryable and self.attempt < policy.max_attempts
        error = self.outcome.error or {"code": "connector_error", "message": "failed"}
        if will_retry:
            delay_ms = int(policy.delay_seconds(self.attempt) * 1000)
            if not self._update(status="ready", available_at_ms=now + delay_ms, error=error):
                return False
            record_attempt(tx, self.row, "failed", self.owner, self.started, error)
            persist_logs(tx, self.run, self.row, self.outcome.logs)
            tx.change(self.run.id, self.node_id, self.iteration, "ready", self.attempt)
            self._event("NodeFailed", attempt=self.attempt, error=error, willRetry=True)
            self._event("NodeRetrying", attempt=self.attempt + 1, delayMs=delay_ms)
            tx.notify("ready")
            return True
        if not self._update(status="failed", error=error, finished_at_ms=now):
            return False
        record_attempt(tx, self.row, "failed", self.owner, self.started, error)
        persist_logs(tx, self.run, self.row, self.outcome.logs)
        self._event("NodeFailed", attempt=self.attempt, error=error, willRetry=False)
        self._settled("failed")
        return True

    def skip(self) -> bool:
        attempt = max(0, self.attempt - 1)
        if not self._update(status="skipped", finished_at_ms=self.tx.now_ms, attempt=attempt):
            return False
        self._event("NodeSkipped", reason="when")
        self._settled("skipped")
        return True

    def success(self) -> bool:
        output = self.outcome.output
        if not self.node_updated and not self._update(
            status="finished",
            output=output,
            error=None,
            finished_at_ms=self.tx.now_ms,
            **success_values(self.owner, self.started),
        ):
            return False
        persist_logs(self.tx, self.run, self.row, self.outcome.logs)
        self._event("NodeFinished", attempt=self.attempt, output=output)
        self._settled("finished")
        return True

    def expand(self) -> bool:
        tx, run, node_id = self.tx, self.run, self.node_id
        items = self.outcome.items or []
        if not items:
            self.outcome = Outcome(kind="success", output=[], started_at_ms=self.started)
            return self.success()
        # The node-level row stays in progress, unleased, until its items settle.
        if not self._update():
            return False
        limit = self.plan.node(node_id).max_parallel or len(items)
        # After a rewind, earlier items' attempts stay on record: continue their numbering.
        previous = tx.max_attempts(run.id, node_id)
        rows = [
            {
                "run_id": run.id,
                "node_id": node_id,
                "iteration": index,
                "status": "ready" if index < limit else "pending",
                "attempt": previous.get(index, 0),
                "available_at_ms": tx.now_ms,
                "lease_epoch": 0,
                "item": item,
            }
            for index, item in enumerate(items)
        ]
        tx.insert_node_runs(rows)
        for row in rows:
            tx.change(run.id, node_id, row["iteration"], row["status"])
        for state in tx.node_states(run.id, [node_id]):
            if state.status == "ready" and state.iteration >= 0:
                self.effects.ready.append(state.id)
                tx.event(run.id, self.ns, "NodeReady", node_id, iteration=state.iteration)
        return True

    def directive(self) -> bool:
        assert self.outcome.directive is not None
        return _apply_directive(
            self.tx, self.run, self.plan, self.row, self.outcome, self.owner, self.effects
        )


def _finish(
    tx: Tx, run: RunRecord, effects: Effects, owner: str, handoff: int, lease_ms: int
) -> Completion:
    maybe_crash("complete")
    claimed: list[NodeRunRecord] = []
    if effects.leased or (handoff > 0 and effects.ready and run.status not in TERMINAL_RUN):
        leased = {r.id for r in effects.leased}
        rest = [i for i in effects.ready[:handoff] if i not in leased]
        claimed = claim_ids(tx, owner, rest, lease_ms, run.namespace, effects.leased)
    if len(effects.ready) > len(claimed):
        tx.notify("ready")
    return Completion(
        accepted=True, handoff=claimed, ready=len(effects.ready), run_status=run.status
    )


def _record_failure(tx: Tx, claimed: NodeRunRecord, status: str, owner: str, error: Any) -> None:
    """Record the attempt of a node run a directive ended, unless it succeeded (then it
    was recorded with the node run's finish)."""
    if status != "finished":
        record_attempt(tx, claimed, status, owner, claimed.started_at_ms, error)


def _apply_directive(
    tx: Tx,
    run: RunRecord,
    plan: Plan,
    claimed: NodeRunRecord,
    outcome: Outcome,
    owner: str,
    effects: Effects,
) -> bool:
    directive = outcome.directive
    node_id, iteration, attempt = claimed.node_id, claimed.iteration, claimed.attempt
    ns, now = run.namespace, tx.now_ms
    fence: dict[str, Any] = {"expect_status": "in-progress", "expect_epoch": claimed.lease_epoch}
    release: dict[str, Any] = {"lease_owner": None, "lease_expires_ms": None}
    if isinstance(directive, WaitForTimer):
        fires = int(directive.fires_at.timestamp() * 1000)
        wait = {"kind": "timer", "firesAtMs": fires, "output": directive.output}
        values: dict[str, Any] = {"status": "waiting-timer", "available_at_ms": fires, "wait": wait}
        if not tx.update_node_run(claimed.id, **fence, **values, **release):
            return False
        persist_logs(tx, run, claimed, outcome.logs)
        tx.change(run.id, node_id, iteration, "waiting-timer", attempt)
        tx.event(run.id, ns, "NodeWaitingTimer", node_id, iteration=iteration, firesAtMs=fires)
        tx.notify("ready")
        update_run_status(tx, run)
        return True
    if isinstance(directive, WaitForApproval):
        wait = {"kind": "approval", "title": directive.title}
        values = {"status": "waiting-approval", "wait": wait}
        if not tx.update_node_run(claimed.id, **fence, **values, **release):
            return False
        persist_logs(tx, run, claimed, outcome.logs)
        existing = tx.get_approval(run.id, node_id, iteration)
        approval = {
            "run_id": run.id,
            "namespace": ns,
            "node_id": node_id,
            "iteration": iteration,
            "title": directive.title[:500],
            "description": directive.description,
            "on_deny": directive.on_deny,
            "status": "pending",
            "requested_at_ms": now,
            "decided_at_ms": None,
            "decided_by": None,
            "note": None,
        }
        if existing is None:
            tx.insert_approval({"id": new_id(), **approval})
        else:
            tx.update_approval(existing.id, **approval)
        tx.change(run.id, node_id, iteration, "waiting-approval", attempt)
        tx.event(
            run.id,
            ns,
            "NodeWaitingApproval",
            node_id,
            iteration=iteration,
            title=directive.title,
        )
        tx.event(
            run.id,
            ns,
            "ApprovalRequested",
            node_id,
            iteration=iteration,
            title=directive.title,
            description=directive.description,
        )
        update_run_status(tx, run)
        return True
    if isinstance(directive, WaitForSignal):
        wait = {"kind": "signal", "name": directive.name, "correlationId": directive.correlation_id}
        values = {"status": "waiting-event", "wait": wait}
        if not tx.update_node_run(claimed.id, **fence, **values, **release):
            return False
        persist_logs(tx, run, claimed, outcome.logs)
        tx.change(run.id, node_id, iteration, "waiting-event", attempt)
        tx.event(
            run.id,
            ns,
            "NodeWaitingEvent",
            node_id,
            iteration=iteration,
            signal=directive.name,
            correlationId=directive.correlation_id,
        )
        pending = tx.take_signal(run.id, directive.name, directive.correlation_id)
        if pending is not None:
            row = tx.node_row(run.id, node_id, iteration)
            assert row is not None
            deliver_signal(tx, run, plan, row, pending, effects)
        else:
            update_run_status(tx, run)
        return True
    if isinstance(directive, StartChildRun):
        assert outcome.child is not None  # prepared by the worker, in the run's namespace
        # The attempt is part of the key: a resumed node starts a fresh child run.
        child_key = f"child:{run.id}:{node_id}:{iteration}:{attempt}"
        child, _created = start(
            tx,
            outcome.child,
            idempotency_key=child_key,
            trigger="parent",
            triggered_by=run.triggered_by,
            parent=(run.id, node_id, iteration),
            # A child run continues its parent's trace.
            trace_context=run.trace_context,
        )
        wait = {"kind": "child", "runId": child.id}
        values = {"status": "waiting-event", "wait": wait}
        if not tx.update_node_run(claimed.id, **fence, **values, **release):
            return False
        persist_logs(tx, run, claimed, outcome.logs)
        tx.change(run.id, node_id, iteration, "waiting-event", attempt)
        tx.event(run.id, ns, "NodeWaitingEvent", node_id, iteration=iteration, childRunId=child.id)
        update_run_status(tx, run)
        return True
    if isinstance(directive, StopRun):
        status = "finished" if directive.status == "finished" else "failed"
        error = (
            None
            if status == "finished"
            else {
                "code": "stopped",
                "message": directive.message or "stopped by node",
                "nodeId": node_id,
            }
        )
        values = {
            "status": status,
            "output": directive.output,
            "error": error,
            "finished_at_ms": now,
        }
        ended = success_values(owner, claimed.started_at_ms) if status == "finished" else {}
        if not tx.update_node_run(claimed.id, **fence, **values, **ended, **release):
            return False
        _record_failure(tx, claimed, status, owner, error)
        persist_logs(tx, run, claimed, outcome.logs)
        tx.change(run.id, node_id, iteration, status, attempt)
        if status == "finished":
            tx.event(
                run.id,
                ns,
                "NodeFinished",
                node_id,
                iteration=iteration,
                attempt=attempt,
                output=directive.output,
            )
        else:
            tx.event(
                run.id,
                ns,
                "NodeFailed",
                node_id,
                iteration=iteration,
                attempt=attempt,
                error=error,
                willRetry=False,
            )
        stop_run(tx, run, plan, status, error)
        return True
    raise TypeError(f"unknown directive {directive!r}")  # pragma: no cover
