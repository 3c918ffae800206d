"""Helpers shared by the CLI commands: settings from flags, plugins, errors, JSON options.

The module name starts with ``_`` so that :mod:`flowplane.cli.main` does not treat it as a
command module. Like every CLI module it imports only ``typer`` and ``rich`` at the top:
``flowplane --help`` imports all command modules, so anything heavier (settings, the
store, the engine) is imported by the function that needs it.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn, TypeVar

import typer
from rich.console import Console
from rich.markup import escape

if TYPE_CHECKING:
    from flowplane.connectors.registry import Registry
    from flowplane.errors import FlowplaneError
    from flowplane.settings import Settings
    from flowplane.store.base import Store

T = TypeVar("T")

EXIT_OK = 0
EXIT_FAILED = 1  # the run failed, was cancelled or timed out; or an operation failed
EXIT_INVALID = 2  # invalid workflow, input or usage (typer's usage errors use 2 as well)
EXIT_INTERRUPTED = 130  # Ctrl-C: 128 + SIGINT, as shells report it

err_console = Console(stderr=True, highlight=False, soft_wrap=True)


def fail(message: str, code: int = EXIT_FAILED) -> NoReturn:
    """Print ``message`` on stderr as an error and exit with ``code``."""
    err_console.print(f"[bold red]error:[/] {escape(message)}")
    raise typer.Exit(code)


def build_settings(**overrides: Any) -> Settings:
    """Return :class:`Settings` from ``FLOWPLANE_*`` variables, with non-``None`` flags on top.

    Exits with status 2 and a readable message when a value is invalid.
    """
    import pydantic

    from flowplane.settings import Settings

    values = {key: value for key, value in overrides.items() if value is not None}
    try:
        return Settings(**values)
    except pydantic.ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or 'settings'}: {err['msg']}"
            for err in exc.errors()
        )
        fail(f"invalid settings: {problems}", EXIT_INVALID)


def fail_with(exc: FlowplaneError) -> NoReturn:
    """Report a Flowplane error as ``code: detail`` and exit (2 for invalid input, else 1)."""
    fail(f"{exc.code}: {exc.detail}", EXIT_INVALID if exc.status == 400 else EXIT_FAILED)


CREATE_HELP = "Create the database when it does not exist yet."


def missing_sqlite_file(database_url: str) -> Path | None:
    """The file a ``sqlite:///`` URL names, when it does not exist (else ``None``)."""
    prefix = "sqlite:///"
    if not database_url.startswith(prefix):
        return None
    path = database_url[len(prefix) :].split("?", 1)[0]
    if not path or path == ":memory:":
        return None
    file = Path(path).resolve()
    return None if file.exists() else file


def refuse_missing_database(database_url: str) -> None:
    """Exit with a clear error when ``database_url`` names a SQLite file that does not exist."""
    missing = missing_sqlite_file(database_url)
    if missing is not None:
        fail(
            f"no database at {missing}: run this where flowplane serve (or flowplane run) keeps "
            "its database, point --database-url / FLOWPLANE_DATABASE_URL at it, or talk to a "
            "server with --server URL"
        )


def run_on_store(
    settings: Settings, action: Callable[[Store], Awaitable[T]], *, create: bool = False
) -> T:
    """Open the store of ``settings``, run ``action`` on it and close it.

    A SQLite file that does not exist is an error unless ``create`` (a command run in the
    wrong folder must not leave an empty database behind). A
    :class:`~flowplane.errors.FlowplaneError` is reported with :func:`fail_with`.
    """
    import asyncio

    if not create:
        refuse_missing_database(settings.database_url)

    from flowplane.errors import FlowplaneError
    from flowplane.store.base import Store

    async def main() -> T:
        store = await Store.open(settings.database_url, schema=settings.database_schema)
        try:
            return await action(store)
        finally:
            await store.close()

    try:
        return asyncio.run(main())
    except FlowplaneError as exc:
        fail_with(exc)


def build_registry(plugins: list[str] | None) -> Registry:
    """Return the connector registry: built-ins, entry points, then each ``--plugin`` module."""
    from flowplane.connectors.registry import default_registry, load_plugin_module

    registry = default_registry()
    for name in plugins or ():
        try:
            load_plugin_module(registry, name)
        except Exception as exc:
            fail(f"cannot load plugin {name!r}: {exc}", EXIT_INVALID)
    return registry


def parse_json(text: str, what: str) -> Any:
    """Parse a JSON flag value, exiting with status 2 and a pointer to the problem."""
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        fail(f"{what} is not valid JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})", 2)


def read_input(input_json: str | None, input_file: Path | None) -> Any:
    """Return the run input from ``--input`` or ``--input-file`` (``-`` reads stdin)."""
    if input_json is not None and input_file is not None:
        fail("give either --input or --input-file, not both", EXIT_INVALID)
    if input_file is not None:
        if str(input_file) == "-":
            return parse_json(sys.stdin.read(), "the input")
        try:
            text = input_file.read_text(encoding="utf-8")
        except OSError as exc:
            fail(f"cannot read {input_file}: {exc.strerror or exc}", EXIT_INVALID)
        return parse_json(text, f"{input_file}")
    if input_json is not None:
        return parse_json(input_json, "--input")
    return None


def display_url(url: str) -> str:
    """Return ``url`` with any password hidden, for logs and messages."""
    try:
        from sqlalchemy.engine import make_url

        return make_url(url).render_as_string(hide_password=True)
    except Exception:
        return url.split("@", 1)[-1] if "@" in url else url


def portable_url(url: str) -> str:
    """Return a database URL another terminal can use: SQLite paths made absolute.

    A URL with a password is replaced by ``$FLOWPLANE_DATABASE_URL`` so that no secret is
    printed in a copy-paste hint.
    """
    prefix = "sqlite:///"
    if url.startswith(prefix):
        path = url[len(prefix) :]
        if path and path != ":memory:" and not path.startswith("/"):
            return prefix + str(Path(path).resolve())
        return url
    if display_url(url) != url:
        return '"$FLOWPLANE_DATABASE_URL"'
    return url


def local_actor() -> str | None:
    """Return ``cli:<user>``, recorded as who decided an approval from this terminal."""
    user = os.environ.get("USER") or os.environ.get("USERNAME")
    return f"cli:{user}" if user else None


def setup_logging(level: str, log_format: str = "text") -> None:
    """Send log records to stderr at ``level`` (``info``, ``debug``, ...), as text lines or,
    with ``log_format="json"``, one JSON object a line (see :mod:`flowplane.cli._logs`)."""
    numeric = getattr(logging, level.upper(), logging.INFO)
    if log_format != "json":
        logging.basicConfig(
            level=numeric,
            stream=sys.stderr,
            format="%(asctime)s %(levelname)-7s %(name)s: %(message)s",
        )
        return
    from flowplane.cli._logs import JsonFormatter

    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    logging.basicConfig(level=numeric, handlers=[handler], force=True)
