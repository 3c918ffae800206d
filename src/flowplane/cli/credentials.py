"""``flowplane credentials ...``: credentials on a server (admin), through the client.

Values are write-only: ``set`` reads one from stdin or a prompt, and nothing prints it back.
(``flowplane secrets`` does the same on the database directly, and rotates master keys.)
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape
from rich.table import Table

from flowplane.cli._client import AsJson, Server, Token, remote
from flowplane.cli._common import EXIT_INVALID, err_console, fail
from flowplane.cli._output import print_json, print_table
from flowplane.cli.remote import _dump, console

if TYPE_CHECKING:
    from flowplane.client import Client

credentials_app = typer.Typer(help="Credentials on a server (admin).", no_args_is_help=True)

Name = Annotated[str, typer.Argument(help="The credential name (used as ${NAME}).")]
Namespace = Annotated[str, typer.Option("--namespace", "-n")]


@credentials_app.command("list")
def credentials_list(
    namespace: Annotated[list[str] | None, typer.Option(help="Only these namespaces.")] = None,
    server: Server = None,
    token: Token = None,
    as_json: AsJson = False,
) -> None:
    """List credentials (names and metadata, never values)."""
    with remote(server, token) as fp:
        items = list(fp.paginate(fp.list_credentials, namespace=namespace))
    if as_json:
        print_json(console, [_dump(c) for c in items])
        return
    table = Table("ID", "Namespace", "Name", "Type", "Version", "Template use")
    table.columns[0].no_wrap = True
    for c in items:
        table.add_row(c.id, c.namespace, escape(c.name), c.type, str(c.version), c.template_use)
    print_table(console, table)


@credentials_app.command("set")
def credentials_set(
    name: Name,
    namespace: Namespace = "default",
    type_: Annotated[str | None, typer.Option("--type", help="The credential type.")] = None,
    description: Annotated[str | None, typer.Option("--description")] = None,
    value_stdin: Annotated[
        bool, typer.Option("--value-stdin", help="Read the value from stdin.")
    ] = False,
    server: Server = None,
    token: Token = None,
) -> None:
    """Store a credential, or replace its value (read from stdin or a prompt)."""
    from flowplane.errors import CredentialExists

    if value_stdin or not sys.stdin.isatty():
        value = sys.stdin.read().removesuffix("\n")
    else:
        value = typer.prompt(f"Value of {name}", hide_input=True)
    if not value:
        fail("the value is empty", EXIT_INVALID)
    with remote(server, token) as fp:
        try:
            fp.create_credential(
                name, value, namespace=namespace, type=type_, description=description
            )
            outcome = "created"
        except CredentialExists:
            found = _find(fp, namespace, name)
            fp.update_credential(found, value=value, type=type_, description=description)
            outcome = "updated"
    err_console.print(f"Credential {namespace}/{name} {outcome}.")


def _find(fp: Client, namespace: str, name: str) -> str:
    """The id of the credential ``name`` of ``namespace``."""
    from flowplane.errors import CredentialNotFound

    for credential in fp.paginate(fp.list_credentials, namespace=namespace):
        if credential.name == name:
            return credential.id
    raise CredentialNotFound(f"no credential {name!r} in namespace {namespace!r}")


@credentials_app.command("delete")
def credentials_delete(
    name: Name, namespace: Namespace = "default", server: Server = None, token: Token = None
) -> None:
    """Delete a credential."""
    with remote(server, token) as fp:
        fp.delete_credential(_find(fp, namespace, name))
    err_console.print(f"Credential {namespace}/{name} deleted.")


def register(app: typer.Typer) -> None:
    """Add ``flowplane credentials``."""
    app.add_typer(credentials_app, name="credentials")
