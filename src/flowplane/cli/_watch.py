"""Following a run on a server: the live node table of ``flowplane run``, fed by the client.

``flowplane runs watch``, ``flowplane workflows run --watch`` and the fork, rewind and
schedule commands with ``--watch`` show the same view: one row per node run, updated in place
on a terminal (one line per change elsewhere), and, when a node waits for a person or a
signal, the command that answers it.
"""

from __future__ import annotations

import json
import shlex
import time
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.markup import escape

from flowplane.cli._output import ProgressView, print_result

if TYPE_CHECKING:
    from flowplane.client import Client, Event, RunDetail


def _document(fp: Client, run: RunDetail) -> dict[str, Any]:
    """The run's pinned document (its workflow revision), else one built from its nodes."""
    from flowplane.errors import FlowplaneError

    if run.workflow_id and run.workflow_version:
        try:
            document = fp.get_revision(run.workflow_id, run.workflow_version).document
        except FlowplaneError:
            document = None
        if document:
            return document
    seen: dict[str, None] = {}
    for node in run.nodes:
        seen.setdefault(node.node_id)
    return {"name": run.workflow_name, "nodes": [{"id": node_id} for node_id in seen]}


def answer_commands(server: str, event: dict[str, Any]) -> list[str]:
    """The commands that answer a waiting node (``[]`` for other events)."""
    run_id, node_id = str(event.get("runId")), str(event.get("nodeId"))
    iteration = int(event.get("iteration") or 0)
    where = f" --server {shlex.quote(server)}"
    target = f"{shlex.quote(run_id)} {shlex.quote(node_id)}"
    if iteration > 0:
        target += f" --iteration {iteration}"
    if event.get("type") == "NodeWaitingApproval":
        return [f"flowplane approve {target}{where}", f"flowplane deny {target}{where}"]
    if event.get("type") == "NodeWaitingEvent" and event.get("signal"):
        correlation = event.get("correlationId")
        extra = f" --correlation-id {shlex.quote(str(correlation))}" if correlation else ""
        name = shlex.quote(str(event["signal"]))
        return [f"flowplane signal {shlex.quote(run_id)} {name} --payload '{{}}'{extra}{where}"]
    return []


def _hint(view: ProgressView, server: str, event: dict[str, Any]) -> None:
    commands = answer_commands(server, event)
    if not commands:
        return
    node = event.get("nodeId")
    if event.get("type") == "NodeWaitingApproval":
        what = f"Node {node!r} waits for approval: {event.get('title', '')}"
    else:
        what = f"Node {node!r} waits for the signal {event.get('signal')!r}"
    view.message(f"[magenta]{escape(what)}[/]")
    view.message("Answer with:")
    for command in commands:
        view.message(f"  {escape(command)}")


def _still_waiting(run: RunDetail) -> list[dict[str, Any]]:
    """Synthetic wait events for the nodes waiting now (to print how to answer them)."""
    out = []
    for node in run.nodes:
        wait = node.wait if isinstance(node.wait, dict) else {}
        if node.status == "waiting-approval":
            kind = "NodeWaitingApproval"
        elif node.status == "waiting-event" and wait.get("kind") == "signal":
            kind = "NodeWaitingEvent"
        else:
            continue
        out.append(
            {
                "type": kind,
                "runId": run.run_id,
                "nodeId": node.node_id,
                "iteration": node.iteration,
                "title": wait.get("title", ""),
                "signal": wait.get("name"),
                "correlationId": wait.get("correlationId"),
            }
        )
    return out


def print_events(events: Iterable[Event]) -> str | None:
    """Print each event (but frames) as one JSON line; return the run's id (``None`` when
    there was no event)."""
    run_id: str | None = None
    for event in events:
        run_id = event.run_id
        if event.type != "FrameCommitted":
            print(json.dumps(event.model_dump(mode="json", by_alias=True)), flush=True)
    return run_id


def watch_run(
    fp: Client, run_id: str, console: Console, *, as_json: bool = False, after_seq: int = 0
) -> RunDetail:
    """Follow ``run_id`` until it is terminal and return its final detail.

    With ``as_json`` each event is printed as one JSON line; otherwise the live table, the
    commands that answer a waiting node, and the run's result.
    """
    if as_json:
        print_events(fp.stream_events(run_id, after_seq=after_seq))
        return fp.get_run(run_id)
    # Waits older than this are answered from the run's state below; newer ones from their
    # event (a wait in between is in both: its hint is printed once).
    since_ms = int(time.time() * 1000)
    run = fp.get_run(run_id)
    view = ProgressView(console, live=console.is_terminal)
    view.add_run(run_id, _document(fp, run))
    view.start()
    try:
        hinted: set[tuple[Any, ...]] = set()
        for waiting in _still_waiting(run):
            hinted.add(_wait_key(waiting))
            _hint(view, fp.base_url, waiting)
        for event in fp.stream_events(run_id, after_seq=after_seq):
            data = _event_data(event)
            view.handle(data)
            if event.timestamp_ms < since_ms:
                continue
            if _wait_key(data) in hinted:
                hinted.discard(_wait_key(data))
            else:
                _hint(view, fp.base_url, data)
    finally:
        view.stop()
    final = fp.get_run(run_id)
    print_result(
        console,
        {
            "id": final.run_id,
            "status": final.status,
            "error": final.error,
            "output": final.output,
            "started_at_ms": final.started_at_ms,
            "finished_at_ms": final.finished_at_ms,
        },
    )
    return final


def _wait_key(event: dict[str, Any]) -> tuple[Any, ...]:
    return (event.get("type"), event.get("nodeId"), int(event.get("iteration") or 0))


def _event_data(event: Event) -> dict[str, Any]:
    data: dict[str, Any] = event.model_dump(mode="json", by_alias=True)
    return data
