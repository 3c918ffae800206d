"""``flowplane mcp``: the MCP server over stdio, for desktop agents and IDEs.

With ``--server`` (or ``FLOWPLANE_URL``) it acts on that Flowplane server through the
Python client, as the key given by ``--token`` (or ``FLOWPLANE_TOKEN``): the server's roles
and namespaces apply. Without it, it acts on a local database through the services, as the
command line (an admin), and runs ``--workers`` worker loops so that runs it starts make
progress. stdout carries the protocol; logs go to stderr.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from flowplane.cli._client import Server, Token
from flowplane.cli._common import build_registry, build_settings, err_console, setup_logging
from flowplane.cli.local import DatabaseSchema, DatabaseUrl, Plugins

if TYPE_CHECKING:
    from flowplane.settings import Settings


def mcp_command(
    server: Server = None,
    token: Token = None,
    database_url: DatabaseUrl = None,
    database_schema: DatabaseSchema = None,
    plugin: Plugins = None,
    workers: Annotated[
        int,
        typer.Option(
            "--workers",
            min=0,
            max=64,
            help="Worker loops on a local database (0: only act on it; another process runs).",
        ),
    ] = 1,
    log_level: Annotated[str, typer.Option("--log-level", help="Log level (stderr).")] = "warning",
) -> None:
    """Serve the Model Context Protocol over stdio (see docs/mcp.md).

    Acts on ``--server`` through its API, or on the local database (as an admin).
    """
    import asyncio

    setup_logging(log_level)
    if server:
        asyncio.run(_remote(server, token))
        return
    if token:
        err_console.print("[yellow]warning:[/] no --server: the token is not used")
    settings = build_settings(database_url=database_url, database_schema=database_schema)
    asyncio.run(_local(settings, plugin, workers))


async def _remote(server: str, token: str | None) -> None:
    from flowplane.client import AsyncClient
    from flowplane.mcp import ClientBackend, run_stdio

    async with AsyncClient(server, token=token) as client:
        await run_stdio(ClientBackend(client))


async def _local(settings: Settings, plugins: list[str] | None, workers: int) -> None:
    import asyncio
    import contextlib

    from flowplane.api.mcp_backend import ServicesBackend
    from flowplane.mcp import run_stdio
    from flowplane.services.auth import LOCAL
    from flowplane.services.container import open_services

    async with open_services(settings, build_registry(plugins)) as services:
        loops = [services.new_worker() for _ in range(workers)]
        tasks = [asyncio.create_task(w.run(), name="flowplane-worker") for w in loops]
        try:
            await run_stdio(ServicesBackend(services, LOCAL))
        finally:
            for worker in loops:
                with contextlib.suppress(Exception):
                    await worker.stop()
            await asyncio.gather(*tasks, return_exceptions=True)


def register(app: typer.Typer) -> None:
    """Add ``flowplane mcp``."""
    app.command("mcp")(mcp_command)
