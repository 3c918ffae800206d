"""RunService: the application rules for starting, inspecting and steering runs.

Every method takes the :class:`~flowplane.services.caller.Caller` it acts for and owns what
follows from it: the role check (``viewer`` to read, ``executor`` to start or steer), the
namespace rule (a run in a namespace the caller cannot see is *not found*), paging, and the
audit entry of each change. Surfaces (REST, RPC, WebSocket, serve mode, the CLI) translate
their wire format to one of these calls and back.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from flowplane.engine import starting, transitions
from flowplane.engine.plan import Validated, plans
from flowplane.engine.tracing import Tracing
from flowplane.errors import (
    Forbidden,
    InvalidInput,
    RunIdRequired,
    RunNotFound,
    RunNotSettled,
    WorkflowNotFound,
)
from flowplane.model.document import Workflow
from flowplane.services.caller import Caller
from flowplane.services.context import current_actor
from flowplane.services.feed import TERMINAL_EVENTS
from flowplane.services.group_commit import GroupCommit, Refused
from flowplane.services.launch import LaunchRequest, load_workflow_file
from flowplane.services.run_cache import RUN_CHANGED
from flowplane.services.run_reads import LogEntry, RunReader, RunSnapshot, duration_ms
from flowplane.status import TERMINAL_RUN
from flowplane.store import audit, reads, retention
from flowplane.store import workflow_queries as wq
from flowplane.store.records import (
    ApprovalRecord,
    AttemptRecord,
    FrameRecord,
    LogRecord,
    NodeRunRecord,
    RunRecord,
    WorkflowHead,
    WorkflowRecord,
)
from flowplane.store.tx import Tx

__all__ = [
    "TERMINAL_EVENTS",
    "ApprovalRecord",
    "AttemptRecord",
    "FrameRecord",
    "LogEntry",
    "LogRecord",
    "NodeRunRecord",
    "RunRecord",
    "RunService",
    "RunSnapshot",
    "StartResult",
    "StoredRef",
    "duration_ms",
]


@dataclass
class StartResult:
    """A dispatched (or idempotently found) run."""

    run: RunRecord
    created: bool


class RunService(RunReader):
    """Start, read, cancel, approve and signal runs."""

    tracing: Tracing | None = None
    """Spans of started runs (``FLOWPLANE_OPENTELEMETRY``; set by ``build_services``)."""

    @functools.cached_property
    def starts(self) -> GroupCommit:
        """The group commit of this service's starts of stored workflows."""
        return GroupCommit(self.store)

    @functools.cached_property
    def _heads(self) -> dict[tuple[Any, ...], WorkflowHead]:
        """The workflow heads this service's starts last read or assumed in a committed
        transaction (see :meth:`StoredRef.head`)."""
        return {}

    # --- starting ------------------------------------------------------------------------

    async def launch(self, caller: Caller, request: LaunchRequest, *, root: Path) -> StartResult:
        """Start a run of the workflow ``request`` names, or resume the run it names.

        A stored workflow is found by id or by name (in ``request.namespace``); a workflow
        file is read from under ``root``. With ``resume`` the run ``run_id`` continues as
        :meth:`resume` says (``created`` is false).

        Raises:
            Forbidden: the caller is not an executor.
            InvalidInput: not exactly one workflow source.
            RunIdRequired: ``resume`` without ``run_id``.
            RunAlreadyExists: a new run asked for a ``run_id`` that is taken.
            WorkflowNotFound, RunNotFound: absent or in a namespace the caller cannot see.
        """
        caller.require("executor")
        if request.resume:
            if not request.run_id:
                raise RunIdRequired("runId is required when resume is true")
            return StartResult(run=await self.resume(caller, request.run_id), created=False)
        sources = [s for s in (request.workflow_id, request.workflow, request.workflow_path) if s]
        if len(sources) != 1:
            raise InvalidInput("give exactly one of workflowId, workflow or workflowPath")
        if not request.workflow_path:
            ref = StoredRef(request.workflow_id, request.namespace or "default", request.workflow)
            return await self.start_stored(
                caller,
                ref,
                request.input,
                idempotency_key=request.idempotency_key,
                request_hash=request.request_hash,
                run_id=request.run_id,
            )
        workflow, source_path = load_workflow_file(root, request.workflow_path)
        return await self.start(
            caller,
            workflow,
            request.input,
            idempotency_key=request.idempotency_key,
            request_hash=request.request_hash,
            trigger="api",
            triggered_by=caller.name,
            run_id=request.run_id,
            source_path=source_path,
        )

    async def start_stored(
        self,
        caller: Caller,
        ref: StoredRef,
        run_input: Any = None,
        *,
        idempotency_key: str | None = None,
        request_hash: str | None = None,
        run_id: str | None = None,
        trigger: str = "api",
        audit_as: Caller | None = None,
    ) -> StartResult:
        """Start a run of a stored workflow's current version, in one transaction.

        The transaction reads the workflow's head (id, namespace, version: no document),
        checks that ``caller`` sees it, and takes the validated document and plan of that
        version from this process's cache (:func:`~flowplane.engine.starting.stored_key`);
        on a miss (a version this process has not validated yet) it rolls back, the
        document is read and validated outside any transaction, and it runs again. The run
        pins the version current when its transaction ran, as before. ``audit_as`` is who
        the audit entry names (default ``caller``).

        Raises:
            Forbidden: the caller is not an executor.
            WorkflowNotFound: absent, deleted, or in a namespace the caller cannot see.
            WorkflowInvalid, InputInvalid, IdempotencyKeyReused, RunAlreadyExists.
        """
        caller.require("executor")
        if self.tracing is not None:
            stored = await self._stored_workflow(caller, ref.request())
            return await self.start(
                audit_as or caller,
                stored.document,
                run_input,
                namespace=stored.namespace,
                workflow_id=stored.id,
                workflow_version=stored.version,
                idempotency_key=idempotency_key,
                request_hash=request_hash,
                trigger=trigger,
                triggered_by=caller.name,
                run_id=run_id,
            )
        who = _actor(audit_as or caller)
        registry = self.registry
        fresh: Validated | None = None  # validated outside, for the head it was read at
        fresh_key: bytes | None = None

        def dispatch(tx: Tx) -> tuple[RunRecord, bool]:
            tx.coalesce_inserts()  # the batch's runs and audit rows written together
            head = ref.head(tx, self._heads)
            if head is None or not caller.can_see(head.namespace):
                raise WorkflowNotFound(f"workflow {ref.label!r} not found")
            key = starting.stored_key(head)
            entry = fresh if fresh_key == key else starting.cached_stored(head, registry)
            if entry is None:
                raise _Unvalidated(head)
            prepared = starting.prepare_validated(entry, run_input)
            run, created = starting.start(
                tx,
                prepared,
                run_id=run_id,
                workflow_id=head.id,
                workflow_version=head.version,
                idempotency_key=idempotency_key,
                request_hash=request_hash,
                trigger=trigger,
                triggered_by=caller.name,
            )
            if created:
                details = {"workflow": prepared.workflow.name, "trigger": trigger}
                _audit_run(tx, who, "run.start", run.id, run.namespace, details)
            return run, created

        while True:
            try:
                run, created = await self.starts.transact(dispatch)
                return StartResult(run=run, created=created)
            except _Unvalidated as cold:
                row = await self.store.read(functools.partial(_workflow_row, cold.head.id))
                if row is None or not caller.can_see(row.namespace):
                    raise WorkflowNotFound(f"workflow {ref.label!r} not found") from None
                head = WorkflowHead(
                    id=row.id,
                    namespace=row.namespace,
                    name=row.name,
                    version=row.version,
                    updated_at_ms=row.updated_at_ms,
                )
                fresh = starting.validate_stored(head, row.document, registry)
                fresh_key = starting.stored_key(head)

    async def _stored_workflow(self, caller: Caller, request: LaunchRequest) -> WorkflowRecord:
        """A visible stored workflow, by id or by name."""
        workflow_id, name = request.workflow_id, request.workflow
        if workflow_id is not None:
            ref = workflow_id
            row = await self.store.read(lambda tx: wq.get_workflow_row(tx, workflow_id))
        else:
            assert name is not None
            ref, namespace = name, request.namespace or "default"
            row = await self.store.read(lambda tx: wq.get_workflow_by_name(tx, namespace, name))
        if row is None or not caller.can_see(row.namespace):
            raise WorkflowNotFound(f"workflow {ref!r} not found")
        return row

    async def start(
        self,
        caller: Caller,
        workflow: Workflow | dict[str, Any],
        run_input: Any = None,
        *,
        namespace: str | None = None,
        workflow_id: str | None = None,
        workflow_version: int | None = None,
        idempotency_key: str | None = None,
        request_hash: str | None = None,
        trigger: str = "api",
        triggered_by: str | None = None,
        run_id: str | None = None,
        source_path: str | None = None,
        forked_from: str | None = None,
    ) -> StartResult:
        """Validate the workflow and its input, then dispatch a run in one transaction.

        Raises:
            Forbidden: the caller is not an executor.
            WorkflowNotFound: the workflow's namespace is not visible to the caller.
        """
        caller.require("executor")
        caller.check_namespace(namespace or _namespace_of(workflow), "workflow")
        prepared = starting.prepare(workflow, run_input, self.registry, namespace=namespace)
        who = _actor(caller)
        trace_context: str | None = None

        def dispatch(tx: Tx) -> tuple[RunRecord, bool]:
            run, created = starting.start(
                tx,
                prepared,
                run_id=run_id,
                workflow_id=workflow_id,
                workflow_version=workflow_version,
                idempotency_key=idempotency_key,
                request_hash=request_hash,
                trigger=trigger,
                triggered_by=triggered_by,
                source_path=source_path,
                forked_from=forked_from,
                trace_context=trace_context,
            )
            if created:
                details = {"workflow": prepared.workflow.name, "trigger": trigger}
                _audit_run(tx, who, "run.start", run.id, run.namespace, details)
            return run, created

        if self.tracing is None:
            run, created = await self.store.transact(dispatch)
            return StartResult(run=run, created=created)
        workflow_doc = prepared.workflow
        with self.tracing.run_span(workflow_doc.name, workflow_doc.namespace, trigger) as span:
            trace_context = span.traceparent
            run, created = await self.store.transact(dispatch)
            span.started(run.id, created)
        return StartResult(run=run, created=created)

    # --- steering ------------------------------------------------------------------------

    async def cancel(self, caller: Caller, run_id: str) -> RunRecord:
        """Cancel an active run (409 ``RUN_NOT_ACTIVE`` when terminal)."""
        caller.require("executor")
        await self.get(caller, run_id)
        who = _actor(caller)

        def cancel(tx: Tx) -> None:
            transitions.cancel(tx, run_id)
            _audit_run(tx, who, "run.cancel", run_id)

        await self._change(run_id, cancel)
        return await self.get(caller, run_id)

    async def delete(self, caller: Caller, run_id: str) -> None:
        """Delete a settled run with its node runs, attempts, events, frames, logs,
        approvals and signals (the audit log keeps a ``run.delete`` entry).

        Raises:
            Forbidden: the caller is not an editor.
            RunNotFound: no such run, or one the caller cannot see.
            RunNotSettled: the run is active, a node of it is still finishing, or a child
                or parent run of it is active.
        """
        caller.require("editor")
        run = await self.get(caller, run_id)
        who = _actor(caller)

        def delete(tx: Tx) -> None:
            reason = retention.blocker(tx, run_id)
            if reason is not None:
                raise RunNotSettled(reason)
            retention.delete_runs(tx, [run_id])
            details = {"workflow": run.workflow_name, "status": run.status}
            _audit_run(tx, who, "run.delete", run_id, run.namespace, details)

        await self._change(run_id, delete)

    async def _change(self, run_id: str, change: Callable[[Tx], None]) -> None:
        """Run ``change`` in a transaction, then drop the run's cached detail, here and (by a
        ``run-changed`` notification committed with it) in every process that watches."""

        def change_and_announce(tx: Tx) -> None:
            change(tx)
            tx.notify(RUN_CHANGED, run_id)

        try:
            await self.store.transact(change_and_announce)
        finally:
            # After the commit: a reader that started before it cannot store what it read.
            self.settled.drop(run_id)

    async def resume(self, caller: Caller, run_id: str) -> RunRecord:
        """Continue a failed, cancelled or timed-out run, reusing finished nodes' outputs.

        A run still active (running, or waiting for an approval, a signal or a timer) has
        nothing to resume: it is returned as it is, as Smithers' server answers a run whose
        heartbeat is fresh.

        Raises:
            Conflict: the run is finished.
            RunNotFound: no such run, or one the caller cannot see.
        """
        caller.require("executor")
        run = await self.get(caller, run_id)
        if run.status not in TERMINAL_RUN:
            return run
        who = _actor(caller)

        def resume(tx: Tx) -> None:
            locked = tx.lock_run(run_id)
            if locked is not None and locked.status not in TERMINAL_RUN:
                return  # resumed (or still going) since it was read: nothing to do
            transitions.resume(tx, run_id)
            _audit_run(tx, who, "run.resume", run_id)

        await self._change(run_id, resume)
        return await self.get(caller, run_id)

    async def retry(
        self,
        caller: Caller,
        run_id: str,
        *,
        use_latest_version: bool = False,
        triggered_by: str | None = None,
    ) -> StartResult:
        """Start a new run with the same input (and the latest workflow version if asked).

        Raises:
            Forbidden: the caller is not an executor.
            RunNotFound: no such run, or one the caller cannot see.
        """
        caller.require("executor")
        await self.get(caller, run_id)
        run = await self.store.read(lambda tx: reads.run(tx, run_id, with_document=True))
        if run is None or run.document is None:
            raise RunNotFound(f"run {run_id!r} not found")
        document = run.document
        version = run.workflow_version
        workflow_id = run.workflow_id
        if use_latest_version and workflow_id is not None:
            latest = await self.store.read(lambda tx: tx.get_workflow(workflow_id))
            if latest is not None and latest.deleted_at_ms is None:
                document, version = latest.document, latest.version
        return await self.start(
            caller,
            document,
            run.input,
            namespace=run.namespace,
            workflow_id=workflow_id,
            workflow_version=version,
            trigger="retry",
            triggered_by=triggered_by,
            source_path=run.source_path,
        )

    async def rewind(self, caller: Caller, run_id: str, frame_no: int) -> RunRecord:
        """Reset the run to frame ``frame_no`` and re-execute what follows.

        Raises:
            Forbidden: the caller is neither an admin nor the run's owner (who started it).
            RunNotFound: no such run, or one the caller cannot see.
        """
        caller.require("executor")
        run = await self.get(caller, run_id)
        _check_owner(caller, run)
        who = _actor(caller)

        def rewind(tx: Tx) -> None:
            transitions.rewind(tx, run_id, frame_no)
            _audit_run(tx, who, "run.rewind", run_id, details={"frameNo": frame_no})

        await self._change(run_id, rewind)
        return await self.get(caller, run_id)

    async def fork(
        self,
        caller: Caller,
        run_id: str,
        *,
        frame_no: int | None = None,
        from_node: str | None = None,
        run_input: Any = None,
        use_latest_version: bool = False,
        triggered_by: str | None = None,
    ) -> StartResult:
        """Start a new run that reuses the original's outputs before a point.

        The point is a frame (nodes finished at that frame are reused) or a node (everything
        except that node and its downstream is reused). With ``use_latest_version`` the new
        run uses the workflow's latest version; nodes whose definition changed run again.

        Raises:
            Forbidden: the caller is not an executor.
            RunNotFound: no such run, or one the caller cannot see.
            InvalidInput: not exactly one of ``frame_no`` and ``from_node``.
        """
        caller.require("executor")
        await self.get(caller, run_id)
        if (frame_no is None) == (from_node is None):
            raise InvalidInput("give exactly one of frameNo and fromNode")
        original = await self.store.read(lambda tx: reads.run(tx, run_id, with_document=True))
        if original is None or original.document is None:
            raise RunNotFound(f"run {run_id!r} not found")
        source_plan = plans.get(run_id, original.document)
        assert source_plan is not None
        document, version = original.document, original.workflow_version
        workflow_id = original.workflow_id
        if use_latest_version and workflow_id is not None:
            latest = await self.store.read(lambda tx: tx.get_workflow(workflow_id))
            if latest is not None and latest.deleted_at_ms is None:
                document, version = latest.document, latest.version
        reuse = await self.store.read(
            lambda tx: transitions.fork_outputs(
                tx, run_id, source_plan, frame_no=frame_no, from_node=from_node
            )
        )
        prepared = starting.prepare(
            document,
            original.input if run_input is None else run_input,
            self.registry,
            namespace=original.namespace,
        )
        new_nodes = {n.id: n for n in prepared.workflow.nodes}
        reuse = {
            node_id: output
            for node_id, output in reuse.items()
            if node_id in new_nodes
            and new_nodes[node_id].model_dump() == source_plan.node(node_id).model_dump()
        }
        who = _actor(caller)

        def start(tx: Tx) -> RunRecord:
            run, _created = starting.start(
                tx,
                prepared,
                workflow_id=workflow_id,
                workflow_version=version,
                trigger="fork",
                triggered_by=triggered_by,
                source_path=original.source_path,
                forked_from=run_id,
            )
            transitions.prefill(tx, run, reuse, run_id)
            details = {"workflow": prepared.workflow.name, "forkedFrom": run_id}
            _audit_run(tx, who, "run.fork", run.id, run.namespace, details)
            return run

        run = await self.store.transact(start)
        return StartResult(run=run, created=True)

    # --- approvals and signals -----------------------------------------------------------

    async def decide(
        self,
        caller: Caller,
        run_id: str,
        node_id: str,
        *,
        approved: bool,
        iteration: int = 0,
        note: str | None = None,
        by: str | None = None,
    ) -> ApprovalRecord:
        """Approve or deny a waiting approval; the record carries ``waiting_ms``."""
        caller.require("executor")
        await self.get(caller, run_id)
        who = _actor(caller)

        def decide(tx: Tx) -> ApprovalRecord:
            result = transitions.decide(
                tx, run_id, node_id, iteration, approved=approved, note=note, by=by
            )
            action = "run.approve" if approved else "run.deny"
            details = {"nodeId": node_id, "iteration": iteration}
            _audit_run(tx, who, action, run_id, details=details)
            return result

        return await self.store.transact(decide)

    async def decide_approval(
        self,
        caller: Caller,
        approval_id: str,
        *,
        approved: bool,
        note: str | None = None,
        by: str | None = None,
    ) -> ApprovalRecord:
        """Approve or deny the approval ``approval_id`` (what :meth:`decide` does, by id).

        Raises:
            NotFound: no such approval, or one the caller cannot see.
            ApprovalNotPending and the other errors of :meth:`decide`.
        """
        caller.require("executor")
        found = await self.approvals.get(caller, approval_id)
        return await self.decide(
            caller,
            found.run_id,
            found.node_id,
            approved=approved,
            iteration=found.iteration,
            note=note,
            by=by,
        )

    async def signal(
        self,
        caller: Caller,
        run_id: str,
        name: str,
        payload: Any = None,
        correlation_id: str | None = None,
    ) -> dict[str, Any]:
        """Send a signal to a run."""
        caller.require("executor")
        await self.get(caller, run_id)
        who = _actor(caller)

        def signal(tx: Tx) -> dict[str, Any]:
            result = transitions.send_signal(tx, run_id, name, payload, correlation_id)
            _audit_run(tx, who, "run.signal", run_id, details={"name": name})
            return result

        return await self.store.transact(signal)


@dataclass(frozen=True)
class StoredRef:
    """A stored workflow named by id, or by name in a namespace."""

    workflow_id: str | None
    namespace: str = "default"
    name: str | None = None

    @property
    def label(self) -> str:
        """How errors name it."""
        return self.workflow_id or self.name or ""

    def head(
        self, tx: Tx, known: dict[tuple[Any, ...], WorkflowHead] | None = None
    ) -> WorkflowHead | None:
        """Its live head in ``tx``, read once per transaction (``tx.memo``).

        The starts that share a grouped transaction read a workflow's head once: none of
        them writes a workflow row, and all of them were waiting when it was read, so the
        head each one runs was current during its request, as when each read its own (a
        change committed meanwhile is run by the starts of the next transaction).

        ``known``: the heads seen in committed transactions before. Where the store can
        check one without a round trip of its own (PostgreSQL:
        :func:`~flowplane.store.workflow_queries.assume_workflow_head`), the known head is
        assumed, checked at the same point of the transaction as the read would have been;
        if it is no longer current the transaction fails, forgets it and runs again,
        reading it.
        """
        key = ("head", self.workflow_id, self.namespace, self.name)
        memo = tx.memo
        if key in memo:
            head: WorkflowHead | None = memo[key]
            return head
        if known is not None:
            seen = known.get(key)
            if seen is not None and wq.assume_workflow_head(tx, seen):
                tx.after_rollback.append(functools.partial(_forget_head, known, key))
                memo[key] = seen
                return seen
        if self.workflow_id is not None:
            head = wq.get_workflow_head(tx, self.workflow_id)
        else:
            assert self.name is not None
            head = wq.get_workflow_head_by_name(tx, self.namespace, self.name)
        memo[key] = head
        if known is not None and head is not None:
            tx.after_commit.append(functools.partial(_remember_head, known, key, head))
        return head

    def request(self) -> LaunchRequest:
        """The launch request naming it (for :meth:`RunService._stored_workflow`)."""
        return LaunchRequest(
            workflow_id=self.workflow_id, workflow=self.name, namespace=self.namespace
        )


MAX_KNOWN_HEADS = 4096
"""The most workflow heads one service remembers (then it starts afresh)."""


def _remember_head(
    known: dict[tuple[Any, ...], WorkflowHead], key: tuple[Any, ...], head: WorkflowHead
) -> None:
    if len(known) >= MAX_KNOWN_HEADS and key not in known:
        known.clear()
    known[key] = head


def _forget_head(known: dict[tuple[Any, ...], WorkflowHead], key: tuple[Any, ...]) -> None:
    known.pop(key, None)


def _workflow_row(workflow_id: str, tx: Tx) -> WorkflowRecord | None:
    return wq.get_workflow_row(tx, workflow_id)


class _Unvalidated(Refused):
    """Rolls a stored start back: this process has not validated the head's version yet."""

    def __init__(self, head: WorkflowHead) -> None:
        super().__init__(head.id)
        self.head = head


def _check_owner(caller: Caller, run: RunRecord) -> None:
    """Allow an admin, or the caller that started ``run``; anyone else gets 403."""
    if caller.allows("admin"):
        return
    if run.triggered_by and run.triggered_by == caller.name:
        return
    raise Forbidden("only an admin or the run's owner may rewind it")


def _actor(caller: Caller) -> audit.Actor:
    """Who the audit log names for ``caller``'s change.

    A system caller stands for the process's own work, or for a service that acts inside a
    request on behalf of its caller (a schedule run by hand, a webhook): the actor of the
    surrounding context is named then, as before callers were passed explicitly.
    """
    if caller.kind == "system":
        return current_actor()
    return caller.actor


def _namespace_of(workflow: Workflow | dict[str, Any]) -> str:
    """The namespace a workflow (or its document) runs in."""
    if isinstance(workflow, Workflow):
        return workflow.namespace
    return str(workflow.get("namespace") or "default")


def _audit_run(
    tx: Tx,
    who: audit.Actor,
    action: str,
    run_id: str,
    namespace: str | None = None,
    details: dict[str, Any] | None = None,
) -> None:
    """Append the audit entry of a run mutation (inside its transaction)."""
    if namespace is None:
        run = reads.run(tx, run_id)
        namespace = run.namespace if run is not None else None
    audit.record(
        tx,
        actor=who,
        action=action,
        namespace=namespace,
        target_type="run",
        target_id=run_id,
        details=details,
    )
