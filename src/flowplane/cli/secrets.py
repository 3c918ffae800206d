"""``flowplane secrets ...``: master keys and credentials, straight on the database.

Like ``flowplane tokens``, these commands open the database directly, so whoever runs them
already holds the installation's keys. Secret values are read from stdin or a prompt, never
from arguments (which shells and process lists keep).

Rotating the master key without downtime::

    # 1. every process: the new key encrypts, the old one still decrypts
    FLOWPLANE_SECRET_KEY=<new> FLOWPLANE_SECRET_KEYS_OLD=<old>   (restart)
    # 2. re-encrypt every credential under the current (new) key
    flowplane secrets rotate-key
    # 3. drop FLOWPLANE_SECRET_KEYS_OLD (restart)
"""

from __future__ import annotations

import getpass
import json
import sys
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from flowplane.cli._common import (
    CREATE_HELP,
    EXIT_INVALID,
    build_settings,
    err_console,
    fail,
    run_on_store,
)

if TYPE_CHECKING:
    from flowplane.security.crypto import KeyRing
    from flowplane.settings import Settings
    from flowplane.store.audit import Actor
    from flowplane.store.base import Store

# Copies of flowplane.model.document.DEFAULT_NAMESPACE, flowplane.security.crypto.OLD_KEYS_ENV
# and flowplane.services.credentials.DEFAULT_TYPE (pinned by tests/unit/test_cli_startup.py):
# they appear in --help, and importing their modules would slow down every command.
DEFAULT_NAMESPACE = "default"
OLD_KEYS_ENV = "FLOWPLANE_SECRET_KEYS_OLD"
DEFAULT_TYPE = "generic"

secrets_app = typer.Typer(
    help="Master keys and credentials (opens the database directly).", no_args_is_help=True
)
console = Console(highlight=False)

DatabaseUrl = Annotated[
    str | None,
    typer.Option("--database-url", help="Database URL (default: FLOWPLANE_DATABASE_URL)."),
]
DatabaseSchema = Annotated[
    str | None,
    typer.Option("--database-schema", help="PostgreSQL schema (default: flowplane)."),
]
AsJson = Annotated[bool, typer.Option("--json", help="Print JSON.")]


def cli_actor() -> Actor:
    """The audit actor of a CLI command: the operating-system user."""
    from flowplane.store.audit import Actor

    try:
        name = getpass.getuser()
    except Exception:
        name = "cli"
    return Actor(name=name, kind="cli")


def _keyring(settings: Settings) -> KeyRing:
    from flowplane.errors import FlowplaneError
    from flowplane.services.credentials import keyring_from_settings

    try:
        ring = keyring_from_settings(settings)
    except FlowplaneError as exc:
        fail(f"{exc.code}: {exc.detail}", EXIT_INVALID)
    if ring is None:
        from flowplane.security.key_file import key_file_path

        fail(
            "no master key: set FLOWPLANE_SECRET_KEY (flowplane secrets generate-key), or "
            f"start flowplane serve once on SQLite to generate {key_file_path(settings.data_dir)}"
            " (or set FLOWPLANE_DATA_DIR to the folder that holds it)",
            EXIT_INVALID,
        )
    return ring


@secrets_app.command("generate-key")
def generate_key_command() -> None:
    """Print a new random master key (base64 of 32 bytes) for FLOWPLANE_SECRET_KEY."""
    from flowplane.security.crypto import generate_key

    print(generate_key())


@secrets_app.command("rotate-key")
def rotate_key_command(
    new_key: Annotated[
        str | None,
        typer.Option(
            "--new-key",
            envvar="FLOWPLANE_NEW_SECRET_KEY",
            help="The key to encrypt with ([kid:]base64). Default: the current "
            "FLOWPLANE_SECRET_KEY (after you made the new key current).",
            show_default=False,
        ),
    ] = None,
    old_keys: Annotated[
        list[str] | None,
        typer.Option(
            "--old-key",
            help=f"A key that still decrypts (repeatable). FLOWPLANE_SECRET_KEY and {OLD_KEYS_ENV} "
            "are always included.",
            show_default=False,
        ),
    ] = None,
    database_url: DatabaseUrl = None,
    database_schema: DatabaseSchema = None,
) -> None:
    """Re-encrypt every credential under the new (or current) master key.

    Every configured key still decrypts, so the command can run while servers use the old
    key as an old key; run it again after an interruption.
    """
    from flowplane.errors import FlowplaneError
    from flowplane.security.crypto import KeyRing, parse_key
    from flowplane.services.credentials import keyring_from_settings, rotate_key

    settings = build_settings(database_url=database_url, database_schema=database_schema)
    try:
        configured = keyring_from_settings(settings)
        extra = [parse_key(k) for k in old_keys or ()]
        if new_key is not None:
            current = parse_key(new_key)
        elif configured is not None:
            current = configured.current
        else:
            fail("give --new-key or set FLOWPLANE_SECRET_KEY", EXIT_INVALID)
        ring = KeyRing(current, [*(configured.keys if configured else ()), *extra])
    except FlowplaneError as exc:
        fail(f"{exc.code}: {exc.detail}", EXIT_INVALID)

    async def action(store: Store) -> Any:
        return await rotate_key(store, ring, actor=cli_actor())

    report = run_on_store(settings, action)
    err_console.print(
        f"Re-encrypted {report.rotated} credential(s) under key {report.key_id} "
        f"({report.already_current} already were)."
    )
    if new_key is not None and (configured is None or configured.current.kid != report.key_id):
        err_console.print(
            "Now make it the current key everywhere: FLOWPLANE_SECRET_KEY=<the new key>; "
            f"keep the old one in {OLD_KEYS_ENV} until every process has restarted."
        )


@secrets_app.command("set")
def set_command(
    name: Annotated[str, typer.Argument(help="The credential name (used as ${NAME}).")],
    namespace: Annotated[str, typer.Option("--namespace", "-n")] = DEFAULT_NAMESPACE,
    type_: Annotated[str, typer.Option("--type", help="The credential type.")] = DEFAULT_TYPE,
    description: Annotated[str | None, typer.Option("--description")] = None,
    value_stdin: Annotated[
        bool, typer.Option("--value-stdin", help="Read the value from stdin.")
    ] = False,
    allow_workflow: Annotated[
        list[str] | None,
        typer.Option(
            "--allow-workflow",
            help="Only runs of this stored workflow (name or id) may use it (repeatable).",
            show_default=False,
        ),
    ] = None,
    any_workflow: Annotated[
        bool, typer.Option("--any-workflow", help="Let any workflow use it again.")
    ] = False,
    allow_connector: Annotated[
        list[str] | None,
        typer.Option(
            "--allow-connector",
            help="Only this node type or pattern (http.*) may use it (repeatable).",
            show_default=False,
        ),
    ] = None,
    any_connector: Annotated[
        bool, typer.Option("--any-connector", help="Let any connector use it again.")
    ] = False,
    template_use: Annotated[
        str | None,
        typer.Option(
            "--template-use",
            help="none: credential params only; exact (default for a new credential): also "
            "${NAME} as is in secret-bearing params (HTTP headers, URLs); any: any template.",
            show_default=False,
        ),
    ] = None,
    database_url: DatabaseUrl = None,
    database_schema: DatabaseSchema = None,
    create: Annotated[bool, typer.Option("--create", help=CREATE_HELP)] = False,
) -> None:
    """Create a credential, or replace its value; the value is read from stdin or a prompt.

    The use policy options change only what they name when the credential exists.
    """
    from flowplane.errors import CredentialExists
    from flowplane.services.caller import Caller
    from flowplane.services.credentials import KEEP, CredentialService

    if allow_workflow and any_workflow:
        fail("give --allow-workflow or --any-workflow, not both", EXIT_INVALID)
    if allow_connector and any_connector:
        fail("give --allow-connector or --any-connector, not both", EXIT_INVALID)
    workflows: list[str] | Any | None = (
        allow_workflow if allow_workflow else (None if any_workflow else KEEP)
    )
    connectors: list[str] | Any | None = (
        allow_connector if allow_connector else (None if any_connector else KEEP)
    )
    settings = build_settings(database_url=database_url, database_schema=database_schema)
    ring = _keyring(settings)
    if value_stdin or not sys.stdin.isatty():
        value = sys.stdin.read().removesuffix("\n")
    else:
        value = typer.prompt(f"Value of {name}", hide_input=True)
    if not value:
        fail("the value is empty", EXIT_INVALID)

    local, who = Caller.system("cli"), cli_actor()

    async def action(store: Store) -> str:
        service = CredentialService(store, ring)
        try:
            await service.create(
                local,
                namespace,
                name,
                value,
                type_=type_,
                description=description,
                allowed_workflows=None if workflows is KEEP else workflows,
                allowed_connectors=None if connectors is KEEP else connectors,
                template_use=template_use or "exact",
                actor=who,
            )
            return "created"
        except CredentialExists:
            page = await service.list(local, namespaces=[namespace], limit=500)
            found = next(c for c in page.items if c.name == name)
            await service.update(
                local,
                found.id,
                value=value,
                type_=type_,
                description=description,
                allowed_workflows=workflows,
                allowed_connectors=connectors,
                template_use=template_use,
                actor=who,
            )
            return "updated"

    outcome = run_on_store(settings, action, create=create)
    err_console.print(f"Credential {namespace}/{name} {outcome}.")


@secrets_app.command("list")
def list_command(
    namespace: Annotated[
        list[str] | None, typer.Option("--namespace", "-n", help="Only these (repeatable).")
    ] = None,
    as_json: AsJson = False,
    database_url: DatabaseUrl = None,
    database_schema: DatabaseSchema = None,
) -> None:
    """List credentials (names and metadata; values are never shown)."""
    from flowplane.services.caller import Caller
    from flowplane.services.credentials import CredentialService

    settings = build_settings(database_url=database_url, database_schema=database_schema)

    async def action(store: Store) -> list[dict[str, Any]]:
        service = CredentialService(store, None)
        rows: list[dict[str, Any]] = []
        cursor: str | None = None
        while True:
            page = await service.list(
                Caller.system("cli"), namespaces=namespace or None, cursor=cursor, limit=500
            )
            rows += [
                {
                    "id": c.id,
                    "namespace": c.namespace,
                    "name": c.name,
                    "type": c.type,
                    "version": c.version,
                    "keyId": c.key_id,
                    "updatedAtMs": c.updated_at_ms,
                    "allowedWorkflows": _listed(c.policy.allowed_workflows),
                    "allowedConnectors": _listed(c.policy.allowed_connectors),
                    "templateUse": c.policy.template_use,
                }
                for c in page.items
            ]
            cursor = page.next_cursor
            if cursor is None:
                return rows

    rows = run_on_store(settings, action)
    if as_json:
        print(json.dumps(rows, indent=2))
        return
    table = Table(
        "namespace", "name", "type", "version", "workflows", "connectors", "templates", "id"
    )
    for row in rows:
        table.add_row(
            row["namespace"],
            row["name"],
            row["type"],
            str(row["version"]),
            ", ".join(row["allowedWorkflows"]) if row["allowedWorkflows"] is not None else "any",
            ", ".join(row["allowedConnectors"]) if row["allowedConnectors"] is not None else "any",
            row["templateUse"],
            row["id"],
        )
    console.print(table)


def _listed(values: tuple[str, ...] | None) -> list[str] | None:
    return list(values) if values is not None else None


def register(app: typer.Typer) -> None:
    """Add the ``secrets`` command group."""
    app.add_typer(secrets_app, name="secrets")
