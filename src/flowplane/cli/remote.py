"""Remote commands: ``flowplane workflows ...`` and ``flowplane runs ...`` through the client.

Every command takes ``--server`` and ``--token`` (or ``FLOWPLANE_URL`` / ``FLOWPLANE_TOKEN``)
and ``--json`` for machine-readable output. Errors from the server are printed with their
``code`` and exit with status 1 (2 for invalid input).
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from flowplane.cli._client import AsJson, Server, Token, remote
from flowplane.cli._common import (
    EXIT_FAILED,
    EXIT_INVALID,
    EXIT_OK,
    err_console,
    fail,
    read_input,
)
from flowplane.cli._output import (
    RUN_STYLES,
    STATUS_STYLES,
    error_message,
    print_json,
    print_table,
)

if TYPE_CHECKING:
    from flowplane.client import NodeState, RunDetail

workflows_app = typer.Typer(help="Manage workflows on a server.", no_args_is_help=True)
runs_app = typer.Typer(help="Inspect and steer runs on a server.", no_args_is_help=True)
console = Console(highlight=False)

RunId = Annotated[str, typer.Argument(help="Run id.")]


def _time(ms: int | None) -> str:
    if ms is None:
        return "-"
    return dt.datetime.fromtimestamp(ms / 1000).strftime("%Y-%m-%d %H:%M:%S")


def _seconds(ms: int | None) -> str:
    return "-" if ms is None else f"{ms / 1000:.1f}s"


def _status(status: str) -> str:
    style = RUN_STYLES.get(status) or STATUS_STYLES.get(status, ("", "", ""))[1] or "bold"
    return f"[{style}]{escape(status)}[/]"


def _dump(value: Any) -> Any:
    return value.model_dump(mode="json", by_alias=True) if hasattr(value, "model_dump") else value


def _emit(as_json: bool, value: Any, text: str) -> None:
    """Print ``value`` as JSON with ``--json``, else the human line ``text``."""
    if as_json:
        print_json(console, _dump(value))
    else:
        console.print(text)


def _read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except OSError as exc:
        fail(f"cannot read {path}: {exc.strerror or exc}", EXIT_INVALID)


# --- workflows --------------------------------------------------------------------------


@workflows_app.command("list")
def workflows_list(
    server: Server = None,
    token: Token = None,
    namespace: Annotated[list[str] | None, typer.Option(help="Only these namespaces.")] = None,
    limit: Annotated[int, typer.Option(min=1, max=500)] = 100,
    cursor: Annotated[str | None, typer.Option(help="Next-page cursor.")] = None,
    as_json: AsJson = False,
) -> None:
    """List stored workflows."""
    with remote(server, token) as fp:
        page = fp.list_workflows(namespace=namespace, limit=limit, cursor=cursor)
    if as_json:
        print_json(console, [_dump(w) for w in page.items])
        return
    table = Table("ID", "Namespace", "Name", "Version", "Updated", "Description")
    table.columns[0].no_wrap = True
    for wf in page.items:
        table.add_row(
            wf.id,
            wf.namespace,
            wf.name,
            str(wf.version),
            _time(wf.updated_at_ms),
            escape(wf.description[:60]),
        )
    print_table(console, table)
    if page.next_cursor:
        console.print(f"[dim]more: --cursor {page.next_cursor}[/]")


@workflows_app.command("apply")
def workflows_apply(
    file: Annotated[Path, typer.Argument(help="A workflow document (YAML or JSON).")],
    server: Server = None,
    token: Token = None,
    as_json: AsJson = False,
) -> None:
    """Create the workflow, or save a new version when one with its name exists (the
    document's ``namespace``, default ``default``); an equal document is left unchanged."""
    text = _read_text(file)
    with remote(server, token) as fp:
        result = fp.import_workflow(text)
        applied = [(item.action, fp.get_workflow(item.id)) for item in result.items]
    if as_json:
        data = [{"action": action, **_dump(wf)} for action, wf in applied]
        print_json(console, data[0] if len(data) == 1 else data)
        return
    for action, wf in applied:
        console.print(f"{action} {wf.name} ({wf.id}) version {wf.version}")


InputJson = Annotated[
    str | None, typer.Option("--input", "-i", help="The run input as JSON.", show_default=False)
]
InputFile = Annotated[
    Path | None,
    typer.Option(
        "--input-file",
        help="Read the run input from a JSON file ('-' for stdin).",
        show_default=False,
    ),
]
Watch = Annotated[bool, typer.Option("--watch", "-w", help="Follow the run live until it ends.")]


def started(fp: Any, run_id: str, line: str, watch: bool, as_json: bool, value: Any) -> None:
    """Report a run just started; with ``watch``, follow it and exit with its outcome."""
    if not watch:
        _emit(as_json, value, line)
        return
    from flowplane.cli._watch import watch_run

    if not as_json:
        console.print(line)
    run = watch_run(fp, run_id, console, as_json=as_json)
    raise typer.Exit(EXIT_OK if run.status == "finished" else EXIT_FAILED)


@workflows_app.command("run")
def workflows_run(
    workflow: Annotated[str, typer.Argument(help="Workflow id or name.")],
    input_json: InputJson = None,
    input_file: InputFile = None,
    namespace: Annotated[
        str | None, typer.Option("--namespace", "-n", help="Namespace of a name.")
    ] = None,
    idempotency_key: Annotated[
        str | None, typer.Option("--idempotency-key", help="Start at most one run per key.")
    ] = None,
    watch: Watch = False,
    server: Server = None,
    token: Token = None,
    as_json: AsJson = False,
) -> None:
    """Start a run of a stored workflow; with --watch follow it live (exit 0 when it
    finished, 1 otherwise)."""
    run_input = read_input(input_json, input_file)
    with remote(server, token) as fp:
        wf = fp.get_workflow(workflow, namespace=namespace)
        if watch and as_json:
            # Started and followed in one request: the events as JSON lines, as `runs watch`.
            from flowplane.cli._watch import print_events

            run_id = print_events(
                fp.start_and_stream(wf.id, input=run_input, idempotency_key=idempotency_key)
            )
            finished = run_id is not None and fp.get_run(run_id).status == "finished"
            raise typer.Exit(EXIT_OK if finished else EXIT_FAILED)
        run = fp.run_workflow(wf.id, input=run_input, idempotency_key=idempotency_key)
        line = f"Run {run.run_id} of {wf.name} v{wf.version}: {_status(run.status)}"
        started(fp, run.run_id, line, watch, as_json, run)


@workflows_app.command("export")
def workflows_export(
    workflow: Annotated[str, typer.Argument(help="Workflow id or name.")],
    server: Server = None,
    token: Token = None,
    format: Annotated[str, typer.Option("--format", help="yaml or json.")] = "yaml",
    output: Annotated[Path | None, typer.Option("--output", "-o", help="Write here.")] = None,
) -> None:
    """Print (or write) a workflow's document."""
    if format not in ("yaml", "json"):
        fail("--format must be yaml or json", EXIT_INVALID)
    with remote(server, token) as fp:
        text = fp.export_workflow(fp.get_workflow(workflow).id, format=format)
    if output is None:
        console.print(text, markup=False, highlight=False, end="" if text.endswith("\n") else "\n")
    else:
        output.write_text(text, encoding="utf-8")
        err_console.print(f"wrote {output}")


@workflows_app.command("patch")
def workflows_patch(
    workflow: Annotated[str, typer.Argument(help="Workflow id or name.")],
    ops_file: Annotated[Path, typer.Argument(help='EditOps: a list, or {"ops": [...]}.')],
    server: Server = None,
    token: Token = None,
    if_match: Annotated[int | None, typer.Option(help="Expected current version.")] = None,
    as_json: AsJson = False,
) -> None:
    """Apply EditOps; exits 1 when an op was skipped or the result is invalid."""
    from flowplane.model.yaml import load_document

    text = _read_text(ops_file)
    try:
        data: Any = json.loads(text)
    except json.JSONDecodeError:
        data = load_document(text, source=str(ops_file))
    ops = data.get("ops") if isinstance(data, dict) else data
    if not isinstance(ops, list):
        fail('the ops file must hold a list of ops or {"ops": [...]}', EXIT_INVALID)
    with remote(server, token) as fp:
        result = fp.patch_workflow(fp.get_workflow(workflow).id, ops, if_match=if_match)
    if as_json:
        print_json(console, _dump(result))
    else:
        style = "green" if result.ok else "yellow"
        console.print(f"[{style}]version {result.version}[/]: {escape(result.summary)}")
        for item in result.skipped_items:
            console.print(
                f"  [yellow]skipped[/] #{item.index} {escape(str(item.op))} "
                f"{escape(item.node_id or '')}: [{item.reason_code}] {escape(item.reason)}"
            )
        for issue in result.validation_errors:
            where = ".".join(p for p in (issue.node_id, issue.field) if p)
            console.print(f"  [red]invalid[/] {escape(where)}: {escape(issue.error)}")
    raise typer.Exit(EXIT_OK if result.ok else EXIT_FAILED)


# --- runs -------------------------------------------------------------------------------


@runs_app.command("list")
def runs_list(
    server: Server = None,
    token: Token = None,
    status: Annotated[list[str] | None, typer.Option(help="Only these statuses.")] = None,
    workflow: Annotated[str | None, typer.Option(help="Workflow name or id.")] = None,
    namespace: Annotated[list[str] | None, typer.Option(help="Only these namespaces.")] = None,
    limit: Annotated[int, typer.Option(min=1, max=500)] = 20,
    cursor: Annotated[str | None, typer.Option(help="Next-page cursor.")] = None,
    as_json: AsJson = False,
) -> None:
    """List runs, newest first."""
    with remote(server, token) as fp:
        page = fp.list_runs(
            status=status, workflow=workflow, namespace=namespace, limit=limit, cursor=cursor
        )
    if as_json:
        print_json(
            console, {"runs": [_dump(r) for r in page.items], "nextCursor": page.next_cursor}
        )
        return
    table = Table("Run", "Workflow", "Status", "Created", "Duration", "Trigger")
    table.columns[0].no_wrap = True
    for run in page.items:
        table.add_row(
            run.run_id,
            escape(run.workflow_name),
            _status(run.status),
            _time(run.created_at_ms),
            _seconds(run.duration_ms),
            run.trigger or "-",
        )
    print_table(console, table)
    if page.next_cursor:
        console.print(f"[dim]more: --cursor {page.next_cursor}[/]")


def _node_table(nodes: list[NodeState]) -> Table:
    table = Table("Node", "Iter", "State", "Attempts", "Duration", "Output / error")
    for node in nodes:
        detail = error_message(node.error) if node.error else json.dumps(node.output, default=str)
        table.add_row(
            escape(node.node_id),
            str(node.iteration),
            _status(node.status),
            str(node.attempt),
            _seconds(node.duration_ms),
            escape(detail[:80]) if node.output is not None or node.error else "",
        )
    return table


def _show(run: RunDetail) -> None:
    console.print(
        f"Run [bold]{run.run_id}[/] {escape(run.workflow_name)} "
        f"v{run.workflow_version or '-'}: {_status(run.status)} "
        f"({run.nodes_executed}/{run.nodes_total} nodes, {_seconds(run.duration_ms)})"
    )
    if run.error:
        console.print(f"[red]error:[/] {escape(error_message(run.error))}")
    console.print(_node_table(run.nodes))
    if run.node_runs_total is not None:
        console.print(
            f"[dim]{len(run.nodes)} of {run.node_runs_total:,} node runs; more: "
            f"flowplane runs nodes {run.run_id} --cursor {run.nodes_next_cursor}[/]"
        )
    if run.output is not None:
        console.print("Output:")
        print_json(console, run.output)


@runs_app.command("show")
def runs_show(
    run_id: RunId,
    server: Server = None,
    token: Token = None,
    as_json: AsJson = False,
) -> None:
    """Describe a run: status, every node's state, attempts, output and error."""
    with remote(server, token) as fp:
        run = fp.get_run(run_id)
    if as_json:
        data = _dump(run)
        if run.node_runs_total is None:  # only a capped detail carries them (as on the wire)
            data.pop("nodeRunsTotal", None)
            data.pop("nodesNextCursor", None)
        print_json(console, data)
    else:
        _show(run)


@runs_app.command("nodes")
def runs_nodes(
    run_id: RunId,
    server: Server = None,
    token: Token = None,
    limit: Annotated[int, typer.Option(min=1, max=1000)] = 100,
    cursor: Annotated[
        str | None, typer.Option(help="Next-page cursor (or the run's nodesNextCursor).")
    ] = None,
    as_json: AsJson = False,
) -> None:
    """List a run's node runs a page at a time (a big foreach's items)."""
    with remote(server, token) as fp:
        page = fp.get_run_nodes(run_id, cursor=cursor, limit=limit)
    if as_json:
        print_json(console, _dump(page))
        return
    console.print(_node_table(page.items))
    if page.next_cursor:
        console.print(f"[dim]more: --cursor {page.next_cursor}[/]")


@runs_app.command("logs")
def runs_logs(
    run_id: RunId,
    server: Server = None,
    token: Token = None,
    as_json: AsJson = False,
) -> None:
    """Print a run's log lines and attempts."""
    with remote(server, token) as fp:
        items = list(fp.iter_logs(run_id))
    if as_json:
        print_json(console, [_dump(i) for i in items])
        return
    for item in items:
        where = f"{item.node_id}[{item.iteration}]#{item.attempt}"
        if item.kind == "log":
            text = f"{escape(item.level or '')} {escape(item.message or '')}"
        else:
            failure = f": {error_message(item.error)}" if item.error else ""
            text = f"attempt {_status(item.status or '')}{escape(failure)}"
        console.print(f"[dim]{_time(item.ts_ms)}[/] {escape(where)} {text}")


@runs_app.command("watch")
def runs_watch(
    run_id: RunId,
    server: Server = None,
    token: Token = None,
    after_seq: Annotated[int, typer.Option(help="Start after this event seq.")] = 0,
    as_json: AsJson = False,
) -> None:
    """Follow a run live (the node table of `flowplane run`) until it ends; when a node waits,
    print the command that answers it. Exit 0 when it finished, 1 otherwise."""
    from flowplane.cli._watch import watch_run

    with remote(server, token) as fp:
        run = watch_run(fp, run_id, console, as_json=as_json, after_seq=after_seq)
    raise typer.Exit(EXIT_OK if run.status == "finished" else EXIT_FAILED)


@runs_app.command("cancel")
def runs_cancel(
    run_id: RunId,
    server: Server = None,
    token: Token = None,
    as_json: AsJson = False,
) -> None:
    """Cancel an active run."""
    with remote(server, token) as fp:
        run = fp.cancel(run_id)
    _emit(as_json, run, f"Run {run.run_id} {_status(run.status)}")


@runs_app.command("resume")
def runs_resume(
    run_id: RunId,
    server: Server = None,
    token: Token = None,
    as_json: AsJson = False,
) -> None:
    """Continue a failed or cancelled run, reusing the outputs it recorded."""
    with remote(server, token) as fp:
        run = fp.resume(run_id)
    _emit(as_json, run, f"Run {run.run_id} resumed: {_status(run.status)}")


@runs_app.command("retry")
def runs_retry(
    run_id: RunId,
    server: Server = None,
    token: Token = None,
    latest: Annotated[bool, typer.Option("--latest", help="Use the latest version.")] = False,
    as_json: AsJson = False,
) -> None:
    """Start a new run with the same input."""
    with remote(server, token) as fp:
        run = fp.retry(run_id, use_latest_version=latest)
    line = f"Run {run.run_id} started (retry of {run_id}): {_status(run.status)}"
    _emit(as_json, run, line)


@runs_app.command("delete")
def runs_delete(
    run_ids: Annotated[list[str], typer.Argument(help="The run ids.")],
    server: Server = None,
    token: Token = None,
) -> None:
    """Delete settled runs with their history (editor; active runs are refused)."""
    with remote(server, token) as fp:
        for run_id in run_ids:
            fp.delete_run(run_id)
            print(f"Run {run_id} deleted")


def register(app: typer.Typer) -> None:
    """Add the ``workflows`` and ``runs`` command groups."""
    app.add_typer(workflows_app, name="workflows")
    app.add_typer(runs_app, name="runs")
