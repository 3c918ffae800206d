"""``flowplane run FILE --serve``: run one workflow locally and serve that run over HTTP.

The way Smithers' ``up --serve`` does: the run executes in this process (its progress shows
in the terminal as with a plain ``flowplane run``) while :mod:`flowplane.api.single_run`
serves its status, events, frames, approvals and cancellation. ``/health`` is open, the rest
needs the key: ``FLOWPLANE_ADMIN_KEY`` when set, else a fresh key printed once on stderr.

The process keeps serving after the run ends, so its final state stays readable, until
Ctrl-C or SIGTERM. A Ctrl-C while the run is active cancels it (as ``flowplane run`` does)
and stops the server.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import Iterator

import uvicorn
from rich.console import Console
from rich.markup import escape

from flowplane.api.single_run import create_single_run_app
from flowplane.cli._common import EXIT_FAILED, EXIT_INTERRUPTED, EXIT_INVALID, err_console
from flowplane.cli._runner import (
    LOCAL,
    LocalRun,
    RunOptions,
    open_checked,
    start_run,
    start_worker,
    stop_worker,
)
from flowplane.model.document import Workflow
from flowplane.security.tokens import generate_api_key
from flowplane.services.ops import OpsService
from flowplane.services.runs import RunService
from flowplane.store.base import Store
from flowplane.timeouts import wait_for

DEFAULT_PORT = 7331
"""Smithers' default port for serve mode."""
SERVER_START_SECONDS = 15.0
SERVER_STOP_SECONDS = 10.0


class _Server(uvicorn.Server):
    """A uvicorn server that leaves signals to us (the run owns Ctrl-C while it is active)."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        """Install no handlers: SIGINT and SIGTERM are handled by :func:`serve_workflow`."""
        yield

    def bound_port(self, default: int) -> int:
        """The port actually listened on (``--port 0`` picks a free one)."""
        for server in getattr(self, "servers", []):
            for sock in server.sockets:
                return int(sock.getsockname()[1])
        return default


def listening_url(host: str, port: int) -> str:
    """``http://host:port`` (IPv6 hosts in brackets)."""
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


async def _start_server(server: _Server) -> asyncio.Task[None]:
    task = asyncio.create_task(server.serve(), name="fp-serve-run")
    deadline = asyncio.get_running_loop().time() + SERVER_START_SECONDS
    while not server.started:
        if task.done() or asyncio.get_running_loop().time() > deadline:
            server.should_exit = True
            with contextlib.suppress(BaseException):
                await task
            raise OSError("the HTTP server did not start (is the port in use?)")
        await asyncio.sleep(0.02)
    return task


async def _stop_server(server: _Server, task: asyncio.Task[None]) -> None:
    server.should_exit = True
    try:
        await wait_for(asyncio.shield(task), SERVER_STOP_SECONDS)
    except TimeoutError:
        server.force_exit = True
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await task
    except Exception:  # the server failed while stopping: nothing left to serve anyway
        pass


def _stop_on_signals() -> tuple[asyncio.Event, list[int]]:
    """Route SIGINT and SIGTERM to an event (installed at once, before any await)."""
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    installed: list[int] = []
    for number in (int(signal.SIGINT), int(signal.SIGTERM)):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(number, stop.set)
            installed.append(number)
    return stop, installed


async def _until_signal(stop: asyncio.Event, installed: list[int]) -> None:
    """Wait for SIGINT or SIGTERM."""
    loop = asyncio.get_running_loop()
    try:
        await stop.wait()
    finally:
        for number in installed:
            loop.remove_signal_handler(number)


async def _serve_session(session: LocalRun, worker_task: asyncio.Task[None], url: str) -> int:
    loop = asyncio.get_running_loop()
    # SIGTERM during the run cancels it, as Ctrl-C does (LocalRun owns SIGINT meanwhile).
    with contextlib.suppress(NotImplementedError, RuntimeError):
        loop.add_signal_handler(signal.SIGTERM, session.queue.put_nowait, ("interrupt", None))
    try:
        status = await session.execute(worker_task)
    finally:
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.remove_signal_handler(signal.SIGTERM)
    if status == EXIT_INTERRUPTED or session.interrupts:
        # Ctrl-C (or SIGTERM) arrived while the run was ending: the user asked to stop.
        return status
    # Take the signals over before awaiting anything: a Ctrl-C that lands while the run's
    # end is being reported must stop serving cleanly, not raise KeyboardInterrupt.
    stop, installed = _stop_on_signals()
    final = await session.service.get(LOCAL, session.run_id)
    err_console.print(
        f"Run {escape(session.run_id)} {escape(final.status.value)}; still serving "
        f"{escape(url)} (Ctrl-C to stop).",
        highlight=False,
        soft_wrap=True,
    )
    await _until_signal(stop, installed)
    return status


async def serve_workflow(options: RunOptions, console: Console, *, host: str, port: int) -> int:
    """Validate and start one workflow file, serve its run over HTTP; return the exit status.

    Args:
        options: what ``flowplane run`` was asked to do (prompts are off: answer over HTTP
            or from another terminal).
        console: where the run's progress goes.
        host: the bind address.
        port: the TCP port (0 picks a free one; the URL is printed on stderr).
    """
    opened = await open_checked(options)
    if isinstance(opened, int):
        return opened
    workflow, store = opened
    try:
        return await _run_and_serve(store, workflow, options, console, host, port)
    finally:
        await store.close()


async def _run_and_serve(
    store: Store,
    workflow: Workflow,
    options: RunOptions,
    console: Console,
    host: str,
    port: int,
) -> int:
    settings = options.settings
    worker, worker_task = start_worker(store, options, "fp-serve-worker")
    try:
        service = RunService(store, options.registry)
        run = await start_run(service, workflow, options)
        if run is None:
            return EXIT_INVALID
        run_id = run.id
        key = settings.admin_key
        if key is None:
            key = generate_api_key().key
            err_console.print(f"API key for this run (shown once): {key}", highlight=False)
        app = create_single_run_app(
            service, run_id, key=key, settings=settings, ops=OpsService(store)
        )
        config = uvicorn.Config(
            app,
            host=host,
            port=port,
            lifespan="off",
            log_level="warning",
            server_header=False,
            timeout_graceful_shutdown=int(SERVER_STOP_SECONDS),
        )
        server = _Server(config)
        try:
            server_task = await _start_server(server)
        except OSError as exc:
            err_console.print(f"[bold red]error:[/] {escape(str(exc))}")
            await service.cancel(LOCAL, run_id)
            return EXIT_FAILED
        url = listening_url(host, server.bound_port(port))
        err_console.print(f"Serving run {run_id} on {url}", highlight=False, soft_wrap=True)
        err_console.print(
            "  GET / · /events · /frames · /metrics   POST /approve/<node> · /deny/<node> · "
            "/signal/<name> · /cancel   (Authorization: Bearer <key> or x-smithers-key; "
            "/health is open)",
            highlight=False,
            soft_wrap=True,
            markup=False,
        )
        options.interactive = False  # decisions come over HTTP (or another terminal)
        session = LocalRun(service, run, workflow.to_document(), options, console)
        try:
            return await _serve_session(session, worker_task, url)
        finally:
            await _stop_server(server, server_task)
    finally:
        await stop_worker(worker, worker_task)
