"""Local administration of API keys and users: ``flowplane tokens ...``, ``flowplane users ...``.

These commands open the database directly (``--database-url``/``--database-schema`` or the
``FLOWPLANE_*`` variables), so whoever can run them already holds the keys to the
installation; no API key is needed. ``tokens create`` prints the new key alone on stdout
(``KEY=$(flowplane tokens create --role executor)``) and everything else on stderr.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

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
    from flowplane.services.auth import ApiKeyInfo, AuthService, UserInfo
    from flowplane.services.caller import Caller

T = TypeVar("T")

tokens_app = typer.Typer(help="Create, list and revoke API keys.", no_args_is_help=True)
users_app = typer.Typer(help="Create and list users, change passwords.", no_args_is_help=True)

DatabaseUrl = Annotated[
    str | None,
    typer.Option("--database-url", help="Database URL (default: FLOWPLANE_DATABASE_URL)."),
]
DatabaseSchema = Annotated[
    str | None,
    typer.Option("--database-schema", help="PostgreSQL schema (default: flowplane)."),
]
Namespace = Annotated[
    list[str] | None,
    typer.Option("--namespace", "-n", help="Restrict to this namespace (repeatable)."),
]
AsJson = Annotated[bool, typer.Option("--json", help="Print JSON.")]
Create = Annotated[bool, typer.Option("--create", help=CREATE_HELP)]
PasswordStdin = Annotated[
    bool, typer.Option("--password-stdin", help="Read the password from stdin.")
]


def _run(
    database_url: str | None,
    database_schema: str | None,
    action: Callable[[AuthService], Awaitable[T]],
    *,
    create: bool = False,
) -> T:
    """Run ``action`` with an :class:`AuthService` on the configured database."""
    from flowplane.services.auth import AuthService

    settings = build_settings(database_url=database_url, database_schema=database_schema)
    return run_on_store(settings, lambda store: action(AuthService(store, settings)), create=create)


def _check_role(role: str) -> str:
    from flowplane.services.auth import ROLES

    if role not in ROLES:
        fail(f"unknown role {role!r}; expected one of {', '.join(ROLES)}", EXIT_INVALID)
    return role


def _read_password(from_stdin: bool, prompt: str = "Password") -> str:
    if from_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    value: str = typer.prompt(prompt, hide_input=True, confirmation_prompt=True)
    return value


def _key_dict(key: ApiKeyInfo) -> dict[str, Any]:
    from flowplane.ids import now_ms

    return {
        "id": key.id,
        "name": key.name,
        "prefix": key.prefix,
        "role": key.role,
        "namespaces": list(key.namespaces) if key.namespaces is not None else None,
        "rateLimitPerMinute": key.rate_limit_per_minute,
        "expiresAtMs": key.expires_at_ms,
        "createdAtMs": key.created_at_ms,
        "lastUsedAtMs": key.last_used_at_ms,
        "revokedAtMs": key.revoked_at_ms,
        "active": key.active(now_ms()),
    }


def _user_dict(user: UserInfo) -> dict[str, Any]:
    return {
        "id": user.id,
        "username": user.username,
        "role": user.role,
        "namespaces": list(user.namespaces) if user.namespaces is not None else None,
        "disabled": user.disabled,
        "createdAtMs": user.created_at_ms,
        "passwordChangedAtMs": user.password_changed_at_ms,
    }


def _print_table(rows: list[dict[str, Any]], columns: list[str]) -> None:
    table = Table(*columns, box=None, pad_edge=False)
    for row in rows:
        table.add_row(*("-" if row[c] is None else str(row[c]) for c in columns))
    Console(width=250).print(table)


@tokens_app.command("create")
def tokens_create(
    role: Annotated[str, typer.Option("--role", help="viewer, executor, editor or admin.")],
    name: Annotated[str | None, typer.Option("--name", help="A label for the key.")] = None,
    namespace: Namespace = None,
    expires_in: Annotated[
        str | None, typer.Option("--expires-in", help="Lifetime, e.g. 30d or 12h.")
    ] = None,
    rate_limit: Annotated[
        int | None, typer.Option("--rate-limit", help="Requests per minute (0 = unlimited).")
    ] = None,
    as_json: AsJson = False,
    database_url: DatabaseUrl = None,
    database_schema: DatabaseSchema = None,
    create: Create = False,
) -> None:
    """Create an API key and print it (once: it cannot be shown again)."""
    from flowplane.errors import FlowplaneError
    from flowplane.ids import now_ms
    from flowplane.model.durations import parse_duration

    _check_role(role)
    expires_at: int | None = None
    if expires_in is not None:
        try:
            expires_at = now_ms() + int(parse_duration(expires_in) * 1000)
        except FlowplaneError as exc:
            fail(f"--expires-in: {exc.detail}", EXIT_INVALID)
    created = _run(
        database_url,
        database_schema,
        lambda auth: auth.create_api_key(
            name=name or f"{role} key",
            role=role,
            namespaces=namespace or None,
            expires_at_ms=expires_at,
            rate_limit_per_minute=rate_limit,
            caller=_cli(),
        ),
        create=create,
    )
    if as_json:
        print(json.dumps({"token": _key_dict(created.info), "secret": created.secret}))
        return
    scope = ", ".join(created.info.namespaces) if created.info.namespaces else "all namespaces"
    err_console.print(f"Created {role} key {created.info.id} ({scope}); it is shown only once:")
    print(created.secret)


@tokens_app.command("list")
def tokens_list(
    include_revoked: Annotated[bool, typer.Option("--all", help="Include revoked keys.")] = False,
    as_json: AsJson = False,
    database_url: DatabaseUrl = None,
    database_schema: DatabaseSchema = None,
) -> None:
    """List API keys (never the keys themselves)."""
    keys = _run(
        database_url,
        database_schema,
        lambda auth: auth.list_api_keys(include_revoked=include_revoked, caller=_cli()),
    )
    rows = [_key_dict(k) for k in keys]
    if as_json:
        print(json.dumps(rows))
        return
    _print_table(rows, ["id", "name", "prefix", "role", "namespaces", "expiresAtMs", "active"])


@tokens_app.command("revoke")
def tokens_revoke(
    key_id: Annotated[str, typer.Argument(help="The key id (see `tokens list`).")],
    database_url: DatabaseUrl = None,
    database_schema: DatabaseSchema = None,
) -> None:
    """Revoke an API key; it stops working at once."""
    _run(database_url, database_schema, lambda auth: auth.revoke_api_key(key_id, caller=_cli()))
    err_console.print(f"Revoked key {key_id}.")


@users_app.command("create")
def users_create(
    username: Annotated[str, typer.Argument(help="The login name.")],
    role: Annotated[str, typer.Option("--role", help="viewer, executor, editor or admin.")],
    namespace: Namespace = None,
    password_stdin: PasswordStdin = False,
    database_url: DatabaseUrl = None,
    database_schema: DatabaseSchema = None,
    create: Create = False,
) -> None:
    """Create a user (the password is prompted for, or read from stdin)."""
    _check_role(role)
    password = _read_password(password_stdin)
    user = _run(
        database_url,
        database_schema,
        lambda auth: auth.create_user(
            username=username,
            password=password,
            role=role,
            namespaces=namespace or None,
            caller=_cli(),
        ),
        create=create,
    )
    err_console.print(f"Created user {user.username} ({user.role}), id {user.id}.")


@users_app.command("list")
def users_list(
    as_json: AsJson = False,
    database_url: DatabaseUrl = None,
    database_schema: DatabaseSchema = None,
) -> None:
    """List users."""
    users = _run(database_url, database_schema, lambda auth: auth.list_users(caller=_cli()))
    rows = [_user_dict(u) for u in users]
    if as_json:
        print(json.dumps(rows))
        return
    _print_table(rows, ["id", "username", "role", "namespaces", "disabled"])


@users_app.command("passwd")
def users_passwd(
    username: Annotated[str, typer.Argument(help="The login name.")],
    password_stdin: PasswordStdin = False,
    database_url: DatabaseUrl = None,
    database_schema: DatabaseSchema = None,
) -> None:
    """Set a user's password; the user's existing login tokens stop working."""
    password = _read_password(password_stdin, "New password")

    async def change(auth: AuthService) -> UserInfo:
        user = await auth.find_user(username, caller=_cli())
        return await auth.update_user(user.id, password=password, caller=_cli())

    _run(database_url, database_schema, change)
    err_console.print(f"Password of {username} changed; older login tokens are revoked.")


def register(app: typer.Typer) -> None:
    """Add the ``tokens`` and ``users`` command groups."""
    app.add_typer(tokens_app, name="tokens")
    app.add_typer(users_app, name="users")


def _cli() -> Caller:
    """Who a local admin command acts as: the command line (``LOCAL``, an admin)."""
    from flowplane.services.auth import LOCAL

    return LOCAL
