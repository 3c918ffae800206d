"""``flowplane kv ...``: the key-value store of a namespace on a server, through the client."""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from flowplane.cli._client import AsJson, Server, Token, remote
from flowplane.cli._common import parse_json
from flowplane.cli._output import print_json, print_table
from flowplane.cli.remote import _dump, _emit, console

kv_app = typer.Typer(help="Key-value entries on a server.", no_args_is_help=True)

Namespace = Annotated[str, typer.Argument(help="The namespace.")]
Key = Annotated[str, typer.Argument(help="The key.")]
IfMatch = Annotated[
    int | None, typer.Option("--if-match", help="Only if the entry is at this version.")
]


@kv_app.command("list")
def kv_list(
    namespace: Namespace,
    prefix: Annotated[str | None, typer.Option("--prefix", help="Only keys under it.")] = None,
    limit: Annotated[int, typer.Option(min=1, max=500)] = 100,
    cursor: Annotated[str | None, typer.Option(help="Next-page cursor.")] = None,
    server: Server = None,
    token: Token = None,
    as_json: AsJson = False,
) -> None:
    """List a namespace's entries, by key."""
    with remote(server, token) as fp:
        page = fp.list_kv(namespace, prefix=prefix, limit=limit, cursor=cursor)
    if as_json:
        print_json(
            console, {"items": [_dump(e) for e in page.items], "nextCursor": page.next_cursor}
        )
        return
    table = Table("Key", "Version", "Value")
    table.columns[0].no_wrap = True
    for entry in page.items:
        text = json.dumps(entry.value, default=str)
        table.add_row(escape(entry.key), str(entry.version), escape(text[:80]))
    print_table(console, table)
    if page.next_cursor:
        console.print(f"[dim]more: --cursor {page.next_cursor}[/]")


@kv_app.command("get")
def kv_get(
    namespace: Namespace,
    key: Key,
    server: Server = None,
    token: Token = None,
    as_json: AsJson = False,
) -> None:
    """Print an entry's value (JSON)."""
    with remote(server, token) as fp:
        entry = fp.get_kv(namespace, key)
    print_json(console, _dump(entry) if as_json else entry.value)


@kv_app.command("set")
def kv_set(
    namespace: Namespace,
    key: Key,
    value: Annotated[str, typer.Argument(help="The value as JSON (a bare word is a string).")],
    ttl: Annotated[
        float | None, typer.Option("--ttl", help="Expire after this many seconds.")
    ] = None,
    if_match: IfMatch = None,
    server: Server = None,
    token: Token = None,
    as_json: AsJson = False,
) -> None:
    """Create or replace an entry (compare-and-set with --if-match)."""
    stripped = value.lstrip()
    if stripped.startswith(("{", "[", '"')) or stripped in ("true", "false", "null"):
        data = parse_json(value, "VALUE")
    else:
        try:
            data = json.loads(value)  # a number
        except json.JSONDecodeError:
            data = value  # a bare word is a string
    with remote(server, token) as fp:
        entry = fp.put_kv(namespace, key, data, ttl_seconds=ttl, if_match=if_match)
    _emit(as_json, entry, f"{escape(namespace)}/{escape(key)} = version {entry.version}")


@kv_app.command("delete")
def kv_delete(
    namespace: Namespace,
    key: Key,
    if_match: IfMatch = None,
    server: Server = None,
    token: Token = None,
) -> None:
    """Delete an entry."""
    with remote(server, token) as fp:
        fp.delete_kv(namespace, key, if_match=if_match)
    console.print(f"deleted {escape(namespace)}/{escape(key)}")


def register(app: typer.Typer) -> None:
    """Add ``flowplane kv``."""
    app.add_typer(kv_app, name="kv")
