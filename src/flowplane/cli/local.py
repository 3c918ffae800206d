"""Local commands: ``run`` a workflow file, and ``approve``, ``deny`` or ``signal`` a run.

``approve``, ``deny`` and ``signal`` work on the database directly (the one ``flowplane run``
or ``flowplane serve`` uses), or through a server's HTTP API with ``--server URL`` (or
``FLOWPLANE_URL``).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape

from flowplane.cli._client import remote
from flowplane.cli._common import (
    build_registry,
    build_settings,
    local_actor,
    parse_json,
    read_input,
    run_on_store,
)

if TYPE_CHECKING:
    from flowplane.services.caller import Caller
    from flowplane.services.runs import RunService

DatabaseUrl = Annotated[
    str | None,
    typer.Option(
        "--database-url",
        help="Database URL (default: FLOWPLANE_DATABASE_URL or sqlite:///./flowplane.db).",
        show_default=False,
    ),
]
DatabaseSchema = Annotated[
    str | None,
    typer.Option(
        "--database-schema",
        help="PostgreSQL schema (default: FLOWPLANE_DATABASE_SCHEMA or flowplane).",
        show_default=False,
    ),
]
Plugins = Annotated[
    list[str] | None,
    typer.Option("--plugin", help="Import connectors from this module (repeatable)."),
]
Server = Annotated[
    str | None,
    typer.Option(
        "--server",
        envvar="FLOWPLANE_URL",
        help="Talk to this Flowplane server instead of the database.",
        show_default=False,
    ),
]
Token = Annotated[
    str | None,
    typer.Option(
        "--token", envvar="FLOWPLANE_TOKEN", help="API key for --server.", show_default=False
    ),
]


def run_command(
    file: Annotated[Path, typer.Argument(help="The workflow file (YAML or JSON).")],
    input_json: Annotated[
        str | None,
        typer.Option("--input", "-i", help="The run input as JSON.", show_default=False),
    ] = None,
    input_file: Annotated[
        Path | None,
        typer.Option(
            "--input-file",
            help="Read the run input from a JSON file ('-' for stdin).",
            show_default=False,
        ),
    ] = None,
    database_url: DatabaseUrl = None,
    database_schema: DatabaseSchema = None,
    root: Annotated[
        Path | None,
        typer.Option(
            "--root",
            help="Folder for flow.run paths (default: FLOWPLANE_ROOT, else the file's folder).",
            show_default=False,
        ),
    ] = None,
    plugin: Plugins = None,
    as_json: Annotated[
        bool,
        typer.Option("--json", help="Print events as JSON lines instead of the live view."),
    ] = False,
    serve: Annotated[
        bool,
        typer.Option(
            "--serve",
            help="Also serve this run over HTTP (status, events, frames, approve/deny, "
            "cancel) and keep serving after it ends, until Ctrl-C.",
        ),
    ] = False,
    host: Annotated[str, typer.Option("--host", help="Bind address for --serve.")] = "127.0.0.1",
    port: Annotated[
        int,
        typer.Option("--port", min=0, max=65535, help="Port for --serve (0 = any free one)."),
    ] = 7331,
) -> None:
    """Run a workflow file with live node-by-node progress, then print its outputs.

    With ``--serve`` the run is also served over HTTP; every route but ``/health`` needs
    the key (``FLOWPLANE_ADMIN_KEY``, else one printed once on stderr).

    Exit status: 0 finished, 1 failed, cancelled or timed out, 2 invalid workflow or
    input, 130 interrupted (Ctrl-C cancels the run).
    """
    import asyncio

    from flowplane.cli._runner import RunOptions, run_workflow

    run_input = read_input(input_json, input_file)
    if root is None and not os.environ.get("FLOWPLANE_ROOT"):
        root = file.resolve().parent
    settings = build_settings(database_url=database_url, database_schema=database_schema, root=root)
    registry = build_registry(plugin)
    options = RunOptions(
        path=file,
        run_input=run_input,
        settings=settings,
        registry=registry,
        json_mode=as_json,
        interactive=_stdin_is_tty(),
    )
    console = Console(highlight=False, soft_wrap=True)
    if serve:
        from flowplane.cli._serve_run import serve_workflow

        raise typer.Exit(asyncio.run(serve_workflow(options, console, host=host, port=port)))
    raise typer.Exit(asyncio.run(run_workflow(options, console)))


def _stdin_is_tty() -> bool:
    try:
        return sys.stdin is not None and sys.stdin.isatty()
    except (ValueError, OSError):
        return False


# --- approve / deny / signal --------------------------------------------------------------


def _on_runs(
    database_url: str | None,
    database_schema: str | None,
    action: Callable[[RunService, Caller], Any],
) -> Any:
    """Run ``action`` with a :class:`RunService` on the configured database, acting as the
    process itself (the local CLI is not an API caller)."""
    from flowplane.services.caller import Caller
    from flowplane.services.runs import RunService

    settings = build_settings(database_url=database_url, database_schema=database_schema)
    return run_on_store(settings, lambda store: action(RunService(store), Caller.system()))


def _decide(
    approved: bool,
    run_id: str,
    node_id: str,
    iteration: int,
    note: str | None,
    by: str | None,
    server: str | None,
    token: str | None,
    database_url: str | None,
    database_schema: str | None,
) -> None:
    verb = "approved" if approved else "denied"
    if server:
        with remote(server, token) as fp:
            decide = fp.approve if approved else fp.deny
            decide(run_id, node_id, iteration=iteration, note=note)
    else:
        _on_runs(
            database_url,
            database_schema,
            lambda runs, caller: runs.decide(
                caller,
                run_id,
                node_id,
                approved=approved,
                iteration=iteration,
                note=note,
                by=by or local_actor(),
            ),
        )
    where = f" (iteration {iteration})" if iteration else ""
    Console(highlight=False).print(
        f"{'[green]✓[/]' if approved else '[red]✗[/]'} node {escape(node_id)!r}{where} of run "
        f"{escape(run_id)} {verb}"
    )


RunId = Annotated[str, typer.Argument(help="The run id.")]
NodeId = Annotated[str, typer.Argument(help="The node waiting for approval.")]
# The range of flowplane.model.bounds.Iteration (not imported: the CLI starts without pydantic).
Iteration = Annotated[
    int,
    typer.Option("--iteration", min=0, max=2**31 - 1, help="The foreach iteration of the node."),
]
Note = Annotated[
    str | None, typer.Option("--note", help="A note for the record.", show_default=False)
]
By = Annotated[
    str | None,
    typer.Option(
        "--by", help="Who decides (local mode; default: cli:<login>).", show_default=False
    ),
]


def approve_command(
    run_id: RunId,
    node_id: NodeId,
    iteration: Iteration = 0,
    note: Note = None,
    by: By = None,
    server: Server = None,
    token: Token = None,
    database_url: DatabaseUrl = None,
    database_schema: DatabaseSchema = None,
) -> None:
    """Approve a node waiting for approval."""
    _decide(
        True, run_id, node_id, iteration, note, by, server, token, database_url, database_schema
    )


def deny_command(
    run_id: RunId,
    node_id: NodeId,
    iteration: Iteration = 0,
    note: Note = None,
    by: By = None,
    server: Server = None,
    token: Token = None,
    database_url: DatabaseUrl = None,
    database_schema: DatabaseSchema = None,
) -> None:
    """Deny a node waiting for approval."""
    _decide(
        False, run_id, node_id, iteration, note, by, server, token, database_url, database_schema
    )


def signal_command(
    run_id: RunId,
    name: Annotated[str, typer.Argument(help="The signal name (what wait.signal waits for).")],
    payload: Annotated[
        str | None,
        typer.Option("--payload", "-p", help="The payload as JSON.", show_default=False),
    ] = None,
    correlation_id: Annotated[
        str | None,
        typer.Option("--correlation-id", help="Match a wait.signal correlation id."),
    ] = None,
    server: Server = None,
    token: Token = None,
    database_url: DatabaseUrl = None,
    database_schema: DatabaseSchema = None,
) -> None:
    """Send a signal to a run (it completes a matching wait.signal node, now or later)."""
    value = parse_json(payload, "--payload") if payload is not None else None
    result: Any
    if server:
        with remote(server, token) as fp:
            result = fp.signal(run_id, name, payload=value, correlation_id=correlation_id)
    else:
        result = _on_runs(
            database_url,
            database_schema,
            lambda runs, caller: runs.signal(caller, run_id, name, value, correlation_id),
        )
    if isinstance(result, dict):  # local mode
        delivered, node = result.get("delivered"), result.get("nodeId")
    else:  # the client's SignalResult
        delivered, node = getattr(result, "delivered", None), getattr(result, "node_id", None)
    console = Console(highlight=False)
    if delivered:
        console.print(f"[green]✓[/] signal {name!r} delivered to node {node!r} of run {run_id}")
    elif delivered is False:
        console.print(f"signal {name!r} stored for run {run_id}: no node waits for it yet")
    else:
        console.print(f"signal {name!r} sent to run {run_id}")


def register(app: typer.Typer) -> None:
    """Add ``run``, ``approve``, ``deny`` and ``signal``."""
    app.command("run")(run_command)
    app.command("approve")(approve_command)
    app.command("deny")(deny_command)
    app.command("signal")(signal_command)
