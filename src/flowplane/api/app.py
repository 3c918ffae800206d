"""The FastAPI application factory; ``flowplane serve`` mounts what it returns."""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import logging
import pkgutil
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from fastapi import APIRouter, FastAPI

from flowplane import __version__
from flowplane.api import problems, thodare, workflowdev
from flowplane.api.edge import install_edge
from flowplane.api.mcp_backend import mount_mcp
from flowplane.api.security import start_security
from flowplane.api.sse import RAW_SEND
from flowplane.connectors.registry import Registry, default_registry
from flowplane.services.container import Services, Store, Worker, open_services
from flowplane.settings import Settings

_log = logging.getLogger("flowplane.api")

StartupHook = Callable[[FastAPI, Services], Awaitable[None]]
STARTUP_HOOKS: list[StartupHook] = []
"""Called in order once the services exist (e.g. creating the first admin key)."""


FIRST_ROUTERS = ("ops", "runs", "workflows", "events", "approvals")
"""Route modules matched first, most requested first: FastAPI tries routers in order, one
route pattern at a time, so a health probe or a run poll should not walk every other
router's routes first. No two modules serve the same method and path, so order is safe."""


def _router_rank(name: str) -> tuple[int, str]:
    return (FIRST_ROUTERS.index(name) if name in FIRST_ROUTERS else len(FIRST_ROUTERS), name)


def discover_routers() -> list[APIRouter]:
    """Return the ``router`` of every module in :mod:`flowplane.api.routes`: those of
    :data:`FIRST_ROUTERS` first, then the others by name."""
    import flowplane.api.routes as package

    routers: list[APIRouter] = []
    for info in sorted(pkgutil.iter_modules(package.__path__), key=lambda i: _router_rank(i.name)):
        if info.name.startswith("_"):
            continue
        module = importlib.import_module(f"{package.__name__}.{info.name}")
        router = getattr(module, "router", None)
        if isinstance(router, APIRouter):
            routers.append(router)
    return routers


@contextlib.asynccontextmanager
async def _running(
    app: FastAPI,
    services: Services,
    settings: Settings,
    workers: int | None,
    on_startup: list[StartupHook] | None,
) -> AsyncIterator[None]:
    """The app's life over its services: security, start-up hooks, embedded workers."""
    stop_watching = services.runs.watch_changes()
    tasks: list[asyncio.Task[None]] = []
    embedded: list[Worker] = []
    stop_metrics_port: Callable[[], None] | None = None
    try:
        await start_security(app, services)
        for hook in [*STARTUP_HOOKS, *(on_startup or [])]:
            await hook(app, services)
        for _ in range(settings.workers if workers is None else workers):
            worker = services.new_worker()
            embedded.append(worker)
            tasks.append(asyncio.create_task(worker.run(), name="flowplane-worker"))
        app.state.workers = embedded
        if settings.metrics_port is not None:
            from flowplane.api.metrics_port import start_metrics_port

            bound, stop_metrics_port = start_metrics_port(
                app.state.metrics, services.ops, settings.host, settings.metrics_port
            )
            app.state.metrics_port = bound
            _log.info("metrics on http://%s:%d/metrics (no credentials)", settings.host, bound)
        # The retention policy (when one is set) is applied by every process, in batches.
        tasks.append(asyncio.create_task(services.retention.run_forever(), name="fp-retention"))
        yield
    finally:
        stop_watching()
        if stop_metrics_port is not None:
            stop_metrics_port()
        for task in tasks:
            if task.get_name() == "fp-retention":
                task.cancel()
        for worker in embedded:
            await worker.stop()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)


class FlowplaneApp(FastAPI):
    """FastAPI, with the server's own ``send`` in each HTTP request's scope: event streams
    write to their sockets with it (:class:`flowplane.api.sse.FeedStreamResponse`)."""

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await super().__call__(scope, receive, send)
            return
        scope[RAW_SEND] = send
        try:
            await super().__call__(scope, receive, send)
        finally:
            # uvicorn's ``send`` is a method of the request's cycle object, which holds the
            # scope: left there, every request would be a reference cycle, garbage only
            # the collector frees (all of a request's objects at once, in 10-15 ms pauses
            # of the event loop every ~0.5 s under load).
            scope.pop(RAW_SEND, None)


def create_app(
    settings: Settings | None = None,
    *,
    store: Store | None = None,
    registry: Registry | None = None,
    workers: int | None = None,
    on_startup: list[StartupHook] | None = None,
) -> FastAPI:
    """Build the Flowplane API.

    Args:
        settings: configuration (defaults from ``FLOWPLANE_*`` variables).
        store: an open store to use; when omitted the app opens (and closes) its own.
        registry: the connector registry (default: built-ins and plugins).
        workers: embedded worker loops (default ``settings.workers``; 0 = API only).
        on_startup: extra hooks run once the services exist (after the global ones).
    """
    settings = settings or Settings()

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with open_services(settings, registry or default_registry(), store) as services:
            app.state.services = services
            async with (
                _running(app, services, settings, workers, on_startup),
                mcp.running(),
            ):
                yield

    app = FlowplaneApp(
        title="Flowplane",
        version=__version__,
        description="Durable workflow engine: workflows, runs, approvals and events over HTTP.",
        lifespan=lifespan,
        # /docs is api/routes/ui.py's (Swagger UI from the package, open to browsers).
        docs_url=None,
        redoc_url=None,
        # Off by default: FastAPI otherwise asks the OpenTelemetry globals on every request.
        telemetry=None
        if settings.opentelemetry
        else {"tracing": False, "metrics": False, "logs": False},
    )
    app.state.settings = settings
    problems.install(app)
    # One layer: request id, response headers, thodare's errors, metrics, the security gate.
    install_edge(app, settings)
    for router in discover_routers():
        app.include_router(router)
    # The seed surfaces' routes after Flowplane's own (routes are tried in order).
    app.include_router(thodare.router)
    workflowdev.install(app)
    # The MCP server over streamable HTTP, behind the same security gate as the routes.
    mcp = mount_mcp(app)
    return app


def services_of(app: Any) -> Services:
    """Return the services of a started app."""
    services: Services = app.state.services
    return services
