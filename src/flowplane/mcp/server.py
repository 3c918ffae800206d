"""The Flowplane MCP server: tools, resources and prompts over a :class:`Backend`.

:func:`build_server` makes the server once for a process. Its transports:

- stdio (``flowplane mcp``): :func:`run_stdio` with a fixed backend (the Python client of a
  remote server, or the services of a local database acting as the CLI);
- streamable HTTP (``flowplane serve`` at ``/mcp``): :func:`http_endpoint` gives the ASGI
  app and its session manager; the API authenticates each request and the provider builds
  the backend for that request's caller.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import json
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Annotated, Any

from mcp.server.mcpserver import Context, MCPServer
from mcp.server.streamable_http_manager import StreamableHTTPSessionManager
from pydantic import Field
from starlette.routing import BaseRoute

from flowplane import __version__
from flowplane.errors import FlowplaneError
from flowplane.mcp.backend import Backend, BackendProvider
from flowplane.mcp.tools import register_tools

__all__ = ["INSTRUCTIONS", "HttpEndpoint", "build_server", "http_endpoint", "run_stdio"]

INSTRUCTIONS = """\
Flowplane is a durable workflow engine. A workflow is a document of nodes, each of a
connector type with params; nodes run when the nodes they need have finished.
The loop: search_connectors (compact catalogue) -> describe_connector (params schema) ->
create_workflow (an empty draft is fine) -> edit_workflow with EditOps (read skipped_items,
validation_errors and summary; repair with more ops) -> start_run -> wait_for_run ->
approve/deny or send_signal when it waits -> describe_run / get_node_output.
Errors carry a stable code (forbidden, workflow_not_found, RUN_NOT_ACTIVE, ...)."""

BUILD_PROMPT = """\
Build a Flowplane workflow that does the following:

{description}

Steps:
1. Call search_connectors (detail=summary) and pick the node types you need; call
   describe_connector for each to read its params schema.
2. Call create_workflow with {{"name": "<a short kebab-case name>"}} (or an empty {{}} draft).
3. Call edit_workflow with "add" ops (node_id, type, params, needs). Read skipped_items,
   validation_errors and summary in the answer; send more ops until ok is true.
4. Call start_run, then wait_for_run. If it waits for an approval, ask me before approving.
5. Report the outputs (get_node_output) and the workflow id."""

REPAIR_PROMPT = """\
The Flowplane run {run_id} did not finish as expected. Repair it:

1. Call describe_run for {run_id}; find the failed nodes, their error and attempts.
2. Call get_run_logs (and get_node_output) for those nodes to see what happened.
3. Call get_workflow for its workflow and decide the smallest fix; apply it with
   edit_workflow (read skipped_items and validation_errors until ok is true).
4. Call fork_run from the first failed node with use_latest_version=true (or retry_run),
   then wait_for_run and diff_runs against {run_id}.
5. Explain what was wrong and what you changed."""


def _json_text(data: Any) -> str:
    return json.dumps(data, default=str, ensure_ascii=False, indent=2)


def build_server(provider: BackendProvider) -> MCPServer[Any]:
    """The MCP server: every tool, resource and prompt, each asking ``provider`` for the
    backend of the request it serves."""
    # The SDK configures the root logger when a server is made (logging.basicConfig with
    # its own handler); the process's logging is its own (``flowplane serve --log-level``).
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    server: MCPServer[Any] = MCPServer(
        "flowplane",
        title="Flowplane",
        version=__version__,
        instructions=INSTRUCTIONS,
        log_level="WARNING",
    )
    root.handlers[:] = handlers
    root.setLevel(level)
    register_tools(server, provider)
    _register_resources(server, provider)
    _register_prompts(server)
    return server


async def _read(provider: BackendProvider, ctx: Context, read: Any) -> str:
    backend: Backend = provider(ctx)
    try:
        return _json_text(await read(backend))
    except FlowplaneError as exc:
        return _json_text({"error": {"code": exc.code, "message": exc.detail}})


def _register_resources(server: MCPServer[Any], provider: BackendProvider) -> None:
    @server.resource(
        "flowplane://connectors/{detail}",
        name="connectors",
        title="Connector catalogue",
        description="Every connector type: detail=summary (type, name, category, "
        "description; compact) or detail=full (with params and output schemas).",
        mime_type="application/json",
    )
    async def connectors(detail: str, ctx: Context) -> str:
        return await _read(provider, ctx, lambda b: b.search_connectors(None, None, detail))

    @server.resource(
        "flowplane://workflows/{workflow_id}",
        name="workflow",
        title="Workflow document",
        description="A stored workflow with its current document and version.",
        mime_type="application/json",
    )
    async def workflow(workflow_id: str, ctx: Context) -> str:
        return await _read(provider, ctx, lambda b: b.get_workflow(workflow_id, None))

    @server.resource(
        "flowplane://runs/{run_id}",
        name="run",
        title="Run detail",
        description="A run's status, summary and every node run with its output.",
        mime_type="application/json",
    )
    async def run(run_id: str, ctx: Context) -> str:
        return await _read(provider, ctx, lambda b: b.describe_run(run_id))


def _register_prompts(server: MCPServer[Any]) -> None:
    @server.prompt(
        name="build_workflow",
        title="Build a workflow from a description",
        description="Design, create, validate and run a workflow that does what you describe.",
    )
    def build_workflow(
        description: Annotated[str, Field(description="What the workflow should do.")],
    ) -> str:
        return BUILD_PROMPT.format(description=description)

    @server.prompt(
        name="repair_run",
        title="Repair a failed run",
        description="Find why a run failed, fix the workflow with EditOps and run it again.",
    )
    def repair_run(run_id: Annotated[str, Field(description="The failed run's id.")]) -> str:
        return REPAIR_PROMPT.format(run_id=run_id)


async def run_stdio(backend: Backend) -> None:
    """Serve MCP over stdin/stdout with one backend until the client goes away."""
    await build_server(lambda _ctx: backend).run_stdio_async()


@dataclass(frozen=True)
class HttpEndpoint:
    """The MCP server over streamable HTTP, to route into another ASGI app.

    Attributes:
        route: the Starlette route serving ``path``.
        session_manager: it must run for the life of the app (:meth:`running`).
    """

    route: BaseRoute
    session_manager: StreamableHTTPSessionManager

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[None]:
        """Run the session manager for the life of the block, in a task of its own.

        Its task group must be entered and left by one task; an app's lifespan may start
        and stop in two (test harnesses that drive the lifespan from a fixture do).
        """
        started = asyncio.Event()
        stop = asyncio.Event()

        async def serve() -> None:
            async with self.session_manager.run():
                started.set()
                await stop.wait()

        # A context of its own: a request that starts it must not lend it its ids.
        task = asyncio.create_task(serve(), name="flowplane-mcp", context=contextvars.Context())
        ready = asyncio.create_task(started.wait())
        await asyncio.wait({task, ready}, return_when=asyncio.FIRST_COMPLETED)
        if task.done():
            ready.cancel()
            task.result()  # raise what stopped it
        try:
            yield
        finally:
            stop.set()
            await task


def http_endpoint(provider: BackendProvider, path: str = "/mcp") -> HttpEndpoint:
    """The MCP server over stateless streamable HTTP at ``path``.

    Stateless: every request stands alone (no session affinity, so any ``serve`` process
    behind a balancer can answer) and is authenticated on its own by the app it is routed
    into. The SDK's DNS-rebinding guard (meant for unauthenticated local servers) is not
    used: every request must carry the API's credentials.
    """
    server = build_server(provider)
    # Any non-local host: the guard would refuse the server's own public name.
    app = server.streamable_http_app(streamable_http_path=path, stateless_http=True, host="0.0.0.0")
    (route,) = (r for r in app.routes if getattr(r, "path", None) == path)
    return HttpEndpoint(route=route, session_manager=server.session_manager)
