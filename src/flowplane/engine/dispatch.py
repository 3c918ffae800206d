"""Dispatching a run: inserting it with its node runs, its roots ready or leased at once.

Runs inside the starting transaction (see :mod:`flowplane.engine.starting`); a worker in
this process may take the new run's roots in that same transaction
(:func:`register_local_worker`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from flowplane.engine.claims import record_started
from flowplane.engine.faults import maybe_crash
from flowplane.engine.plan import Plan, plans
from flowplane.errors import IdempotencyKeyReused, RunAlreadyExists
from flowplane.ids import new_id
from flowplane.model.document import Workflow
from flowplane.store.records import NodeRunRecord, RunRecord
from flowplane.store.tx import Tx


@dataclass
class DispatchRequest:
    """Everything needed to start a run."""

    workflow: Workflow
    document: dict[str, Any]
    input: dict[str, Any]
    namespace: str
    run_id: str | None = None
    workflow_id: str | None = None
    workflow_version: int | None = None
    idempotency_key: str | None = None
    request_hash: str | None = None
    trigger: str = "api"
    triggered_by: str | None = None
    parent: tuple[str, str, int] | None = None
    source_path: str | None = None
    forked_from: str | None = None
    # The plan of ``workflow`` when the caller has one (shared by the runs of a document).
    plan: Plan | None = None
    # The W3C traceparent of the run's span (tracing on).
    trace_context: str | None = None


def dispatch(tx: Tx, req: DispatchRequest) -> tuple[RunRecord, bool]:
    """Insert a run with its node runs and mark the roots ready.

    Returns ``(run, created)``; ``created`` is false when the idempotency key names a
    run that already exists (the same request again). An explicit run id that another run
    already has is refused (as Smithers' server does): retries that must be safe send an
    ``Idempotency-Key``.

    Raises:
        IdempotencyKeyReused: the key was used with another request.
        RunAlreadyExists: ``run_id`` is taken (and the key, if any, is new).
    """
    if req.idempotency_key:
        existing = tx.find_run_by_idempotency(req.namespace, req.idempotency_key)
        if existing is not None:
            if req.request_hash and existing.request_hash not in (None, req.request_hash):
                raise IdempotencyKeyReused(
                    "this Idempotency-Key was already used with a different request",
                    runId=existing.id,
                )
            return existing, False
    if req.run_id is not None:
        if tx.get_run(req.run_id) is not None:
            raise RunAlreadyExists(f"run id {req.run_id!r} already exists", runId=req.run_id)
    run_id = req.run_id or new_id()
    plan = req.plan if req.plan is not None else Plan.build(req.workflow)
    plans.put(run_id, plan)
    now = tx.now_ms
    timeout = req.workflow.timeout_seconds
    parent_run, parent_node, parent_iteration = req.parent or (None, None, None)
    run: dict[str, Any] = {
        "id": run_id,
        "namespace": req.namespace,
        "workflow_id": req.workflow_id,
        "workflow_name": req.workflow.name,
        "workflow_version": req.workflow_version,
        "document": req.document,
        "input": req.input,
        "status": "running",
        "parent_run_id": parent_run,
        "parent_node_id": parent_node,
        "parent_iteration": parent_iteration,
        "idempotency_key": req.idempotency_key or None,  # "" is no key (as checked above)
        "request_hash": req.request_hash,
        "trigger": req.trigger,
        "triggered_by": req.triggered_by,
        "source_path": req.source_path,
        "forked_from": req.forked_from,
        "frame_no": 0,
        "created_at_ms": now,
        "started_at_ms": now,
        "updated_at_ms": now,
        "deadline_ms": now + int(timeout * 1000) if timeout else None,
        "trace_context": req.trace_context,
    }
    tx.insert_run(run)
    roots = set(plan.graph.roots())
    rows: list[dict[str, Any]] = []
    for node in plan.workflow.nodes:
        status = "ready" if node.id in roots else "pending"
        rows.append(
            {
                "run_id": run_id,
                "node_id": node.id,
                "iteration": plan.level_iteration(node.id),
                "status": status,
                "attempt": 0,
                "available_at_ms": now,
                "lease_epoch": 0,
            }
        )
    # A fork's dispatch is followed by prefill(), which finishes reused roots in the same
    # transaction: its roots are claimed as usual, never leased here.
    local = _local_workers.get(tx.conn.engine) if req.forked_from is None else None
    taken = local.reserve(len(roots)) if local is not None else 0
    if local is None or not taken:
        tx.insert_node_runs(rows)
        leased: list[NodeRunRecord] = []
    else:
        leased = _insert_leased(tx, rows, local, taken)
    tx.event(
        run_id,
        req.namespace,
        "RunStarted",
        workflowName=req.workflow.name,
        workflowVersion=req.workflow_version,
        parentRunId=parent_run,
        trigger=req.trigger,
        triggeredBy=req.triggered_by,
    )
    for row in rows:
        tx.change(run_id, row["node_id"], row["iteration"], row["status"])
        if row["status"] == "ready":
            tx.event(run_id, req.namespace, "NodeReady", row["node_id"], iteration=row["iteration"])
    if local is not None and leased:
        record_started(tx, leased, req.namespace)
        maybe_crash("claim")
        adopted = RunRecord.from_row(run)
        tx.after_commit.append(lambda: local.adopt(leased, adopted))
    if len(leased) < len(roots):
        tx.notify("ready")
    maybe_crash("dispatch")
    return RunRecord.from_row(run), True


class LocalWorker(Protocol):
    """A worker in this process that takes the roots of the runs it dispatches at once
    (see :func:`register_local_worker`). Its methods may be called from any thread."""

    owner: str
    lease_ms: int

    def reserve(self, count: int) -> int:
        """Reserve up to ``count`` free slots; return how many."""

    def release(self, count: int) -> None:
        """Give back reserved slots (the transaction did not commit)."""

    def adopt(self, rows: list[NodeRunRecord], run: RunRecord) -> None:
        """Execute node runs leased to it in reserved slots (after the commit)."""


_local_workers: dict[Any, LocalWorker] = {}


def register_local_worker(engine: Any, worker: LocalWorker) -> Callable[[], None]:
    """Let :func:`dispatch` on ``engine`` (a store's) lease the roots of new runs straight
    to ``worker``, in the dispatching transaction: the run's first node then needs no
    claim transaction (nor, on PostgreSQL, a NOTIFY round trip to a listener). The final
    rows and events are those of a ready root claimed at once. Returns the unregister
    function."""
    _local_workers[engine] = worker

    def unregister() -> None:
        if _local_workers.get(engine) is worker:
            del _local_workers[engine]

    return unregister


def _insert_leased(
    tx: Tx, rows: list[dict[str, Any]], local: LocalWorker, taken: int
) -> list[NodeRunRecord]:
    """Insert ``rows`` in order, the first ``taken`` ready ones leased to ``local`` (as a
    claim would leave them: in progress, attempt 1, epoch 1); return the leased rows."""
    tx.after_rollback.append(lambda: local.release(taken))
    now = tx.now_ms
    leased: list[NodeRunRecord] = []
    rest: list[dict[str, Any]] = []
    for row in rows:
        if row["status"] == "ready" and len(leased) < taken:
            tx.insert_node_runs(rest)
            rest = []
            values = {
                **row,
                "status": "in-progress",
                "attempt": 1,
                "lease_epoch": 1,
                "lease_owner": local.owner,
                "lease_expires_ms": now + local.lease_ms,
                "started_at_ms": now,
            }
            leased.append(tx.insert_node_run_returning(values))
        else:
            rest.append(row)
    tx.insert_node_runs(rest)
    return leased
