"""Process commands: ``serve`` (API + embedded workers), ``worker`` and ``db`` migrations."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from flowplane.cli._common import (
    EXIT_FAILED,
    EXIT_OK,
    build_registry,
    build_settings,
    display_url,
    fail,
    refuse_missing_database,
    setup_logging,
)
from flowplane.cli.gc_tuning import tune_for_serving
from flowplane.cli.local import DatabaseSchema, DatabaseUrl, Plugins

if TYPE_CHECKING:
    import asyncio

    from flowplane.connectors.registry import Registry
    from flowplane.settings import Settings
    from flowplane.store.base import Store

DEFAULT_GRACE_SECONDS = 30.0
MAX_CONNECTIONS = 1000
KEEP_ALIVE_SECONDS = 5
MAX_INCOMPLETE_EVENT_BYTES = 65536
GRACEFUL_SHUTDOWN_SECONDS = 30
LATE_CONNECTION_SWEEP_SECONDS = 0.05

_log = logging.getLogger("flowplane.cli")

Root = Annotated[
    Path | None,
    typer.Option(
        "--root",
        help="Folder that workflowPath and flow.run paths live in (default: FLOWPLANE_ROOT or .).",
        show_default=False,
    ),
]


# --- serve --------------------------------------------------------------------------------


def _listening_url(host: str, port: int) -> str:
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


def serve_command(
    host: Annotated[
        str | None,
        typer.Option("--host", help="Bind address (default 127.0.0.1).", show_default=False),
    ] = None,
    port: Annotated[
        int | None,
        typer.Option("--port", "-p", help="HTTP port (default 8080).", show_default=False),
    ] = None,
    database_url: DatabaseUrl = None,
    database_schema: DatabaseSchema = None,
    workers: Annotated[
        int | None,
        typer.Option("--workers", min=0, help="Embedded worker loops (0 = API only; default 1)."),
    ] = None,
    root: Root = None,
    plugin: Plugins = None,
    limit_concurrency: Annotated[
        int,
        typer.Option("--limit-concurrency", min=1, help="Open connections before HTTP 503."),
    ] = MAX_CONNECTIONS,
    load_examples: Annotated[
        Path | None,
        typer.Option(
            "--load-examples",
            help="Import every workflow file of this folder (create or update) at start-up.",
            file_okay=False,
            exists=True,
        ),
    ] = None,
) -> None:
    """Serve the HTTP API with embedded workers and the scheduler (SQLite by default)."""
    import asyncio

    settings = build_settings(
        host=host,
        port=port,
        database_url=database_url,
        database_schema=database_schema,
        workers=workers,
        root=root,
    )
    setup_logging(settings.log_level, settings.log_format)
    _ensure_master_key(settings)
    registry = build_registry(plugin)
    # A database that is down (or restarting) at start-up is waited for, as by workers.
    status = asyncio.run(_wait_for_database(settings))
    if status is not None:
        raise typer.Exit(status)
    # The app's modules are imported once the settings are known good: a refused setting
    # is answered without them (about 2 s).
    import uvicorn

    from flowplane.api.app import create_app

    hooks = [_example_loader(load_examples)] if load_examples is not None else []
    app = create_app(settings, registry=registry, on_startup=hooks)

    class _Server(uvicorn.Server):
        async def startup(self, sockets: Any = None) -> None:
            await super().startup(sockets=sockets)
            if self.started:
                # Start-up is over (the app's services are open): see gc_tuning.
                tune_for_serving(settings.gc_threshold)
                bound = settings.port
                for server in getattr(self, "servers", []):
                    for sock in server.sockets:
                        bound = sock.getsockname()[1]
                        break
                url = _listening_url(settings.host, bound)
                print(f"Flowplane listening on {url}", flush=True)
                _log.info(
                    "database %s, %d embedded worker(s)",
                    display_url(settings.database_url),
                    settings.workers,
                )

        async def shutdown(self, sockets: Any = None) -> None:
            # Before uvicorn drops connections: WebSocket requests in flight finish and
            # every event stream ends cleanly (clients resume by seq elsewhere).
            from flowplane.api.gateway import drain

            await drain(app)
            # uvicorn asks the connections open as it stops listening to close (idle ones
            # at once, busy ones after their response); asked now, before its first await.
            asked = set(self.server_state.connections)
            late = asyncio.create_task(_close_late_connections(self.server_state, asked))
            try:
                await super().shutdown(sockets=sockets)
            finally:
                late.cancel()

    config = uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        timeout_keep_alive=KEEP_ALIVE_SECONDS,
        h11_max_incomplete_event_size=MAX_INCOMPLETE_EVENT_BYTES,
        limit_concurrency=limit_concurrency,
        timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_SECONDS,
        log_level=settings.log_level.lower(),
        # JSON logs: uvicorn's loggers go through the root handler (its own are text).
        log_config=None if settings.log_format == "json" else uvicorn.config.LOGGING_CONFIG,
        server_header=False,
    )
    server = _Server(config)
    server.run()
    if not server.started:
        raise typer.Exit(EXIT_FAILED)


async def _close_late_connections(state: Any, asked: set[Any]) -> None:
    """Ask the connections a shutting-down uvicorn never asked to close, as it asks the
    others (``protocol.shutdown()``: idle ones close at once, busy ones after their
    response), until it is done.

    A connection the listener accepted a moment after uvicorn stopped listening (one
    already queued; under load there is nearly always one) is served but never asked:
    its client keeps it alive and idle, and the shutdown waits out the whole keep-alive
    timeout for it (every ``flowplane serve`` stop under load took 5 s more).
    """
    import asyncio

    while True:
        await asyncio.sleep(LATE_CONNECTION_SWEEP_SECONDS)
        for connection in list(state.connections):
            if connection not in asked:
                asked.add(connection)
                connection.shutdown()


def _ensure_master_key(settings: Settings) -> None:
    """On SQLite without ``FLOWPLANE_SECRET_KEY``: use (or generate, on first start) the
    master key file of the data folder, and say where it is."""
    import os

    from flowplane.security.crypto import KEY_ENV
    from flowplane.security.key_file import create_key_file, key_file_path, read_key_file

    if (settings.secret_key or "").strip() or os.environ.get(KEY_ENV, "").strip():
        return
    try:
        if not settings.database_url.startswith("sqlite"):
            # Several processes on several machines share a PostgreSQL database: a key
            # generated here would be unknown to the others. They set FLOWPLANE_SECRET_KEY.
            if read_key_file(settings.data_dir) is None:
                _log.info(
                    "no master key: credentials cannot be stored until FLOWPLANE_SECRET_KEY "
                    "is set (flowplane secrets generate-key) or %s exists",
                    key_file_path(settings.data_dir),
                )
            return
        _key, path, created = create_key_file(settings.data_dir)
    except OSError as exc:
        fail(f"cannot create the master key file in {settings.data_dir}: {exc}")
    if created:
        message = (
            f"Generated the master key for credentials in {path} (readable by you only). "
            "Back it up with the database: stored credentials cannot be read without it "
            "(docs/secrets.md). Set FLOWPLANE_SECRET_KEY to use a key of your own."
        )
        if settings.log_format == "json":
            _log.warning("%s", message)  # one JSON line, as every other line of the log
        else:
            print(message, flush=True)
    else:
        _log.info("master key for credentials: %s", path)


# --- worker -------------------------------------------------------------------------------


async def run_worker(settings: Settings, registry: Registry, grace_seconds: float) -> int:
    """Run one worker until SIGTERM or SIGINT, then stop gracefully; return the exit status.

    On the first signal the worker stops claiming and lets in-flight node runs finish for up
    to ``grace_seconds``; a second signal (or the end of the grace period) cancels them, and
    their leases return them to other workers.
    """
    import asyncio
    import contextlib
    import signal

    from flowplane.engine.worker import Worker
    from flowplane.services.credentials import worker_options
    from flowplane.services.retention import RetentionService
    from flowplane.services.run_cache import SettledRunCache

    loop = asyncio.get_running_loop()
    signals = asyncio.Queue[int]()
    installed = _stop_signals(loop, signals)
    opened = await _open_when_up(settings, signals, "worker start-up")
    if isinstance(opened, int):
        _remove_handlers(loop, installed)
        return opened
    store = opened
    worker = Worker(store, settings=settings, registry=registry, **worker_options(store, settings))
    task = asyncio.create_task(worker.run(), name="fp-worker")
    retention = RetentionService(store, settings, SettledRunCache(ttl_seconds=0))
    pruning = asyncio.create_task(retention.run_forever(), name="fp-retention")
    tune_for_serving(settings.gc_threshold)
    _log.info(
        "Flowplane worker %s started: database %s, concurrency %d",
        worker.id,
        display_url(settings.database_url),
        worker.concurrency,
    )
    status = EXIT_OK
    try:
        got_signal = asyncio.create_task(signals.get())
        done, _ = await asyncio.wait({task, got_signal}, return_when=asyncio.FIRST_COMPLETED)
        if task in done:
            got_signal.cancel()
            _log.error("worker stopped unexpectedly: %r", task.exception())
            return EXIT_FAILED
        _log.info(
            "received %s: finishing in-flight node runs (up to %gs; again to force)",
            signal.Signals(got_signal.result()).name,
            grace_seconds,
        )
        await worker.stop(grace_seconds)
        second = asyncio.create_task(signals.get())
        done, _ = await asyncio.wait(
            {task, second}, timeout=grace_seconds, return_when=asyncio.FIRST_COMPLETED
        )
        second.cancel()
        if task not in done:
            _log.warning("cancelling in-flight node runs")
            task.cancel()
            status = EXIT_FAILED
        with contextlib.suppress(asyncio.CancelledError):
            await task
        _log.info("worker stopped")
    finally:
        pruning.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await pruning
        _remove_handlers(loop, installed)
        await store.close()
    return status


async def _next(queue: asyncio.Queue[int]) -> None:
    """Wait until ``queue`` holds an item, leaving it there."""
    item = await queue.get()
    queue.put_nowait(item)


def _remove_handlers(loop: asyncio.AbstractEventLoop, signals: list[int]) -> None:
    for number in signals:
        loop.remove_signal_handler(number)


def worker_command(
    database_url: DatabaseUrl = None,
    database_schema: DatabaseSchema = None,
    concurrency: Annotated[
        int | None,
        typer.Option("--concurrency", "-c", min=1, help="Node runs executed at once (default 16)."),
    ] = None,
    lease_seconds: Annotated[
        float | None,
        typer.Option("--lease-seconds", min=0.1, help="Lease on claimed node runs (default 30)."),
    ] = None,
    grace_seconds: Annotated[
        float,
        typer.Option("--grace-seconds", min=0, help="How long in-flight nodes may finish."),
    ] = DEFAULT_GRACE_SECONDS,
    root: Root = None,
    plugin: Plugins = None,
) -> None:
    """Run a worker that claims and executes node runs until SIGTERM or Ctrl-C."""
    settings = build_settings(
        database_url=database_url,
        database_schema=database_schema,
        worker_concurrency=concurrency,
        lease_seconds=lease_seconds,
        root=root,
    )
    setup_logging(settings.log_level, settings.log_format)
    refuse_missing_database(settings.database_url)  # a worker polling an empty file helps no one
    registry = build_registry(plugin)
    import asyncio

    raise typer.Exit(asyncio.run(run_worker(settings, registry, grace_seconds)))


# --- db -----------------------------------------------------------------------------------

db_app = typer.Typer(help="Database schema migrations.", no_args_is_help=True)


def _open_sync(
    database_url: str | None, database_schema: str | None, *, create: bool = False
) -> Store:
    from flowplane.errors import StorageError
    from flowplane.store.base import Store

    settings = build_settings(database_url=database_url, database_schema=database_schema)
    if not create:
        refuse_missing_database(settings.database_url)
    try:
        return Store.create(settings.database_url, schema=settings.database_schema)
    except StorageError as exc:
        fail(exc.detail)


def _close(store: Store) -> None:
    import asyncio

    asyncio.run(store.close())


@db_app.command("upgrade")
def db_upgrade(database_url: DatabaseUrl = None, database_schema: DatabaseSchema = None) -> None:
    """Upgrade the database to the latest schema (safe to run from several processes)."""
    from flowplane.store.migrate import current_revision

    store = _open_sync(database_url, database_schema, create=True)
    try:
        before = current_revision(store)
        store.migrate()
        after = current_revision(store)
    except Exception as exc:
        fail(f"upgrade failed on {display_url(store.url)}: {exc}")
    finally:
        _close(store)
    where = display_url(store.url)
    if before == after:
        print(f"{where}: already at revision {after}")
    else:
        print(f"{where}: upgraded from {before or 'empty'} to {after}")


@db_app.command("current")
def db_current(database_url: DatabaseUrl = None, database_schema: DatabaseSchema = None) -> None:
    """Print the database's schema revision and whether it is the latest."""
    from flowplane.store.migrate import current_revision, head_revision

    store = _open_sync(database_url, database_schema)
    try:
        current = current_revision(store)
    except Exception as exc:
        fail(f"cannot read {display_url(store.url)}: {exc}")
    finally:
        _close(store)
    head = head_revision()
    state = "up to date" if current == head else "behind: run `flowplane db upgrade`"
    print(f"{display_url(store.url)}: revision {current or 'none'} (head {head}; {state})")
    if current != head:
        raise typer.Exit(EXIT_FAILED)


def register(app: typer.Typer) -> None:
    """Add ``serve``, ``worker`` and ``db``."""
    app.command("serve")(serve_command)
    app.command("worker")(worker_command)
    app.add_typer(db_app, name="db")


def _example_loader(folder: Path) -> Any:
    """A start-up hook importing the folder's workflow files as stored workflows."""

    async def load(_app: Any, services: Any) -> None:
        from flowplane.errors import FlowplaneError
        from flowplane.services.caller import Caller

        loader = Caller.system("flowplane serve --load-examples")

        files = sorted([*folder.glob("*.yaml"), *folder.glob("*.yml")])
        loaded: list[str] = []
        for path in files:
            try:
                items = await services.workflows.import_documents(loader, [path.read_text()])
            except FlowplaneError as exc:
                _log.warning("example %s not loaded: %s", path.name, exc.detail)
                continue
            loaded.extend(item.workflow.name for item in items)
        if loaded:
            print(f"Loaded {len(loaded)} example workflows: {', '.join(loaded)}", flush=True)

    return load


def _stop_signals(loop: Any, signals: Any) -> list[int]:
    """Queue SIGTERM and SIGINT on ``signals``; return the numbers handled (to remove)."""
    import contextlib
    import signal

    installed: list[int] = []
    for number in (int(signal.SIGTERM), int(signal.SIGINT)):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(number, signals.put_nowait, number)
            installed.append(number)
    return installed


async def _open_when_up(settings: Settings, signals: Any, what: str) -> Any:
    """Open the store, waiting with backoff while the database is down (or restarting).

    Returns:
        The open store, or an exit status: ``EXIT_OK`` when a signal arrived while waiting,
        ``EXIT_FAILED`` for a database that answers but refuses (wrong name, role, password).
    """
    import contextlib

    from flowplane.engine.outage import Backoff, describe
    from flowplane.errors import DatabaseUnavailable, StorageError
    from flowplane.store.base import Store
    from flowplane.timeouts import wait_for

    backoff = Backoff(f"{what} ({display_url(settings.database_url)})")
    while True:
        try:
            store = await Store.open(settings.database_url, schema=settings.database_schema)
            backoff.succeeded()
            return store
        except DatabaseUnavailable as exc:
            delay = backoff.failed(exc)
        except StorageError as exc:
            _log.error("cannot open the database: %s", describe(exc))
            return EXIT_FAILED
        with contextlib.suppress(TimeoutError):
            await wait_for(_next(signals), delay)
        if not signals.empty():
            _log.info("stopped while waiting for the database")
            return EXIT_OK


async def _wait_for_database(settings: Settings) -> int | None:
    """Before ``serve`` starts: wait until the database answers (``None``), or exit status."""
    import asyncio

    loop = asyncio.get_running_loop()
    signals = asyncio.Queue[int]()
    installed = _stop_signals(loop, signals)
    try:
        opened = await _open_when_up(settings, signals, "serve start-up")
        if isinstance(opened, int):
            return opened
        await opened.close()
        return None
    finally:
        _remove_handlers(loop, installed)
