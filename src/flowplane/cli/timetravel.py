"""Time travel on a server: ``flowplane runs frames|rewind|fork|diff``.

Frames are the committed snapshots of a run's node states; ``rewind`` resets a run to one
and re-executes what follows; ``fork`` starts a new run reusing the outputs recorded before
a frame or a node; ``diff`` compares two runs node by node.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from flowplane.cli._client import AsJson, Server, Token, remote
from flowplane.cli._common import EXIT_INVALID, fail, read_input
from flowplane.cli._output import print_json, print_table
from flowplane.cli.remote import (
    InputFile,
    InputJson,
    RunId,
    Watch,
    _dump,
    _status,
    console,
    runs_app,
    started,
)


@runs_app.command("frames")
def runs_frames(
    run_id: RunId,
    after: Annotated[
        int | None, typer.Option("--after", help="Only frames after this one.")
    ] = None,
    limit: Annotated[int, typer.Option(min=1, max=1000)] = 100,
    server: Server = None,
    token: Token = None,
    as_json: AsJson = False,
) -> None:
    """List a run's frames: what each committed transition changed (for rewind and fork)."""
    with remote(server, token) as fp:
        frames = fp.get_frames(run_id, after_frame_no=after, limit=limit)
    if as_json:
        print_json(console, [_dump(f) for f in frames])
        return
    table = Table("Frame", "Seq", "Time", "Changes")
    for frame in frames:
        when = dt.datetime.fromtimestamp(frame.timestamp_ms / 1000).strftime("%H:%M:%S.%f")[:-3]
        changes = ", ".join(
            f"{c.get('nodeId')}[{c.get('iteration')}] → {c.get('status')}" for c in frame.changes
        )
        table.add_row(str(frame.frame_no), str(frame.seq or "-"), when, escape(changes))
    print_table(console, table)


@runs_app.command("rewind")
def runs_rewind(
    run_id: RunId,
    frame: Annotated[int, typer.Argument(help="The frame to go back to (see `runs frames`).")],
    watch: Watch = False,
    server: Server = None,
    token: Token = None,
    as_json: AsJson = False,
) -> None:
    """Reset a run to a frame and re-execute what follows (admin or the run's starter)."""
    with remote(server, token) as fp:
        run = fp.rewind(run_id, frame)
        line = f"Run {run.run_id} rewound to frame {frame}: {_status(run.status)}"
        started(fp, run.run_id, line, watch, as_json, run)


@runs_app.command("fork")
def runs_fork(
    run_id: RunId,
    frame: Annotated[
        int | None, typer.Option("--frame", help="Reuse the outputs recorded before this frame.")
    ] = None,
    from_node: Annotated[
        str | None, typer.Option("--from-node", help="Re-run this node and what follows it.")
    ] = None,
    input_json: InputJson = None,
    input_file: InputFile = None,
    latest: Annotated[bool, typer.Option("--latest", help="Use the latest version.")] = False,
    watch: Watch = False,
    server: Server = None,
    token: Token = None,
    as_json: AsJson = False,
) -> None:
    """Start a new run from a run's recorded outputs (before --frame or --from-node)."""
    if frame is None and from_node is None:
        fail("give --frame or --from-node", EXIT_INVALID)
    run_input = read_input(input_json, input_file)
    with remote(server, token) as fp:
        run = fp.fork(
            run_id, frame_no=frame, from_node=from_node, input=run_input, use_latest_version=latest
        )
        line = f"Run {run.run_id} forked from {run_id}: {_status(run.status)}"
        started(fp, run.run_id, line, watch, as_json, run)


@runs_app.command("diff")
def runs_diff(
    run_id: RunId,
    other_run_id: Annotated[str, typer.Argument(help="The run to compare with (e.g. a fork).")],
    show_all: Annotated[bool, typer.Option("--all", help="Also list unchanged nodes.")] = False,
    server: Server = None,
    token: Token = None,
    as_json: AsJson = False,
) -> None:
    """Compare two runs node by node: status and output."""
    with remote(server, token) as fp:
        diff = fp.diff(run_id, other_run_id)
    if as_json:
        print_json(console, _dump(diff))
        return
    flags = [
        name
        for name, changed in (
            ("input", diff.input_changed),
            ("version", diff.version_changed),
            ("status", diff.status_changed),
        )
        if changed
    ]
    console.print(
        f"{diff.run_id} vs {diff.other_run_id}: "
        f"{len(diff.changed_nodes)} changed node(s)"
        + (f"; changed: {', '.join(flags)}" if flags else "")
    )
    table = Table("Node", "Iter", "Original", "Other", "Changed")
    for node in diff.nodes:
        if not (node.changed or show_all):
            continue
        table.add_row(
            escape(node.node_id),
            str(node.iteration),
            _status(node.original.status) if node.original else "-",
            _status(node.other.status) if node.other else "-",
            "yes" if node.changed else "",
        )
    print_table(console, table)


def register(app: typer.Typer) -> None:
    """The commands join ``flowplane runs`` (registered by :mod:`flowplane.cli.remote`)."""
