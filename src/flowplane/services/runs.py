"""RunService: the application rules for starting, inspecting and steering runs."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from typing import Any

from flowplane.connectors.registry import Registry, default_registry
from flowplane.engine import transitions
from flowplane.engine.plan import Plan, ValidatedCache, plans, validated
from flowplane.errors import RunNotFound
from flowplane.model.document import Workflow
from flowplane.model.graph import check_workflow
from flowplane.model.inputs import validate_input
from flowplane.services.context import current_actor
from flowplane.services.run_cache import RUN_CHANGED, SettledRunCache
from flowplane.store import audit, reads
from flowplane.store.base import Store
from flowplane.store.tx import TERMINAL_RUN, Row, Tx


@dataclass
class StartResult:
    """A dispatched (or idempotently found) run."""

    run: Row
    created: bool


class RunService:
    """Start, read, cancel, approve and signal runs."""

    def __init__(
        self,
        store: Store,
        registry: Registry | None = None,
        *,
        settled: SettledRunCache | None = None,
    ) -> None:
        self.store = store
        self.registry = registry or default_registry()
        self.settled = settled if settled is not None else SettledRunCache(ttl_seconds=0)
        """Rendered details of settled runs (see :mod:`flowplane.services.run_cache`)."""

    async def start(
        self,
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
        """Validate the workflow and its input, then dispatch a run in one transaction."""
        wf, document, plan = self._validated(workflow, namespace)
        value = validate_input(wf.inputs, run_input)
        request = transitions.DispatchRequest(
            workflow=wf,
            document=document,
            input=value,
            namespace=wf.namespace,
            run_id=run_id,
            workflow_id=workflow_id,
            workflow_version=workflow_version,
            idempotency_key=idempotency_key,
            request_hash=request_hash,
            trigger=trigger,
            triggered_by=triggered_by,
            source_path=source_path,
            forked_from=forked_from,
            plan=plan,
        )
        who = current_actor()

        def dispatch(tx: Tx) -> tuple[Row, bool]:
            run, created = transitions.dispatch(tx, request)
            if created:
                details = {"workflow": wf.name, "trigger": trigger}
                _audit_run(tx, who, "run.start", run["id"], run["namespace"], details)
            return run, created

        run, created = await self.store.transact(dispatch)
        return StartResult(run=run, created=created)

    def _validated(
        self, workflow: Workflow | dict[str, Any], namespace: str | None
    ) -> tuple[Workflow, dict[str, Any], Plan | None]:
        """The checked workflow, its document and (for a cached document) its plan.

        A document (a mapping) that passed validation before, against the same connectors,
        is not validated again (see :class:`~flowplane.engine.plan.ValidatedCache`).
        """
        key = None if isinstance(workflow, Workflow) else ValidatedCache.key(workflow, namespace)
        if key is not None:
            hit = validated.get(key, self.registry)
            if hit is not None:
                return hit.workflow, hit.document(), hit.plan
        wf = workflow if isinstance(workflow, Workflow) else Workflow.model_validate(workflow)
        if namespace is not None and namespace != wf.namespace:
            wf = wf.model_copy(update={"namespace": namespace})
        check_workflow(wf, self.registry)
        document = wf.to_document()
        if key is None:
            return wf, document, None
        entry = validated.put(key, wf, document, self.registry)
        return wf, document, entry.plan

    async def get(self, run_id: str, namespaces: Sequence[str] | None = None) -> Row:
        """Return the run (without its document); 404 if absent or in another namespace."""
        run = await self.store.read(lambda tx: tx.get_run(run_id, with_document=False))
        if run is None or (namespaces is not None and run["namespace"] not in namespaces):
            raise RunNotFound(f"run {run_id!r} not found")
        return run

    async def snapshot(
        self, run_id: str, namespaces: Sequence[str] | None = None
    ) -> tuple[Row, list[Row], list[Row]]:
        """Return the run, its node runs and its attempts, read in one transaction."""

        def read(tx: Tx) -> tuple[Row | None, list[Row], list[Row]]:
            run = tx.get_run(run_id, with_document=False)
            if run is None:
                return None, [], []
            return run, tx.node_rows(run_id), reads.attempts_of(tx, run_id)

        run, nodes, attempts = await self.store.read(read)
        if run is None or (namespaces is not None and run["namespace"] not in namespaces):
            raise RunNotFound(f"run {run_id!r} not found")
        return run, nodes, attempts

    async def document(self, run_id: str) -> dict[str, Any]:
        """Return the run's pinned workflow document."""
        run = await self.store.read(lambda tx: tx.get_run(run_id))
        if run is None:
            raise RunNotFound(f"run {run_id!r} not found")
        return dict(run["document"])

    async def nodes(self, run_id: str) -> list[Row]:
        """Return every node run of the run."""
        return await self.store.read(lambda tx: tx.node_rows(run_id))

    async def attempts(self, run_id: str) -> list[Row]:
        """Return every attempt of the run."""
        return await self.store.read(lambda tx: reads.attempts_of(tx, run_id))

    async def list_runs(self, **filters: Any) -> list[Row]:
        """Return runs matching ``filters`` (see :func:`reads.run_summary_rows`)."""
        return await self.store.read(lambda tx: reads.run_summary_rows(tx, **filters))

    async def cancel(self, run_id: str) -> Row:
        """Cancel an active run (409 ``RUN_NOT_ACTIVE`` when terminal)."""
        who = current_actor()

        def cancel(tx: Tx) -> None:
            transitions.cancel(tx, run_id)
            _audit_run(tx, who, "run.cancel", run_id)

        await self._change(run_id, cancel)
        return await self.get(run_id)

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

    def watch_changes(self) -> Callable[[], None]:
        """Drop cached details of runs other processes change (PostgreSQL ``NOTIFY``; on
        SQLite only this process notifies, and other processes' changes wait for the TTL).
        Returns a function that stops watching."""

        def changed(_kind: str, run_id: str) -> None:
            self.settled.drop(run_id)

        return self.store.add_listener(changed, kinds=[RUN_CHANGED])

    async def resume(self, run_id: str) -> Row:
        """Continue a failed, cancelled or timed-out run, reusing finished nodes' outputs."""
        who = current_actor()

        def resume(tx: Tx) -> None:
            transitions.resume(tx, run_id)
            _audit_run(tx, who, "run.resume", run_id)

        await self._change(run_id, resume)
        return await self.get(run_id)

    async def retry(
        self,
        run_id: str,
        *,
        use_latest_version: bool = False,
        triggered_by: str | None = None,
    ) -> StartResult:
        """Start a new run with the same input (and the latest workflow version if asked)."""
        run = await self.store.read(lambda tx: tx.get_run(run_id))
        if run is None:
            raise RunNotFound(f"run {run_id!r} not found")
        document = run["document"]
        version = run["workflow_version"]
        workflow_id = run["workflow_id"]
        if use_latest_version and workflow_id is not None:
            latest = await self.store.read(lambda tx: tx.get_workflow(workflow_id))
            if latest is not None and latest.get("deleted_at_ms") is None:
                document, version = latest["document"], latest["version"]
        return await self.start(
            document,
            run["input"],
            namespace=run["namespace"],
            workflow_id=workflow_id,
            workflow_version=version,
            trigger="retry",
            triggered_by=triggered_by,
            source_path=run["source_path"],
        )

    async def rewind(self, run_id: str, frame_no: int) -> Row:
        """Reset the run to frame ``frame_no`` and re-execute what follows."""
        who = current_actor()

        def rewind(tx: Tx) -> None:
            transitions.rewind(tx, run_id, frame_no)
            _audit_run(tx, who, "run.rewind", run_id, details={"frameNo": frame_no})

        await self._change(run_id, rewind)
        return await self.get(run_id)

    async def fork(
        self,
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
        """
        original = await self.store.read(lambda tx: tx.get_run(run_id))
        if original is None:
            raise RunNotFound(f"run {run_id!r} not found")
        source_plan = plans.get(run_id, original["document"])
        assert source_plan is not None
        document, version = original["document"], original["workflow_version"]
        workflow_id = original["workflow_id"]
        if use_latest_version and workflow_id is not None:
            latest = await self.store.read(lambda tx: tx.get_workflow(workflow_id))
            if latest is not None and latest.get("deleted_at_ms") is None:
                document, version = latest["document"], latest["version"]
        reuse = await self.store.read(
            lambda tx: transitions.fork_outputs(
                tx, run_id, source_plan, frame_no=frame_no, from_node=from_node
            )
        )
        wf = Workflow.model_validate(document)
        if wf.namespace != original["namespace"]:
            wf = wf.model_copy(update={"namespace": original["namespace"]})
        check_workflow(wf, self.registry)
        new_nodes = {n.id: n for n in wf.nodes}
        reuse = {
            node_id: output
            for node_id, output in reuse.items()
            if node_id in new_nodes
            and new_nodes[node_id].model_dump() == source_plan.node(node_id).model_dump()
        }
        value = validate_input(wf.inputs, original["input"] if run_input is None else run_input)
        request = transitions.DispatchRequest(
            workflow=wf,
            document=wf.to_document(),
            input=value,
            namespace=wf.namespace,
            workflow_id=workflow_id,
            workflow_version=version,
            trigger="fork",
            triggered_by=triggered_by,
            source_path=original["source_path"],
            forked_from=run_id,
        )

        who = current_actor()

        def start(tx: Tx) -> Row:
            run, _created = transitions.dispatch(tx, request)
            transitions.prefill(tx, run, reuse, run_id)
            details = {"workflow": wf.name, "forkedFrom": run_id}
            _audit_run(tx, who, "run.fork", run["id"], run["namespace"], details)
            return run

        run = await self.store.transact(start)
        return StartResult(run=run, created=True)

    async def frames(
        self, run_id: str, after_frame_no: int = 0, limit: int = 100
    ) -> list[dict[str, Any]]:
        """Return snapshots of the run's node states after each transition."""

        def read(tx: Tx) -> list[dict[str, Any]]:
            base: dict[tuple[str, int], str] = {}
            attempts: dict[tuple[str, int], int] = {}

            def fold(frame: Row) -> None:
                for change in frame["changes"]:
                    key = (change["nodeId"], change["iteration"])
                    base[key] = change["status"]
                    attempts[key] = change.get("attempt", 0)

            # Fold statuses and attempts up to the first frame asked for, so that a page
            # shows the same snapshots as a listing from the start.
            for frame in reads.all_frames_until(tx, run_id, after_frame_no):
                fold(frame)
            frames = reads.frames_after(tx, run_id, after_frame_no=after_frame_no, limit=limit)
            out: list[dict[str, Any]] = []
            for frame in frames:
                fold(frame)
                out.append(
                    {
                        "runId": run_id,
                        "frameNo": frame["frame_no"],
                        "seq": frame["seq"],
                        "timestampMs": frame["ts_ms"],
                        "changes": frame["changes"],
                        "nodes": [
                            {
                                "nodeId": node_id,
                                "iteration": iteration,
                                "status": status,
                                "attempt": attempts.get((node_id, iteration), 0),
                            }
                            for (node_id, iteration), status in base.items()
                        ],
                    }
                )
            return out

        await self.get(run_id)
        return await self.store.read(read)

    async def diff(self, run_id: str, other_id: str) -> dict[str, Any]:
        """Compare two runs (typically an original and its fork) node by node."""
        first, second = await self.get(run_id), await self.get(other_id)
        left = {(n["node_id"], n["iteration"]): n for n in await self.nodes(run_id)}
        right = {(n["node_id"], n["iteration"]): n for n in await self.nodes(other_id)}
        nodes = []
        for key in sorted(set(left) | set(right), key=lambda k: (k[0], k[1])):
            a, b = left.get(key), right.get(key)
            entry = {
                "nodeId": key[0],
                "iteration": key[1],
                "original": None if a is None else {"status": a["status"], "output": a["output"]},
                "other": None if b is None else {"status": b["status"], "output": b["output"]},
            }
            entry["changed"] = entry["original"] != entry["other"]
            nodes.append(entry)
        return {
            "runId": run_id,
            "otherRunId": other_id,
            "inputChanged": first["input"] != second["input"],
            "versionChanged": first["workflow_version"] != second["workflow_version"],
            "statusChanged": first["status"] != second["status"],
            "nodes": nodes,
        }

    async def decide(
        self,
        run_id: str,
        node_id: str,
        *,
        approved: bool,
        iteration: int = 0,
        note: str | None = None,
        by: str | None = None,
    ) -> Row:
        """Approve or deny a waiting approval."""
        who = current_actor()

        def decide(tx: Tx) -> Row:
            result = transitions.decide(
                tx, run_id, node_id, iteration, approved=approved, note=note, by=by
            )
            action = "run.approve" if approved else "run.deny"
            details = {"nodeId": node_id, "iteration": iteration}
            _audit_run(tx, who, action, run_id, details=details)
            return result

        return await self.store.transact(decide)

    async def signal(
        self, run_id: str, name: str, payload: Any = None, correlation_id: str | None = None
    ) -> dict[str, Any]:
        """Send a signal to a run."""
        who = current_actor()

        def signal(tx: Tx) -> dict[str, Any]:
            result = transitions.send_signal(tx, run_id, name, payload, correlation_id)
            _audit_run(tx, who, "run.signal", run_id, details={"name": name})
            return result

        return await self.store.transact(signal)

    async def events(
        self, run_id: str, after_seq: int = 0, limit: int = 500
    ) -> list[dict[str, Any]]:
        """Return the run's events after ``after_seq``."""
        return await self.store.read(
            lambda tx: reads.events_after(tx, run_id=run_id, after_seq=after_seq, limit=limit)
        )

    async def logs(self, run_id: str, after_id: int = 0, limit: int = 200) -> list[Row]:
        """Return the run's log lines after ``after_id``."""
        return await self.store.read(
            lambda tx: reads.logs_after(tx, run_id, after_id=after_id, limit=limit)
        )

    async def follow(
        self, run_id: str, after_seq: int = 0, poll_seconds: float = 0.5
    ) -> AsyncIterator[dict[str, Any]]:
        """Yield the run's events in ``seq`` order, live, until a terminal run event.

        The table is the source of truth; notifications only cut the wait between reads,
        so replayed and live events can never interleave out of order.
        """
        wake = asyncio.Event()

        def on_notify(kind: str, _payload: str) -> None:
            if kind == "event":
                wake.set()

        remove = self.store.add_listener(on_notify, kinds=("event",))
        try:
            while True:
                wake.clear()
                batch = await self.events(run_id, after_seq)
                for index, event in enumerate(batch):
                    after_seq = event["seq"]
                    yield event
                    if event["type"] in TERMINAL_EVENTS and index == len(batch) - 1:
                        # A resumed run goes on after an old terminal event.
                        if (await self.get(run_id))["status"] in TERMINAL_RUN:
                            return
                if not batch:
                    run = await self.get(run_id)
                    if run["status"] in TERMINAL_RUN:
                        if await self.events(run_id, after_seq, limit=1):
                            # It ended between the read above and this one: read the rest.
                            continue
                        # Terminal and nothing more to read: the stream is complete.
                        return
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(wake.wait(), poll_seconds)
        finally:
            remove()

    async def wait(self, run_id: str, timeout: float | None = None) -> Row:
        """Wait until the run is terminal; return it."""

        async def _wait() -> Row:
            async for _event in self.follow(run_id):
                pass
            return await self.get(run_id)

        return await asyncio.wait_for(_wait(), timeout)


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
        run = tx.get_run(run_id, with_document=False)
        namespace = run["namespace"] if run is not None else None
    audit.record(
        tx,
        actor=who,
        action=action,
        namespace=namespace,
        target_type="run",
        target_id=run_id,
        details=details,
    )


TERMINAL_EVENTS = frozenset({"RunFinished", "RunFailed", "RunCancelled", "RunTimedOut"})
