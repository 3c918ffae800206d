"""The worker: claims due node runs, executes connectors, records outcomes.

A worker holds nothing a crash could lose: every claim is a lease in the database, every
outcome is committed before anything downstream starts, and a lease that stops being
heartbeated is reaped back to ``ready`` by any worker.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import logging
import os
import socket
import threading
import time
import uuid
from collections import OrderedDict
from typing import Any

import jsonschema

from flowplane.connectors.base import (
    NodeContext,
    NodeLogger,
    StartChildRun,
    StopRun,
    WaitForApproval,
    WaitForSignal,
    WaitForTimer,
)
from flowplane.connectors.registry import Registry, default_registry
from flowplane.engine import transitions
from flowplane.engine.cron import Scheduler
from flowplane.engine.faults import maybe_crash
from flowplane.engine.heartbeats import Heartbeats
from flowplane.engine.outage import keep_running, until_stored
from flowplane.engine.plan import Plan, plans
from flowplane.engine.secrets import EnvSecrets, Redactor, SecretsProvider
from flowplane.errors import (
    ConnectorError,
    DatabaseUnavailable,
    FlowplaneError,
    NodeTimeout,
    TemplateError,
)
from flowplane.model import templates
from flowplane.model.document import Workflow
from flowplane.model.graph import check_workflow
from flowplane.model.inputs import validate_input
from flowplane.settings import Settings
from flowplane.store.base import Store
from flowplane.store.tx import Row

_log = logging.getLogger("flowplane.worker")
OUTPUT_CACHE_RUNS = 256
MAX_OUTPUT_BYTES = 4 * 1024 * 1024
SHUTDOWN_GRACE_SECONDS = 10.0
CHECKER_CACHE_SIZE = 512
# The redactor of a node run without secrets (it replaces nothing; shared, never changed).
_NO_SECRETS = Redactor(())


class _RunInfo:
    """What a worker caches about a run: immutable facts and outputs it has seen."""

    def __init__(self, row: Row, plan: Plan) -> None:
        self.id: str = row["id"]
        self.namespace: str = row["namespace"]
        self.input: Any = row["input"]
        self.workflow_name: str = row["workflow_name"]
        self.workflow_version: int | None = row["workflow_version"]
        self.started_at_ms: int | None = row["started_at_ms"]
        self.plan = plan
        self.outputs: dict[str, dict[str, Any]] = {}


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
        self._tasks: dict[int, asyncio.Task[None]] = {}
        self._rows: dict[int, Row] = {}
        self._cancel_events: dict[int, asyncio.Event] = {}
        # Node runs whose outcome is being recorded: the completion transaction is fenced on
        # the lease and may hand node runs off to this worker, so it must not be cancelled.
        self._completing: set[int] = set()
        self._runs: OrderedDict[str, _RunInfo] = OrderedDict()
        self._wake = asyncio.Event()
        # Whether the last claim may have left due work behind (it filled every free slot).
        self._saturated = False
        self._stopping = asyncio.Event()
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

    def adopt(self, rows: list[Row], run: Row) -> None:
        """Execute node runs a committed dispatch leased to this worker."""
        loop = self._loop
        if loop is None:
            return  # the lease expires and the reaper gives the rows back
        if asyncio._get_running_loop() is loop:
            self._adopt(rows, run)
        else:
            with contextlib.suppress(RuntimeError):  # loop closed: the reaper recovers
                loop.call_soon_threadsafe(self._adopt, rows, run)

    def _adopt(self, rows: list[Row], run: Row) -> None:
        with self._slots_lock:
            self._reserved -= len(rows)
        for row in rows:
            self._spawn(row, run)

    def _on_notify(self, kind: str, payload: str) -> None:
        if kind == "ready":
            self._wake.set()
        elif kind == "cancel":
            for row_id, row in list(self._rows.items()):
                if row["run_id"] == payload:
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
            claimed: list[Row] = []
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
                    self._spawn(row, work.runs.get(row["run_id"]))
            # Full, or no room to claim: due work may be left, so a freed slot must wake us.
            self._saturated = len(claimed) == free
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
            await asyncio.wait_for(self._wake.wait(), timeout)

    def _spawn(self, row: Row, run: Row | None = None) -> None:
        self._rows[row["id"]] = row
        self._cancel_events[row["id"]] = asyncio.Event()
        task = asyncio.create_task(self._execute(row, run), name=f"fp-node-{row['node_id']}")
        self._tasks[row["id"]] = task

        def _done(_t: asyncio.Task[None], row_id: int = row["id"]) -> None:
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
            leases=lambda: [(rid, row["lease_epoch"]) for rid, row in list(self._rows.items())],
            lost=self._leases_lost,
        ).run()

    def _leases_lost(self, leases: list[tuple[int, int]]) -> None:
        for row_id, epoch in leases:
            row = self._rows.get(row_id)
            if row is None or row["lease_epoch"] != epoch or row_id in self._completing:
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

    # --- execution ----------------------------------------------------------------------

    async def _run_info(self, run_id: str, run: Row | None = None) -> _RunInfo:
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
            plan = plans.get(run_id, row["document"])
        assert plan is not None
        info = _RunInfo(row, plan)
        self._runs[run_id] = info
        while len(self._runs) > OUTPUT_CACHE_RUNS:
            self._runs.popitem(last=False)
        return info

    async def _execute(self, row: Row, run: Row | None = None) -> None:
        started = int(time.time() * 1000)
        logs: list[tuple[int, str, str]] = []
        redactor = _NO_SECRETS
        try:
            cached = self._runs.get(row["run_id"])
            if cached is None:
                info = await self._run_info(row["run_id"], run)
            else:
                info = cached
                self._runs.move_to_end(row["run_id"])
            outcome, redactor = await self._produce(info, row, logs)
        except asyncio.CancelledError:
            if self._stopping.is_set() and not self._cancel_events[row["id"]].is_set():
                with contextlib.suppress(Exception):
                    await asyncio.shield(
                        self.store.transact(lambda tx: transitions.release(tx, row))
                    )
            raise
        except Exception as exc:  # pragma: no cover - defensive: engine bug, not node error
            _log.exception("worker failed executing %s/%s", row["run_id"], row["node_id"])
            outcome = transitions.Outcome(
                kind="failure",
                error={"code": "internal_error", "message": type(exc).__name__},
                retryable=True,
            )
        if logs:
            outcome.logs = [(ts, lvl, redactor.text(msg)) for ts, lvl, msg in logs]
        outcome.started_at_ms = started
        self._completing.add(row["id"])
        # Retried through an outage: the outcome is recorded once the database is back
        # (fenced on the lease: a retry of a completion that did commit is refused).
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
                    )
                ),
                what="recording a node's outcome",
            )
        )
        self.executed += 1
        maybe_crash("after-complete")
        if not result.accepted:
            _log.info(
                "completion of %s/%s[%s] attempt %s fenced off (lease lost or run ended)",
                row["run_id"],
                row["node_id"],
                row["iteration"],
                row["attempt"],
            )
            return
        if outcome.kind == "success" and row["iteration"] == info.plan.level_iteration(
            row["node_id"]
        ):
            info.outputs[row["node_id"]] = {"output": outcome.output, "status": "finished"}
        for claimed in result.handoff:
            self._spawn(claimed)

    async def _produce(
        self, info: _RunInfo, row: Row, logs: list[tuple[int, str, str]]
    ) -> tuple[transitions.Outcome, Redactor]:
        plan = info.plan
        node = plan.node(row["node_id"])
        if transitions.wait_row_is_timer(row):
            output = (row["wait"] or {}).get("output")
            return transitions.Outcome(kind="success", output=output), _NO_SECRETS
        secret_values = await until_stored(
            lambda: self.secrets.resolve(info.namespace, plan.secrets[node.id]),
            what="resolving secrets",
        )
        redactor = Redactor(secret_values.values()) if secret_values else _NO_SECRETS
        return await self._produce_with(info, row, logs, secret_values, redactor), redactor

    async def _produce_with(
        self,
        info: _RunInfo,
        row: Row,
        logs: list[tuple[int, str, str]],
        secret_values: dict[str, str],
        redactor: Redactor,
    ) -> transitions.Outcome:
        plan = info.plan
        node = plan.node(row["node_id"])
        try:
            refs = plan.refs[node.id]
            if refs:
                await self._load_outputs(info, refs)
            context = self._context(info, row, refs, secret_values)
            is_level = row["iteration"] == plan.level_iteration(node.id)
            if is_level and node.when is not None:
                if not templates.truthy(templates.evaluate(node.when, context)):
                    return transitions.Outcome(kind="skip")
            if is_level and node.foreach is not None:
                items = (
                    node.foreach
                    if isinstance(node.foreach, list)
                    else templates.evaluate(node.foreach, context)
                )
                if not isinstance(items, list | tuple):
                    raise TemplateError(
                        f"foreach of node {node.id!r} must give a list, got {type(items).__name__}"
                    )
                return transitions.Outcome(kind="expand", items=list(items))
            connector = self.registry.get(node.type)
            checker = _checker(connector.manifest.input_schema)
            rendered = (
                {
                    k: (v if k in checker.raw else templates.render_value(v, context))
                    for k, v in node.params.items()
                }
                if node.params
                else {}
            )
            if not checker.known_valid(node.params):
                _check_params(node.id, checker.validator, rendered)
                checker.passed(node.params)
            ctx = NodeContext(
                run_id=info.id,
                node_id=node.id,
                iteration=row["iteration"],
                attempt=row["attempt"],
                namespace=info.namespace,
                workflow_name=info.workflow_name,
                logger=NodeLogger(
                    lambda lvl, msg: logs.append((int(time.time() * 1000), lvl, msg))
                ),
                credentials=secret_values,
                settings=self.settings,
                kv=self.kv_factory(info.namespace) if self.kv_factory else None,
                heartbeat_fn=lambda: self._heartbeat_one(row),
                cancel_event=self._cancel_events[row["id"]],
                extras={"template_context": context},
            )
            timeout = node.timeout_seconds
            try:
                if timeout is None:  # asyncio.timeout(None) would never expire
                    result = await connector(rendered, ctx)
                else:
                    async with asyncio.timeout(timeout):
                        result = await connector(rendered, ctx)
            except TimeoutError as exc:
                raise NodeTimeout(
                    f"node {node.id!r} exceeded its timeout of {node.timeout}"
                ) from exc
            if isinstance(result, _DIRECTIVES):
                return await self._directive_outcome(info, row, result, redactor)
            return transitions.Outcome(kind="success", output=_normalise(redactor.value(result)))
        except ConnectorError as exc:
            return _failure(exc.to_dict(), exc.retryable, redactor)
        except DatabaseUnavailable as exc:  # (a connector's own store access): transient
            return _failure(exc.to_dict(), True, redactor)
        except FlowplaneError as exc:
            return _failure(exc.to_dict(), False, redactor)
        except Exception as exc:
            message = f"{type(exc).__name__}: {exc}"
            return _failure({"code": "connector_error", "message": message}, True, redactor)

    async def _directive_outcome(
        self, info: _RunInfo, row: Row, result: Any, redactor: Redactor
    ) -> transitions.Outcome:
        if isinstance(result, WaitForApproval | WaitForSignal | WaitForTimer | StopRun):
            if isinstance(result, StopRun):
                result = StopRun(
                    result.status, redactor.text(result.message), redactor.value(result.output)
                )
            return transitions.Outcome(kind="directive", directive=result)
        if isinstance(result, StartChildRun):
            document = result.document
            if document is None:
                name = result.workflow or ""
                stored = await self.store.read(lambda tx: tx.workflow_by_name(info.namespace, name))
                if stored is None:
                    raise ConnectorError(
                        f"sub-workflow {name!r} not found in namespace {info.namespace!r}",
                        retryable=False,
                    )
                document = stored["document"]
            document = {**document, "namespace": info.namespace}
            child = Workflow.model_validate(document)
            check_workflow(child, self.registry)
            child_input = validate_input(child.inputs, result.input)
            return transitions.Outcome(
                kind="directive",
                directive=StartChildRun(workflow=child.name, document=None, input=child_input),
                child_workflow=child,
                child_document=child.to_document(),
            )
        return transitions.Outcome(kind="success", output=_normalise(redactor.value(result)))

    async def _heartbeat_one(self, row: Row) -> None:
        held = await self.store.transact(
            lambda tx: tx.extend_leases(self.id, [(row["id"], row["lease_epoch"])], self.lease_ms)
        )
        if row["id"] not in held:
            raise asyncio.CancelledError("lease lost")

    async def _load_outputs(self, info: _RunInfo, refs: frozenset[str]) -> None:
        """Read the settled outputs of ``refs`` the run's cache does not hold yet."""
        missing = [ref for ref in refs if ref not in info.outputs]
        if missing:
            loaded = await until_stored(
                lambda: self.store.read(lambda tx: tx.node_outputs(info.id, missing)),
                what="reading outputs",
            )
            for (node_id, iteration), (status, output, error) in loaded.items():
                if iteration == info.plan.level_iteration(node_id):
                    entry = {"output": output, "status": status, "error": error}
                    if status in ("finished", "failed", "skipped"):
                        info.outputs[node_id] = entry

    def _context(
        self, info: _RunInfo, row: Row, refs: frozenset[str], secret_values: dict[str, str]
    ) -> dict[str, Any]:
        """The template context of ``row`` (outputs of ``refs`` as cached, else pending)."""
        nodes = {ref: info.outputs.get(ref, {"output": None, "status": "pending"}) for ref in refs}
        context: dict[str, Any] = {
            "input": info.input,
            "nodes": nodes,
            "secrets": secret_values,
            "run": {
                "id": info.id,
                "attempt": row["attempt"],
                "startedAt": info.started_at_ms,
                "iteration": row["iteration"],
            },
            "workflow": {
                "name": info.workflow_name,
                "namespace": info.namespace,
                "version": info.workflow_version,
            },
        }
        if row["iteration"] >= 0 and row["node_id"] in info.plan.foreach:
            context["item"] = row.get("item")
            context["index"] = row["iteration"]
        return context


def _failure(error: dict[str, Any], retryable: bool, redactor: Redactor) -> transitions.Outcome:
    return transitions.Outcome(kind="failure", error=redactor.value(error), retryable=retryable)


class _ParamsChecker:
    """What checking params against one connector input schema needs, built once."""

    def __init__(self, schema: dict[str, Any]) -> None:
        self.schema = schema
        self.validator = jsonschema.Draft202012Validator(schema)
        # Params marked ``x-raw`` are passed through without template rendering.
        self.raw = {
            k
            for k, v in (schema.get("properties") or {}).items()
            if isinstance(v, dict) and v.get("x-raw")
        }
        # Node params without templates that passed: they render to the same values
        # every time, so they pass again (keyed by the params object, held here).
        self._static_valid: dict[int, dict[str, Any]] = {}

    def known_valid(self, params: dict[str, Any]) -> bool:
        return self._static_valid.get(id(params)) is params

    def passed(self, params: dict[str, Any]) -> None:
        if next(templates.iter_template_strings(params), None) is None:
            if len(self._static_valid) >= CHECKER_CACHE_SIZE:
                self._static_valid.clear()
            self._static_valid[id(params)] = params


_checkers: dict[int, _ParamsChecker] = {}


def _checker(schema: dict[str, Any]) -> _ParamsChecker:
    """The checker of ``schema`` (cached per schema object; manifests are immutable)."""
    checker = _checkers.get(id(schema))
    if checker is None or checker.schema is not schema:
        if len(_checkers) >= CHECKER_CACHE_SIZE:
            _checkers.clear()
        checker = _checkers[id(schema)] = _ParamsChecker(schema)
    return checker


def _check_params(
    node_id: str, validator: jsonschema.protocols.Validator, params: dict[str, Any]
) -> None:
    errors = sorted(validator.iter_errors(params), key=lambda e: list(e.absolute_path))
    if errors:
        detail = "; ".join(
            f"{'.'.join(str(p) for p in e.absolute_path) or '(params)'}: {e.message}"
            for e in errors[:5]
        )
        raise ConnectorError(
            f"params of node {node_id!r} are invalid after rendering: {detail}", retryable=False
        )


_DIRECTIVES = (WaitForApproval, WaitForSignal, WaitForTimer, StopRun, StartChildRun)


def _normalise(output: Any) -> Any:
    """Return ``output`` as plain JSON values, refusing oversized outputs."""
    try:
        bound = _json_bound(output)
        plain = True
    except (_NotPlain, RecursionError):
        bound, plain = -1, False
    if plain and bound <= MAX_OUTPUT_BYTES:
        return output  # plain, and certainly small enough: nothing to copy or measure
    text = json.dumps(output, default=str)
    if len(text) > MAX_OUTPUT_BYTES:
        raise ConnectorError(
            f"node output is {len(text)} bytes, over the {MAX_OUTPUT_BYTES}-byte limit",
            retryable=False,
        )
    # Already plain JSON values: the round trip would only copy them.
    return output if plain else json.loads(text)


# More than any output may be: the JSON text must be measured.
_UNBOUNDED = MAX_OUTPUT_BYTES + 1


class _NotPlain(Exception):
    """A value is not made only of JSON types (see :func:`_json_bound`)."""


def _json_bound(value: Any) -> int:
    """An upper bound of ``len(json.dumps(value))`` for a value made only of JSON types
    (exact types: no subclasses, tuples or non-string keys, which the JSON round trip would
    change); raises :class:`_NotPlain` for any other value."""
    kind = type(value)
    if kind is str:
        return 12 * len(value) + 2  # at worst a surrogate pair of escapes per character
    if kind is dict:
        size = 2
        for key, item in value.items():
            if type(key) is not str:
                raise _NotPlain
            size += 12 * len(key) + 6 + _json_bound(item)
        return size
    if kind is list:
        size = 2
        for item in value:
            size += _json_bound(item) + 2
        return size
    if kind is int:
        return 21 if value.bit_length() < 64 else _UNBOUNDED
    if kind is float:
        return 32
    if kind is bool or value is None:
        return 5
    raise _NotPlain


async def run_until_stopped(worker: Worker, stop: asyncio.Event) -> None:
    """Run ``worker`` until ``stop`` is set."""
    task = asyncio.create_task(worker.run())
    await stop.wait()
    await worker.stop()
    await task
