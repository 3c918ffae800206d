"""``flowplane audit``: read the audit log, from a server or straight from the database.

With ``--server`` (or ``FLOWPLANE_URL``) and an admin ``--token`` it calls ``GET /v1/audit``;
with ``--database-url`` (or neither: the configured database) it reads the table directly.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from flowplane.cli._client import Server, remote_errors
from flowplane.cli._common import build_settings, fail, run_on_store

if TYPE_CHECKING:
    from flowplane.store.base import Store

console = Console(highlight=False)
HTTP_TIMEOUT_SECONDS = 30.0
# The largest page GET /v1/audit serves: flowplane.services.audit.MAX_LIST_LIMIT (pinned by
# tests/unit/test_cli_startup.py; importing it here would import the store).
REMOTE_PAGE_SIZE = 1000
_COLUMNS = ("time", "actor", "action", "namespace", "target", "versions", "request")


def _fetch_remote(server: str, token: str | None, params: dict[str, Any]) -> list[dict[str, Any]]:
    import httpx

    headers = {"Authorization": f"Bearer {token}"} if token else {}
    items: list[dict[str, Any]] = []
    limit = int(params.pop("limit"))
    query = {k: v for k, v in params.items() if v is not None}
    with (
        remote_errors(server.rstrip("/")),
        httpx.Client(
            base_url=server.rstrip("/"), headers=headers, timeout=HTTP_TIMEOUT_SECONDS
        ) as client,
    ):
        while len(items) < limit:
            query["limit"] = min(limit - len(items), REMOTE_PAGE_SIZE)
            r = client.get("/v1/audit", params=query)
            if r.status_code >= 400:
                try:
                    problem = r.json()
                    fail(f"{problem.get('code')}: {problem.get('detail')}")
                except ValueError:
                    fail(f"the server answered {r.status_code}")
            page = r.json()
            items += page["items"]
            if not page.get("nextCursor"):
                break
            query["cursor"] = page["nextCursor"]
    return items


def _fetch_local(settings_kwargs: dict[str, Any], params: dict[str, Any]) -> list[dict[str, Any]]:
    from flowplane.services.audit import MAX_LIST_LIMIT, AuditFilter, AuditService
    from flowplane.services.caller import Caller

    settings = build_settings(**settings_kwargs)
    limit = int(params.pop("limit"))
    where = AuditFilter(**params)

    async def action(store: Store) -> list[dict[str, Any]]:
        service = AuditService(store)
        items: list[dict[str, Any]] = []
        cursor: str | None = None
        while len(items) < limit:
            page = await service.list(
                Caller.system("cli"),
                where,
                cursor=cursor,
                limit=min(limit - len(items), MAX_LIST_LIMIT),
            )
            items += [_camel(row.columns()) for row in page.items]
            cursor = page.next_cursor
            if cursor is None:
                break
        return items

    return run_on_store(settings, action)


def _camel(row: dict[str, Any]) -> dict[str, Any]:
    def camel(name: str) -> str:
        head, *rest = name.split("_")
        return head + "".join(part.title() for part in rest)

    return {camel(k): v for k, v in row.items()}


def _time(ms: int) -> str:
    return dt.datetime.fromtimestamp(ms / 1000).strftime("%Y-%m-%d %H:%M:%S")


def _versions(item: dict[str, Any]) -> str:
    before, after = item.get("beforeVersion"), item.get("afterVersion")
    if before is None and after is None:
        return "-"
    return f"{before if before is not None else '∅'}→{after if after is not None else '∅'}"


def audit_command(
    server: Server = None,
    token: Annotated[
        str | None,
        typer.Option("--token", envvar="FLOWPLANE_TOKEN", help="An admin API key or JWT."),
    ] = None,
    database_url: Annotated[
        str | None,
        typer.Option("--database-url", help="Read the database directly instead of a server."),
    ] = None,
    database_schema: Annotated[
        str | None, typer.Option("--database-schema", help="PostgreSQL schema.")
    ] = None,
    namespace: Annotated[
        list[str] | None, typer.Option("--namespace", "-n", help="Only these (repeatable).")
    ] = None,
    actor: Annotated[str | None, typer.Option("--actor", help="Actor name or id.")] = None,
    action: Annotated[
        str | None, typer.Option("--action", help="Exact action, or a prefix like kv. or kv*.")
    ] = None,
    target_type: Annotated[str | None, typer.Option("--target-type")] = None,
    target_id: Annotated[str | None, typer.Option("--target-id")] = None,
    request_id: Annotated[str | None, typer.Option("--request-id")] = None,
    limit: Annotated[int, typer.Option("--limit", min=1, max=100_000)] = 50,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Show who changed what, newest first."""
    if server and not database_url:
        items = _fetch_remote(
            server,
            token,
            {
                "namespace": namespace,
                "actor": actor,
                "action": action,
                "targetType": target_type,
                "targetId": target_id,
                "requestId": request_id,
                "limit": limit,
            },
        )
    else:
        items = _fetch_local(
            {"database_url": database_url, "database_schema": database_schema},
            {
                "namespaces": namespace or None,
                "actor": actor,
                "action": action,
                "target_type": target_type,
                "target_id": target_id,
                "request_id": request_id,
                "limit": limit,
            },
        )
    if as_json:
        print(json.dumps(items, indent=2, default=str))
        return
    if not items:
        console.print("No audit entries.")
        return
    table = Table(*_COLUMNS)
    for item in items:
        table.add_row(
            _time(item["tsMs"]),
            escape(f"{item['actor']} ({item['actorKind']})"),
            escape(item["action"]),
            escape(item.get("namespace") or "-"),
            escape(f"{item['targetType']} {item['targetId']}"),
            _versions(item),
            escape(item.get("requestId") or "-"),
        )
    console.print(table)


def register(app: typer.Typer) -> None:
    """Add ``flowplane audit``."""
    app.command("audit")(audit_command)
