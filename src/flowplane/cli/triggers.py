"""``flowplane triggers ...``: webhook triggers on a server, through the client."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape
from rich.table import Table

from flowplane.cli._client import AsJson, Server, Token, remote
from flowplane.cli._output import print_json, print_table
from flowplane.cli.remote import _dump, _emit, console

if TYPE_CHECKING:
    from flowplane.client import Trigger

triggers_app = typer.Typer(help="Webhook triggers on a server.", no_args_is_help=True)

TriggerId = Annotated[str, typer.Argument(help="Trigger id.")]


def _line(trigger: Trigger) -> str:
    what = f"signal {trigger.signal_name!r}" if trigger.kind == "signal" else "run"
    signed = f"signed ({trigger.scheme})" if trigger.has_secret else "unsigned"
    return f"trigger {trigger.id}: POST {trigger.url} -> {what}, {signed}"


@triggers_app.command("list")
def triggers_list(
    namespace: Annotated[list[str] | None, typer.Option(help="Only these namespaces.")] = None,
    workflow_id: Annotated[str | None, typer.Option(help="Only this workflow's.")] = None,
    limit: Annotated[int, typer.Option(min=1, max=500)] = 100,
    cursor: Annotated[str | None, typer.Option(help="Next-page cursor.")] = None,
    server: Server = None,
    token: Token = None,
    as_json: AsJson = False,
) -> None:
    """List webhook triggers."""
    with remote(server, token) as fp:
        page = fp.list_triggers(
            namespace=namespace, workflow_id=workflow_id, limit=limit, cursor=cursor
        )
    if as_json:
        print_json(
            console, {"items": [_dump(t) for t in page.items], "nextCursor": page.next_cursor}
        )
        return
    table = Table("ID", "URL", "Kind", "Scheme", "Enabled", "Owner")
    table.columns[0].no_wrap = True
    table.columns[1].no_wrap = True
    for t in page.items:
        table.add_row(
            t.id,
            t.url,
            t.kind,
            t.scheme if t.has_secret else "none",
            "yes" if t.enabled else "no",
            t.owner,
        )
    print_table(console, table)
    if page.next_cursor:
        console.print(f"[dim]more: --cursor {page.next_cursor}[/]")


@triggers_app.command("show")
def triggers_show(
    trigger_id: TriggerId, server: Server = None, token: Token = None, as_json: AsJson = False
) -> None:
    """Describe a trigger."""
    with remote(server, token) as fp:
        trigger = fp.get_trigger(trigger_id)
    _emit(as_json, trigger, escape(_line(trigger)))


@triggers_app.command("create")
def triggers_create(
    workflow: Annotated[str, typer.Argument(help="Workflow name (or id with --by-id).")],
    key: Annotated[
        str | None, typer.Option("--key", help="The URL key (default: a random one).")
    ] = None,
    namespace: Annotated[str | None, typer.Option("--namespace", "-n")] = None,
    signal: Annotated[
        str | None,
        typer.Option("--signal", help="Signal the waiting runs instead of starting one."),
    ] = None,
    correlation: Annotated[
        str | None,
        typer.Option("--correlation", help="With --signal: which runs (a template)."),
    ] = None,
    scheme: Annotated[
        str | None, typer.Option("--scheme", help="Signatures: standard, github or stripe.")
    ] = None,
    secret_stdin: Annotated[
        bool, typer.Option("--secret-stdin", help="Read the signing secret from stdin.")
    ] = False,
    by_id: Annotated[bool, typer.Option("--by-id", help="WORKFLOW is an id.")] = False,
    server: Server = None,
    token: Token = None,
    as_json: AsJson = False,
) -> None:
    """Create a webhook trigger: POST /v1/webhooks/KEY starts (or signals) runs."""
    secret = sys.stdin.read().strip() if secret_stdin else None
    with remote(server, token) as fp:
        trigger = fp.create_trigger(
            workflow=None if by_id else workflow,
            workflow_id=workflow if by_id else None,
            namespace=namespace,
            key=key,
            kind="signal" if signal else None,
            signal_name=signal,
            correlation=correlation,
            scheme=scheme,
            secret=secret or None,
        )
    _emit(as_json, trigger, "created " + escape(_line(trigger)))


@triggers_app.command("delete")
def triggers_delete(trigger_id: TriggerId, server: Server = None, token: Token = None) -> None:
    """Delete a trigger."""
    with remote(server, token) as fp:
        fp.delete_trigger(trigger_id)
    console.print(f"deleted trigger {trigger_id}")


def register(app: typer.Typer) -> None:
    """Add ``flowplane triggers``."""
    app.add_typer(triggers_app, name="triggers")
