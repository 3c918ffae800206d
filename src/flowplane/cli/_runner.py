"""The engine behind ``flowplane run``: dispatch, follow, prompt, cancel on Ctrl-C.

A :class:`LocalRun` owns one run started by the CLI. It follows the run's events (and those
of its child runs) through :meth:`RunService.follow`, renders them, and answers approvals
and signals at the prompt when stdin is a terminal. Stdin is read by a daemon thread, so a
prompt never holds the process: if someone approves from another terminal, the prompt is
withdrawn and the run goes on.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import os
import shlex
import signal
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.markup import escape

from flowplane.cli._common import (
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    EXIT_INVALID,
    EXIT_OK,
    err_console,
    local_actor,
    portable_url,
)
from flowplane.cli._output import ProgressView, error_message, print_result
from flowplane.cli.validate import check_text, print_problems, read_workflow_file
from flowplane.connectors.registry import Registry
from flowplane.engine.worker import Worker
from flowplane.errors import FlowplaneError, InputInvalid, StorageError
from flowplane.model.document import Workflow
from flowplane.services.caller import Caller
from flowplane.services.credentials import worker_options
from flowplane.services.runs import TERMINAL_EVENTS, RunRecord, RunService
from flowplane.settings import Settings
from flowplane.store.base import Store
from flowplane.timeouts import wait_for

LOCAL = Caller.system()
"""Who a local run acts as: the process itself (it holds the database, not an API key)."""

CANCEL_WAIT_SECONDS = 15.0
WORKER_STOP_SECONDS = 15.0
DEFAULT_SCHEMA = "flowplane"
# Node events that end a wait (the node moved on, whoever answered).
_SETTLING_EVENTS = frozenset(
    {
        "ApprovalGranted",
        "ApprovalDenied",
        "NodeFinished",
        "NodeFailed",
        "NodeSkipped",
        "NodeCancelled",
        "NodeReady",
        "NodeStarted",
    }
)


@dataclass
class RunOptions:
    """What ``flowplane run`` was asked to do."""

    path: Path
    run_input: Any
    settings: Settings
    registry: Registry
    json_mode: bool = False
    interactive: bool = False


class StdinLines:
    """Lines typed on stdin, read by a daemon thread from the raw file descriptor.

    Reading the descriptor (not ``sys.stdin``) means the thread holds no interpreter-level
    lock, so it can stay blocked in ``read`` while the process exits.
    """

    def __init__(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._queue: asyncio.Queue[str | None] = asyncio.Queue()
        self._thread: threading.Thread | None = None
        self.eof = False

    def _read(self) -> None:
        buffer = b""
        while True:
            try:
                chunk = os.read(sys.stdin.fileno(), 4096)
            except (OSError, ValueError):
                chunk = b""
            if not chunk:
                self._put(None)
                return
            buffer += chunk
            while b"\n" in buffer:
                line, buffer = buffer.split(b"\n", 1)
                self._put(line.decode("utf-8", "replace").rstrip("\r"))

    def _put(self, line: str | None) -> None:
        with contextlib.suppress(RuntimeError):  # the loop is closed: nobody is listening
            self._loop.call_soon_threadsafe(self._queue.put_nowait, line)

    async def readline(self) -> str | None:
        """Return the next line, or ``None`` at end of input."""
        if self.eof:
            return None
        if self._thread is None:
            self._thread = threading.Thread(target=self._read, name="fp-stdin", daemon=True)
            self._thread.start()
        line = await self._queue.get()
        if line is None:
            self.eof = True
        return line

    def drain(self) -> None:
        """Forget lines typed before the current prompt."""
        while not self._queue.empty():
            if self._queue.get_nowait() is None:
                self.eof = True


@dataclass
class Wait:
    """A node run waiting for a person: an approval or a signal."""

    run_id: str
    node_id: str
    iteration: int
    kind: str  # "approval" | "signal"
    title: str  # the approval title, or the signal name
    correlation_id: str | None = None
    resolved: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def key(self) -> tuple[str, str, int]:
        """The node run's identity."""
        return (self.run_id, self.node_id, self.iteration)


class LocalRun:
    """Follows, renders and steers one run started by ``flowplane run``."""

    def __init__(
        self,
        service: RunService,
        run: RunRecord,
        document: dict[str, Any],
        options: RunOptions,
        console: Console,
    ) -> None:
        self.service = service
        self.run_id = run.id
        self.document = document
        self.options = options
        self.console = console
        self.json_mode = options.json_mode
        self.view = None if options.json_mode else ProgressView(console, live=console.is_terminal)
        # Prompts and hints go to stderr in --json mode so stdout stays machine-readable.
        self.talk = err_console if options.json_mode else console
        self.queue: asyncio.Queue[tuple[str, Any]] = asyncio.Queue()
        self.followed: set[str] = set()
        self.tasks: list[asyncio.Task[None]] = []
        self.waits: dict[tuple[str, str, int], Wait] = {}
        self.wait_added = asyncio.Event()
        self.interactive = options.interactive
        self.stdin: StdinLines | None = None
        self.interrupts = 0
        self.final_run: dict[str, Any] | None = None

    # --- main loop ----------------------------------------------------------------------

    async def execute(self, worker_task: asyncio.Task[None]) -> int:
        """Follow the run to its end; return the process exit status."""
        loop = asyncio.get_running_loop()
        sigint = self._install_sigint(loop)
        worker_task.add_done_callback(lambda t: self.queue.put_nowait(("worker", t)))
        if self.view is not None:
            self.view.add_run(self.run_id, self.document)
            self.view.start()
        self._follow(self.run_id)
        if self.interactive:
            self.stdin = StdinLines()
            self.tasks.append(asyncio.create_task(self._prompter(), name="fp-prompter"))
        try:
            status = await self._loop()
        finally:
            if sigint:
                loop.remove_signal_handler(signal.SIGINT)
            for task in self.tasks:
                task.cancel()
            await asyncio.gather(*self.tasks, return_exceptions=True)
            if self.view is not None:
                self.view.stop()
        if self.view is not None and self.final_run is not None:
            print_result(self.console, self.final_run)
        return status

    def _install_sigint(self, loop: asyncio.AbstractEventLoop) -> bool:
        try:
            loop.add_signal_handler(signal.SIGINT, self.queue.put_nowait, ("interrupt", None))
        except (NotImplementedError, RuntimeError):  # pragma: no cover - Windows
            return False
        return True

    async def _loop(self) -> int:
        deadline: float | None = None
        loop = asyncio.get_running_loop()
        while True:
            timeout = None if deadline is None else max(0.0, deadline - loop.time())
            try:
                tag, payload = await wait_for(self.queue.get(), timeout)
            except TimeoutError:
                self.talk.print("[yellow]the run did not confirm the cancellation in time[/]")
                return EXIT_INTERRUPTED
            if tag == "interrupt":
                self.interrupts += 1
                if self.interrupts > 1:
                    self.talk.print("[yellow]interrupted again: leaving without waiting[/]")
                    return EXIT_INTERRUPTED
                self.talk.print("[yellow]Cancelling the run (Ctrl-C again to leave now)…[/]")
                await self._cancel()
                deadline = loop.time() + CANCEL_WAIT_SECONDS
            elif tag == "worker":
                task: asyncio.Task[None] = payload
                error = None if task.cancelled() else task.exception()
                err_console.print(f"[bold red]error:[/] the worker stopped: {error!r}")
                return EXIT_FAILED
            elif tag == "error":
                err_console.print(f"[bold red]error:[/] following the run failed: {payload}")
                return EXIT_FAILED
            else:
                event: dict[str, Any] = payload
                await self._on_event(event)
                if event.get("runId") == self.run_id and event.get("type") in TERMINAL_EVENTS:
                    return await self._finish()

    async def _finish(self) -> int:
        run = await self.service.get(LOCAL, self.run_id)
        self.final_run = dataclasses.asdict(run)
        if run.status == "finished":
            return EXIT_OK
        return EXIT_INTERRUPTED if self.interrupts else EXIT_FAILED

    async def _cancel(self) -> None:
        try:
            await self.service.cancel(LOCAL, self.run_id)
        except FlowplaneError as exc:  # already terminal: the next event ends the loop
            self.talk.print(f"[yellow]{escape(exc.detail)}[/]")

    # --- events -------------------------------------------------------------------------

    def _follow(self, run_id: str) -> None:
        if run_id in self.followed:
            return
        self.followed.add(run_id)

        async def pump() -> None:
            try:
                async for event in self.service.follow(LOCAL, run_id, poll_seconds=0.25):
                    self.queue.put_nowait(("event", event))
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self.queue.put_nowait(("error", exc))

        self.tasks.append(asyncio.create_task(pump(), name=f"fp-follow-{run_id}"))

    async def _on_event(self, event: dict[str, Any]) -> None:
        kind = event.get("type")
        run_id = str(event.get("runId"))
        if self.json_mode:
            sys.stdout.write(json.dumps(event, ensure_ascii=False, default=str) + "\n")
            sys.stdout.flush()
        elif self.view is not None:
            self.view.handle(event)
        node_id = event.get("nodeId")
        iteration = int(event.get("iteration") or 0)
        if kind == "NodeWaitingEvent" and event.get("childRunId"):
            await self._add_child(str(event["childRunId"]), run_id, str(node_id), iteration)
        elif kind == "NodeWaitingApproval":
            self._add_wait(
                Wait(run_id, str(node_id), iteration, "approval", event.get("title", ""))
            )
        elif kind == "NodeWaitingEvent" and event.get("signal"):
            wait = Wait(
                run_id,
                str(node_id),
                iteration,
                "signal",
                str(event["signal"]),
                event.get("correlationId"),
            )
            self._add_wait(wait)
        elif kind in _SETTLING_EVENTS and node_id is not None:
            settled = self.waits.pop((run_id, str(node_id), iteration), None)
            if settled is not None:
                settled.resolved.set()
        elif kind in TERMINAL_EVENTS:
            for key in [k for k in self.waits if k[0] == run_id]:
                self.waits.pop(key).resolved.set()

    async def _add_child(self, child_id: str, run_id: str, node_id: str, iteration: int) -> None:
        if child_id in self.followed:
            return
        if self.view is not None:
            try:
                document = await self.service.document(LOCAL, child_id)
            except FlowplaneError:
                document = {}
            label = self.view.label_of(run_id, node_id, iteration)
            self.view.add_run(child_id, document, parent_label=label)
        self._follow(child_id)

    def _add_wait(self, wait: Wait) -> None:
        if wait.key in self.waits:
            return
        self.waits[wait.key] = wait
        if self.interactive:
            self.wait_added.set()
        else:
            self._hint(wait)

    # --- waits: hints and prompts -------------------------------------------------------

    def _db_flags(self) -> str:
        settings = self.options.settings
        flags = f"--database-url {shlex.quote(portable_url(settings.database_url))}"
        if "$FLOWPLANE" in flags:
            flags = "--database-url " + portable_url(settings.database_url)
        if settings.is_postgres and settings.database_schema != DEFAULT_SCHEMA:
            flags += f" --database-schema {settings.database_schema}"
        return flags

    def hint_commands(self, wait: Wait) -> list[str]:
        """Return the commands that answer ``wait`` from another terminal."""
        target = f"{shlex.quote(wait.run_id)} {shlex.quote(wait.node_id)}"
        iteration = f" --iteration {wait.iteration}" if wait.iteration > 0 else ""
        db = self._db_flags()
        if wait.kind == "approval":
            return [
                f"flowplane approve {target}{iteration} {db}",
                f"flowplane deny {target}{iteration} {db}",
            ]
        correlation = (
            f" --correlation-id {shlex.quote(wait.correlation_id)}" if wait.correlation_id else ""
        )
        name = shlex.quote(wait.title)
        return [
            f"flowplane signal {shlex.quote(wait.run_id)} {name} --payload '{{}}'{correlation} {db}"
        ]

    def _hint(self, wait: Wait) -> None:
        if wait.kind == "approval":
            what = f"Node {wait.node_id!r} waits for approval: {wait.title}"
        else:
            what = f"Node {wait.node_id!r} waits for the signal {wait.title!r}"
        lines = [f"[magenta]{escape(what)}[/]", "Answer from another terminal with:"]
        lines += [f"  {escape(command)}" for command in self.hint_commands(wait)]
        for line in lines:
            self.talk.print(line, highlight=False, soft_wrap=True)

    async def _prompter(self) -> None:
        while True:
            wait = next((w for w in self.waits.values() if not w.resolved.is_set()), None)
            if wait is None:
                self.wait_added.clear()
                await self.wait_added.wait()
                continue
            with self._paused():
                await self._prompt(wait)
            if self.waits.get(wait.key) is wait and not wait.resolved.is_set():
                # Not answered here (end of input): leave it to another terminal.
                wait.resolved.set()
            if not self.interactive:
                for pending in self.waits.values():
                    if not pending.resolved.is_set():
                        self._hint(pending)
                return

    @contextlib.contextmanager
    def _paused(self) -> Iterator[None]:
        if self.view is None:
            yield
        else:
            with self.view.paused():
                yield

    async def _ask(self, wait: Wait, question: str) -> str | None:
        """Print ``question`` and return the answer; ``None`` if the wait ended first."""
        assert self.stdin is not None
        self.talk.print(question, end="", highlight=False)
        line_task = asyncio.create_task(self.stdin.readline())
        done_task = asyncio.create_task(wait.resolved.wait())
        try:
            done, _ = await asyncio.wait(
                {line_task, done_task}, return_when=asyncio.FIRST_COMPLETED
            )
        finally:
            line_task.cancel()
            done_task.cancel()
        if line_task in done and not line_task.cancelled():
            line = line_task.result()
            if line is None:
                self.talk.print()
                self.interactive = False
            return line
        self.talk.print("\n[dim](answered elsewhere)[/]")
        return None

    async def _prompt(self, wait: Wait) -> None:
        assert self.stdin is not None
        self.stdin.drain()
        if wait.kind == "approval":
            await self._prompt_approval(wait)
        else:
            await self._prompt_signal(wait)

    async def _prompt_approval(self, wait: Wait) -> None:
        self.talk.print(f"[magenta]{escape(wait.title)}[/]", highlight=False)
        note: str | None = None
        while True:
            suffix = f" with note {note!r}? [y/n]" if note else "? [y/n/note]"
            line = await self._ask(wait, f"Approve {escape(wait.node_id)}{escape(suffix)} ")
            if line is None:
                return
            answer = line.strip()
            word, _, rest = answer.partition(" ")
            decision = {"y": True, "yes": True, "n": False, "no": False}.get(word.lower())
            if decision is None:
                if answer:
                    note = answer  # anything else is a note; ask for the decision again
                continue
            try:
                await self.service.decide(
                    LOCAL,
                    wait.run_id,
                    wait.node_id,
                    approved=decision,
                    iteration=wait.iteration,
                    note=rest.strip() or note,
                    by=local_actor(),
                )
            except FlowplaneError as exc:
                self.talk.print(f"[yellow]{escape(exc.detail)}[/]")
            return

    async def _prompt_signal(self, wait: Wait) -> None:
        correlation = f" (correlation id {wait.correlation_id})" if wait.correlation_id else ""
        self.talk.print(
            f"[magenta]Node {escape(wait.node_id)} waits for the signal "
            f"{escape(repr(wait.title))}{escape(correlation)}[/]",
            highlight=False,
        )
        while True:
            line = await self._ask(wait, f"Payload for {escape(wait.title)} (JSON, empty = null): ")
            if line is None:
                return
            try:
                payload = json.loads(line) if line.strip() else None
            except json.JSONDecodeError as exc:
                self.talk.print(f"[red]not JSON: {escape(exc.msg)}[/]")
                continue
            try:
                await self.service.signal(
                    LOCAL, wait.run_id, wait.title, payload, wait.correlation_id
                )
            except FlowplaneError as exc:
                self.talk.print(f"[yellow]{escape(exc.detail)}[/]")
            return


async def open_checked(options: RunOptions) -> tuple[Workflow, Store] | int:
    """Validate the workflow file and open the database; on failure print why and return
    the exit status."""
    path = options.path
    report = check_text(read_workflow_file(path), str(path), options.registry)
    if not report.valid or report.workflow is None:
        print_problems(err_console, report)
        return EXIT_INVALID
    settings = options.settings
    try:
        store = await Store.open(settings.database_url, schema=settings.database_schema)
    except StorageError as exc:
        err_console.print(f"[bold red]error:[/] cannot open the database: {escape(exc.detail)}")
        return EXIT_FAILED
    return report.workflow, store


def start_worker(store: Store, options: RunOptions, name: str) -> tuple[Worker, asyncio.Task[Any]]:
    """Start an embedded worker for the run; stop it with :func:`stop_worker`."""
    settings = options.settings
    worker = Worker(
        store, settings=settings, registry=options.registry, **worker_options(store, settings)
    )
    return worker, asyncio.create_task(worker.run(), name=name)


async def stop_worker(worker: Worker, task: asyncio.Task[Any]) -> None:
    """Stop the embedded worker, waiting up to :data:`WORKER_STOP_SECONDS` for it."""
    await worker.stop()
    try:
        await wait_for(asyncio.shield(task), WORKER_STOP_SECONDS)
    except TimeoutError:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    except Exception as exc:
        err_console.print(f"[red]worker error: {escape(error_message(str(exc)))}[/]")


async def start_run(
    service: RunService, workflow: Workflow, options: RunOptions
) -> RunRecord | None:
    """Dispatch the run; ``None`` (after printing the errors) when its input is invalid."""
    try:
        started = await service.start(
            LOCAL,
            workflow,
            options.run_input,
            trigger="cli",
            source_path=str(options.path.resolve()),
        )
    except InputInvalid as exc:
        err_console.print(f"[bold red]error:[/] {escape(exc.detail)}", soft_wrap=True)
        for entry in exc.extra.get("errors") or []:
            where = entry.get("path") or "(input)"
            err_console.print(f"  - {escape(str(where))}: {escape(str(entry['error']))}")
        return None
    return started.run


async def run_workflow(options: RunOptions, console: Console) -> int:
    """Validate, dispatch and follow one workflow file; return the exit status."""
    opened = await open_checked(options)
    if isinstance(opened, int):
        return opened
    workflow, store = opened
    try:
        worker, worker_task = start_worker(store, options, "fp-cli-worker")
        try:
            service = RunService(store, options.registry)
            run = await start_run(service, workflow, options)
            if run is None:
                return EXIT_INVALID
            session = LocalRun(service, run, workflow.to_document(), options, console)
            return await session.execute(worker_task)
        finally:
            await stop_worker(worker, worker_task)
    finally:
        await store.close()
