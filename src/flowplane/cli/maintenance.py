"""Day-two commands of the ``db`` group: ``db prune`` (retention) and ``db backup``.

``db prune`` applies the retention policy (``FLOWPLANE_RETENTION_*``, or ``--finished`` and
``--failed``) to the local database, or with ``--server`` asks a server to apply its own.
``db backup`` copies a SQLite database with SQLite's online backup API (safe while a server
writes to it); for PostgreSQL it prints the ``pg_dump`` command for the schema.
"""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from flowplane.cli._client import AsJson, Token, remote
from flowplane.cli._common import build_settings, display_url, fail, run_on_store
from flowplane.cli.local import DatabaseSchema, DatabaseUrl
from flowplane.cli.server import db_app

if TYPE_CHECKING:
    from flowplane.services.retention import PruneReport
    from flowplane.store.base import Store


def _print_report(dry_run: bool, deleted: dict[str, int], as_json: bool) -> None:
    import json

    total = sum(deleted.values())
    if as_json:
        print(json.dumps({"dryRun": dry_run, "deleted": deleted, "total": total}))
        return
    verb = "would delete" if dry_run else "deleted"
    print(f"{verb} {total} run(s)")
    for namespace, count in sorted(deleted.items()):
        print(f"  {namespace}: {count}")


def db_prune(
    database_url: DatabaseUrl = None,
    database_schema: DatabaseSchema = None,
    finished: Annotated[
        str | None,
        typer.Option(
            "--finished",
            help="Delete finished runs settled longer ago than this (overrides "
            "FLOWPLANE_RETENTION_FINISHED).",
            show_default=False,
        ),
    ] = None,
    failed: Annotated[
        str | None,
        typer.Option(
            "--failed",
            help="Delete failed, timed-out and cancelled runs settled longer ago than this "
            "(overrides FLOWPLANE_RETENTION_FAILED).",
            show_default=False,
        ),
    ] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Count what would be deleted; delete nothing.")
    ] = False,
    server: Annotated[
        str | None,
        typer.Option(
            "--server",
            help="Ask this server to apply its own policy (admin token) instead of pruning "
            "the local database.",
            show_default=False,
        ),
    ] = None,
    token: Token = None,
    as_json: AsJson = False,
) -> None:
    """Delete settled runs older than the retention policy, in small batches."""
    if server:
        if finished or failed:
            fail("--finished and --failed apply to the local database; a server uses its policy")
        with remote(server, token) as fp:
            result = fp.prune_runs(dry_run=dry_run)
        _print_report(result.dry_run, result.deleted, as_json)
        return
    settings = build_settings(
        database_url=database_url,
        database_schema=database_schema,
        retention_finished=finished,
        retention_failed=failed,
    )
    from flowplane.services.caller import Caller
    from flowplane.services.retention import RetentionService, rules_of
    from flowplane.services.run_cache import SettledRunCache

    if not any(rules_of(settings)):
        fail(
            "no retention policy: set FLOWPLANE_RETENTION_FINISHED / _FAILED / _NAMESPACES "
            "or pass --finished / --failed"
        )

    async def prune(store: Store) -> PruneReport:
        service = RetentionService(store, settings, SettledRunCache(ttl_seconds=0))
        return await service.prune(Caller.system("cli"), dry_run=dry_run)

    report = run_on_store(settings, prune)
    _print_report(report.dry_run, report.deleted, as_json)


def db_backup(
    target: Annotated[Path, typer.Argument(help="The file to write (SQLite).")],
    database_url: DatabaseUrl = None,
    database_schema: DatabaseSchema = None,
    force: Annotated[bool, typer.Option("--force", help="Overwrite an existing file.")] = False,
) -> None:
    """Back up the database: SQLite's online backup to a file (consistent while a server
    runs); for PostgreSQL, print the pg_dump command for the schema."""
    settings = build_settings(database_url=database_url, database_schema=database_schema)
    if settings.is_postgres:
        print(pg_dump_command(settings.database_url, settings.database_schema, target))
        typer.echo(
            "PostgreSQL: run the command above (pg_dump takes a consistent snapshot while "
            "servers run; restore with pg_restore --schema ...).",
            err=True,
        )
        return
    source = sqlite_path(settings.database_url)
    if source is None or not source.exists():
        fail(f"no SQLite database at {display_url(settings.database_url)}")
    if target.exists() and not force:
        fail(f"{target} exists; pass --force to overwrite it")
    pages = backup_sqlite(source, target)
    print(f"backed up {source} to {target} ({pages} pages)")


def sqlite_path(url: str) -> Path | None:
    """The file of a ``sqlite:///path`` URL (``None`` for in-memory databases)."""
    from sqlalchemy.engine import make_url

    database = make_url(url).database
    if not database or database == ":memory:":
        return None
    return Path(database)


def backup_sqlite(source: Path, target: Path) -> int:
    """Copy ``source`` to ``target`` with SQLite's online backup API; return the page count.

    The copy is consistent even while other connections write (the backup restarts its
    steps as needed); it is written to a temporary file and renamed into place.
    """
    import sqlite3

    partial = target.with_name(target.name + ".partial")
    partial.unlink(missing_ok=True)
    src = sqlite3.connect(f"file:{source}?mode=ro", uri=True)
    try:
        dst = sqlite3.connect(partial)
        try:
            src.backup(dst, pages=1024)
            pages = int(dst.execute("PRAGMA page_count").fetchone()[0])
        finally:
            dst.close()
    finally:
        src.close()
    partial.replace(target)
    return pages


def pg_dump_command(url: str, schema: str, target: Path) -> str:
    """The ``pg_dump`` command that backs up the Flowplane schema of ``url`` to ``target``
    (custom format; the password is left to ``PGPASSWORD`` or ``~/.pgpass``)."""
    from sqlalchemy.engine import URL, make_url

    parsed = make_url(url)
    # Without the password: pg_dump reads it from PGPASSWORD or ~/.pgpass, not argv.
    dsn = URL.create(
        "postgresql",
        username=parsed.username,
        host=parsed.host,
        port=parsed.port,
        database=parsed.database,
        query=parsed.query,
    ).render_as_string(hide_password=False)
    return shlex.join(
        ["pg_dump", "--schema", schema, "--format", "custom", "--file", str(target), dsn]
    )


def register(app: typer.Typer) -> None:
    """Add ``db prune`` and ``db backup`` to the ``db`` group."""
    db_app.command("prune")(db_prune)
    db_app.command("backup")(db_backup)
