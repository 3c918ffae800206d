"""The worker: claims due node runs, executes them, records their outcomes.

A worker holds nothing a crash could lose: every claim is a lease in the database, every
outcome is committed before anything downstream starts, and a lease that stops being
heartbeated is reaped back to ``ready`` by any worker.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import os
import socket
import threading
import time
import uuid
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

from flowplane.connectors.registry import Registry, default_registry
from flowplane.engine import transitions
from flowplane.engine.execution import NO_SECRETS, NodeExecutor, RunInfo
from flowplane.engine.faults import maybe_crash
from flowplane.engine.heartbeats import Heartbeats
from flowplane.engine.log_context import iteration_var, node_id_var, run_id_var
from flowplane.engine.outage import keep_running, until_stored
from flowplane.engine.plan import plans
from flowplane.engine.scheduler import Scheduler
from flowplane.engine.secrets import EnvSecrets, SecretsProvider
from flowplane.engine.settlement import OFF_LOOP_ITEMS
from flowplane.engine.tracing import Tracing, tracing_of
from flowplane.errors import FlowplaneError
from flowplane.settings import Settings
from flowplane.store.base import Store
from flowplane.store.records import NodeRunRecord, RunRecord
from flowplane.timeouts import wait_for

_log = logging.getLogger("flowplane.worker")
OUTPUT_CACHE_RUNS = 256
SHUTDOWN_GRACE_SECONDS = 10.0


class Worker:
    """Claims and executes node runs until stopped."""

    def __init__(
        self,
        store: Store,
        *,
        settings: Settings | None = None,
        registry: Registry | None = None,
        secrets: SecretsProvider | None = None,
        worker_id: str | None = None,
        concurrency: int | None = None,
        kv_factory: Any = None,
    ) -> None:
        self.store = store
        self.settings = settings or Settings()
        self.registry = registry or default_registry()
        self.secrets = secrets or EnvSecrets()
        self.id = worker_id or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
        self.concurrency = concurrency or self.settings.worker_concurrency
        self.lease_ms = int(self.settings.lease_seconds * 1000)
        self.kv_factory = kv_factory
        self._executor = NodeExecutor(
            store,
            settings=self.settings,
            registry=self.registry,
            secrets=self.secrets,
            kv_factory=kv_factory,
            heartbeat=self._heartbeat_one,
        )
        # Spans and log context per node run, only when asked for (off the hot path else).
        self.tracing: Tracing | None = tracing_of(self.settings)
        self._observed = self.tracing is not None or self.settings.log_format == "json"
        self._tasks: dict[int, asyncio.Task[None]] = {}
        self._rows: dict[int, NodeRunRecord] = {}
        self._cancel_events: dict[int, asyncio.Event] = {}
        # Node runs whose outcome is being recorded: the completion transaction is fenced on
        # the lease and may hand node runs off to this worker, so it must not be cancelled.
        self._completing: set[int] = set()
        self._runs: OrderedDict[str, RunInfo] = OrderedDict()
        # Group completions (see _complete_in_group): per run, the foreach items' successes
        # waiting for the run's completion transaction in flight, and its task.
        self._groups: dict[str, list[_Waiting]] = {}
        self._group_tasks: dict[str, asyncio.Task[None]] = {}
        self._wake = asyncio.Event()
        # Whether the last claim may have left due work behind (it filled every free slot).
        self._saturated = False
        self._stopping = asyncio.Event()
        # Releases of rows handed to this worker after stop() (see _spawn).
        self._giving_back: set[asyncio.Task[bool]] = set()
        self._remove_listener: Any = None
        self._background: list[asyncio.Task[None]] = []
        self.executed = 0
        self._grace_seconds = SHUTDOWN_GRACE_SECONDS
        # Slots reserved by dispatch transactions leasing roots to this worker (see
        # transitions.register_local_worker); guarded by _slots_lock (any thread).
        self._reserved = 0
        self._slots_lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._unregister: Any = None
        self.owner = self.id

    # --- lifecycle ----------------------------------------------------------------------

    async def run(self) -> None:
        """Run until :meth:`stop` is called (or the task is cancelled)."""
        self._remove_listener = self.store.add_listener(self._on_notify, kinds=("ready", "cancel"))
        self._loop = asyncio.get_running_loop()
        self._unregister = transitions.register_local_worker(self.store.engine, self)
        self._background = [
            asyncio.create_task(self._heartbeat_loop(), name=f"fp-heartbeat-{self.id}"),
            asyncio.create_task(self._maintenance_loop(), name=f"fp-reaper-{self.id}"),
            # Every worker also ticks the schedules; unique slot rows make that safe.
            asyncio.create_task(
                Scheduler(self.store, registry=self.registry).run(), name=f"fp-cron-{self.id}"
            ),
        ]
        try:
            # A database outage (or a bug) restarts the loop after a backoff: never exit.
            await keep_running(self._claim_loop, what="claiming", stopping=self._stopping)
        finally:
            await self._shutdown()

    async def stop(self, grace_seconds: float | None = None) -> None:
        """Stop claiming; in-flight node runs get ``grace_seconds`` to finish, then are
        cancelled and their leases released (default :data:`SHUTDOWN_GRACE_SECONDS`)."""
        if grace_seconds is not None:
            self._grace_seconds = grace_seconds
        self._stopping.set()
        self._wake.set()

    async def _shutdown(self) -> None:
        if self._unregister is not None:
            self._unregister()
        if self._remove_listener is not None:
            self._remove_listener()
        if self._tasks:
            _done, pending = await asyncio.wait(
                list(self._tasks.values()), timeout=self._grace_seconds
            )
            for task in pending:
                task.cancel()
            if pending:
                await asyncio.wait(pending)
        if self._group_tasks:  # completions being recorded: give them the grace to commit
            await asyncio.wait(list(self._group_tasks.values()), timeout=self._grace_seconds)
        if self._giving_back:
            await asyncio.wait(self._giving_back, timeout=self._grace_seconds)
        for task in self._background:
            task.cancel()
        for task in self._background:
            with contextlib.suppress(asyncio.CancelledError):
                await task

    # --- local hand-off of dispatched runs (called from any thread) -------------------

    def reserve(self, count: int) -> int:
        """Reserve up to ``count`` free slots for roots a dispatch leases to this worker."""
        with self._slots_lock:
            if self._stopping.is_set() or self._loop is None:
                return 0
            taken = max(0, min(count, self.concurrency - len(self._tasks) - self._reserved))
            self._reserved += taken
            return taken

    def release(self, count: int) -> None:
        """Give back reserved slots (the dispatch did not commit)."""
        with self._slots_lock:
            self._reserved -= count

    def adopt(self, rows: list[NodeRunRecord], run: RunRecord) -> None:
        """Execute node runs a committed dispatch leased to this worker."""
        loop = self._loop
        if loop is None:
            return  # the lease expires and the reaper gives the rows back
        if asyncio._get_running_loop() is loop:
            self._adopt(rows, run)
        else:
            with contextlib.suppress(RuntimeError):  # loop closed: the reaper recovers
                loop.call_soon_threadsafe(self._adopt, rows, run)

    def _adopt(self, rows: list[NodeRunRecord], run: RunRecord) -> None:
        with self._slots_lock:
            self._reserved -= len(rows)
        for row in rows:
            self._spawn(row, run)

    def _on_notify(self, kind: str, payload: str) -> None:
        if kind == "ready":
            self._wake.set()
        elif kind == "cancel":
            for row_id, row in list(self._rows.items()):
                if row.run_id == payload:
                    self._cancel_row(row_id)

    def _cancel_row(self, row_id: int) -> None:
        event = self._cancel_events.get(row_id)
        if event is not None:
            event.set()
        task = self._tasks.get(row_id)
        if task is not None:
            task.cancel()

    # --- claiming -----------------------------------------------------------------------

    async def _claim_loop(self) -> None:
        poll = self.settings.poll_interval_seconds
        while not self._stopping.is_set():
            free = self.concurrency - len(self._tasks) - self._reserved
            claimed: list[NodeRunRecord] = []
            # Cleared even when full: a wake-up pending while no slot is free would
            # otherwise make every wait below return at once (a busy loop).
            self._wake.clear()
            due: int | None = None
            if free > 0:
                work = await self.store.transact(
                    functools.partial(
                        transitions.claim_work, owner=self.id, limit=free, lease_ms=self.lease_ms
                    )
                )
                claimed, due = work.rows, work.next_due_ms
                for row in claimed:
                    self._spawn(row, work.runs.get(row.run_id))
            # Full, or no room to claim: due work may be left, so a freed slot must wake us.
            # (``free`` is below 0 while completions' hand-offs have started successors
            # before the nodes that completed ended: that is full too.)
            self._saturated = free <= 0 or len(claimed) == free
            if claimed and len(claimed) == free:
                await asyncio.sleep(0)
                if len(self._tasks) >= self.concurrency:
                    await self._wait(poll)
                continue
            # Otherwise the claim took all due work: what becomes due later is either made
            # ready with a "ready" notification (which sets the event cleared above) or is
            # a timer or retry at ``due`` (read in the claim's transaction).
            timeout = poll
            if due is not None:
                timeout = max(0.0, min(poll, due / 1000 - time.time()))
            await self._wait(timeout)

    async def _wait(self, timeout: float) -> None:
        with contextlib.suppress(TimeoutError):
            await wait_for(self._wake.wait(), timeout)

    def _spawn(self, row: NodeRunRecord, run: RunRecord | None = None) -> None:
        if self._stopping.is_set():
            # Leased by a group completion that committed after stop(): give it back at
            # once rather than run it after the heartbeats stopped (its lease would lapse
            # and another worker would run it again). _shutdown waits for the release.
            self._giving_back.add(
                asyncio.create_task(self.store.transact(lambda tx: transitions.release(tx, row)))
            )
            return
        self._rows[row.id] = row
        self._cancel_events[row.id] = asyncio.Event()
        work = self._execute_observed(row, run) if self._observed else self._execute(row, run)
        task = asyncio.create_task(work, name=f"fp-node-{row.node_id}")
        self._tasks[row.id] = task

        def _done(_t: asyncio.Task[None], row_id: int = row.id) -> None:
            self._tasks.pop(row_id, None)
            self._rows.pop(row_id, None)
            self._cancel_events.pop(row_id, None)
            self._completing.discard(row_id)
            # A freed slot needs a claim only if the last one may have left work behind;
            # work made ready since then announces itself with a "ready" notification.
            # (Waking on every finished node cost an empty claim and a read per node.)
            if self._saturated:
                self._wake.set()

        task.add_done_callback(_done)

    # --- background loops ---------------------------------------------------------------

    async def _heartbeat_loop(self) -> None:
        # A thread and connection of their own: a heartbeat never waits behind the work's
        # transactions, nor for a busy event loop (see flowplane.engine.heartbeats).
        await Heartbeats(
            self.store,
            owner=self.id,
            lease_ms=self.lease_ms,
            leases=lambda: [(rid, row.lease_epoch) for rid, row in list(self._rows.items())],
            lost=self._leases_lost,
        ).run()

    def _leases_lost(self, leases: list[tuple[int, int]]) -> None:
        for row_id, epoch in leases:
            row = self._rows.get(row_id)
            if row is None or row.lease_epoch != epoch or row_id in self._completing:
                # Gone, re-claimed since, or not held because its own completion just
                # committed: cancelling it then would drop the node runs handed off to us.
                continue
            self._cancel_row(row_id)  # cancelled, or the lease was taken over: a zombie

    async def _maintenance_loop(self) -> None:
        interval = self.settings.reaper_interval_seconds
        while True:
            try:
                await self.store.transact(transitions.reap)
                await self.store.transact(transitions.time_out_runs)
            except FlowplaneError as exc:
                _log.warning("maintenance failed: %s", exc)
            except Exception:  # a dead reaper would turn a lost lease into a hang
                _log.exception("maintenance failed")
            await asyncio.sleep(interval)

    # --- node tasks: execute, then record the outcome ----------------------------------

    async def _run_info(self, run_id: str, run: RunRecord | None = None) -> RunInfo:
        info = self._runs.get(run_id)
        if info is not None:
            self._runs.move_to_end(run_id)
            return info
        # The claim's transaction read the run row and cached its plan: no read needed.
        plan = plans.get(run_id) if run is not None else None
        if run is not None and plan is not None:
            row = run
        else:
            fetched = await until_stored(
                lambda: self.store.read(lambda tx: tx.get_run(run_id)), what="reading a run"
            )
            if fetched is None:
                raise FlowplaneError(f"run {run_id} vanished")
            row = fetched
            plan = plans.get(run_id, row.document)
        assert plan is not None
        info = RunInfo(row, plan)
        self._runs[run_id] = info
        while len(self._runs) > OUTPUT_CACHE_RUNS:
            self._runs.popitem(last=False)
        return info

    async def _execute_observed(self, row: NodeRunRecord, run: RunRecord | None = None) -> None:
        """:meth:`_execute` inside the node run's log context and attempt span."""
        run_id_var.set(row.run_id)
        node_id_var.set(row.node_id)
        iteration_var.set(row.iteration)
        if self.tracing is None:
            await self._execute(row, run)
            return
        try:
            info = await self._run_info(row.run_id, run)
            node_type = info.plan.node(row.node_id).type
        except Exception:  # the plain path reports it
            await self._execute(row, run)
            return
        facts = {
            "id": info.id,
            "workflow_name": info.workflow_name,
            "namespace": info.namespace,
            "trace_context": info.trace_context,
        }
        with self.tracing.attempt_span(facts, row, node_type) as span:
            await self._execute(row, run, span)

    async def _execute(
        self, row: NodeRunRecord, run: RunRecord | None = None, span: Any = None
    ) -> None:
        started = int(time.time() * 1000)
        logs: list[tuple[int, str, str]] = []
        redactor = NO_SECRETS
        try:
            cached = self._runs.get(row.run_id)
            if cached is None:
                info = await self._run_info(row.run_id, run)
            else:
                info = cached
                self._runs.move_to_end(row.run_id)
            outcome, redactor = await self._executor.produce(
                info, row, logs, self._cancel_events[row.id]
            )
        except asyncio.CancelledError:
            if self._stopping.is_set() and not self._cancel_events[row.id].is_set():
                with contextlib.suppress(Exception):
                    await asyncio.shield(
                        self.store.transact(lambda tx: transitions.release(tx, row))
                    )
            raise
        except Exception as exc:  # pragma: no cover - defensive: engine bug, not node error
            _log.exception("worker failed executing %s/%s", row.run_id, row.node_id)
            outcome = transitions.Outcome(
                kind="failure",
                error={"code": "internal_error", "message": type(exc).__name__},
                retryable=True,
            )
        if logs:
            outcome.logs = [(ts, lvl, redactor.text(msg)) for ts, lvl, msg in logs]
        if span is not None:
            Tracing.record_outcome(span, outcome)
        outcome.started_at_ms = started
        self._completing.add(row.id)
        # Retried through an outage: the outcome is recorded once the database is back
        # (fenced on the lease: a retry of a completion that did commit is refused).
        # Expanding a big foreach writes a row per item, and an item of a node with
        # ``max_parallel`` settling counts the items: long transactions, kept off the event
        # loop (see Store.transact). Other items settle in a few statements (see
        # settlement.item_settled): inline, as on the writer thread they cost 6 times more.
        # An expansion of up to OFF_LOOP_ITEMS items stays inline too: sent to the writer
        # thread, a 200-item fan-out ran at 1/7 of its speed (bench/engine.py).
        big = outcome.kind == "expand" and len(outcome.items or ()) > OFF_LOOP_ITEMS
        scan = big or (
            row.iteration >= 0
            and row.node_id in info.plan.foreach
            and info.plan.node(row.node_id).max_parallel is not None
        )
        if transitions.groupable(info.plan, row, outcome):
            # Recorded with the other items of its run that complete meanwhile: one
            # transaction, one lock of the run row for all of them.
            result = await asyncio.shield(self._complete_in_group(row, outcome, scan))
        else:
            result = await asyncio.shield(
                until_stored(
                    lambda: self.store.transact(
                        lambda tx: transitions.complete(
                            tx,
                            row,
                            outcome,
                            owner=self.id,
                            handoff=max(0, self.concurrency - len(self._tasks) + 1),
                            lease_ms=self.lease_ms,
                        ),
                        scan=scan,
                    ),
                    what="recording a node's outcome",
                )
            )
        self.executed += 1
        if span is not None:
            Tracing.record_completion(span, result.accepted, result.run_status)
        maybe_crash("after-complete")
        if not result.accepted:
            _log.info(
                "completion of %s/%s[%s] attempt %s fenced off (lease lost or run ended)",
                row.run_id,
                row.node_id,
                row.iteration,
                row.attempt,
            )
            return
        if outcome.kind == "success" and row.iteration == info.plan.level_iteration(row.node_id):
            info.outputs[row.node_id] = {"output": outcome.output, "status": "finished"}
        for claimed in result.handoff:
            self._spawn(claimed)

    # --- group completions ---------------------------------------------------------------

    def _complete_in_group(
        self, row: NodeRunRecord, outcome: transitions.Outcome, scan: bool
    ) -> asyncio.Future[transitions.Completion]:
        """Record a foreach item's success together with the other items of its run that
        complete while the run's previous group is being recorded (group commit: the
        first goes at once; those arriving meanwhile go together next). Items of one run
        would otherwise queue on its row lock one transaction each."""
        waiting = _Waiting(row, outcome, scan, asyncio.get_running_loop().create_future())
        self._groups.setdefault(row.run_id, []).append(waiting)
        if row.run_id not in self._group_tasks:
            self._group_tasks[row.run_id] = asyncio.create_task(
                self._record_groups(row.run_id), name=f"fp-complete-{row.run_id}"
            )
        return waiting.result

    async def _record_groups(self, run_id: str) -> None:
        """Record the run's waiting completions, a group at a time, until none is left.

        Not cancelled by the item tasks waiting on it (they wait through a shield), nor by
        :meth:`stop` (which waits for it): what a transaction handed off is started here."""
        group: list[_Waiting] = []
        try:
            while group := self._groups.pop(run_id, []):
                await self._record_group(run_id, group)
        finally:
            del self._group_tasks[run_id]
            for waiting in [*group, *self._groups.pop(run_id, [])]:  # (only when cancelled)
                if not waiting.result.done():
                    waiting.result.cancel()

    async def _record_group(self, run_id: str, group: list[_Waiting]) -> None:
        """Record one group in one transaction. If it fails (not an outage), each of its
        completions is recorded alone: one item the database refuses (an output it
        cannot store) must not take the others' results with it."""
        record = functools.partial(
            transitions.complete_items,
            entries=[(w.row, w.outcome) for w in group],
            owner=self.id,
            # (A stopping worker takes nothing more: a claim would start it.)
            handoff=0
            if self._stopping.is_set()
            else max(0, self.concurrency - len(self._tasks) + len(group)),
            lease_ms=self.lease_ms,
        )
        scan = any(w.scan for w in group)
        try:
            done = await until_stored(
                functools.partial(self.store.transact, record, scan=scan),
                what="recording nodes' outcomes",
            )
        except Exception as exc:
            if len(group) > 1:
                for waiting in group:
                    await self._record_group(run_id, [waiting])
                return
            group[0].result.set_exception(exc)  # the item task raises it
            return
        for waiting, accepted in zip(group, done.accepted, strict=True):
            waiting.result.set_result(
                transitions.Completion(accepted=accepted, run_status=done.run_status)
            )
        for claimed in done.handoff:
            self._spawn(claimed)

    async def _heartbeat_one(self, row: NodeRunRecord) -> None:
        held = await self.store.transact(
            lambda tx: tx.extend_leases(self.id, [(row.id, row.lease_epoch)], self.lease_ms)
        )
        if row.id not in held:
            raise asyncio.CancelledError("lease lost")


@dataclass
class _Waiting:
    """A foreach item's success waiting to be recorded with its run's next group."""

    row: NodeRunRecord
    outcome: transitions.Outcome
    scan: bool
    result: asyncio.Future[transitions.Completion]


async def run_until_stopped(worker: Worker, stop: asyncio.Event) -> None:
    """Run ``worker`` until ``stop`` is set."""
    task = asyncio.create_task(worker.run())
    await stop.wait()
    await worker.stop()
    await task
