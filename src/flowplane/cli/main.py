"""The ``flowplane`` command.

Commands live in the modules of :mod:`flowplane.cli`: every module (except this one and
``_``-prefixed helpers) that defines ``register(app: typer.Typer) -> None`` is imported and
its ``register`` called, in module-name order. Adding a command group means adding a module,
never editing this file::

    # flowplane/cli/admin.py
    def register(app: typer.Typer) -> None:
        app.add_typer(tokens_app, name="tokens")
"""

from __future__ import annotations

import importlib
import pkgutil
import sys
from collections.abc import Callable
from typing import Annotated, Any

import typer
import typer.main

from flowplane import __version__
from flowplane.cli._common import err_console

app = typer.Typer(
    name="flowplane",
    help="Flowplane: a durable workflow engine with an HTTP control plane.",
    no_args_is_help=True,
    add_completion=True,
    pretty_exceptions_show_locals=False,  # locals may hold secrets
    context_settings={"help_option_names": ["-h", "--help"]},
)


@app.command("version")
def version_command(
    short: Annotated[bool, typer.Option("--short", help="Print only the version.")] = False,
) -> None:
    """Print the Flowplane version."""
    if short:
        print(__version__)
    else:
        print(f"flowplane {__version__} (Python {sys.version.split()[0]})")


def discover_commands(target: typer.Typer, package: str = "flowplane.cli") -> list[str]:
    """Import each command module of ``package`` and call its ``register(target)``.

    A module that fails to import is reported on stderr and skipped, so one broken command
    group does not take the whole CLI down.

    Returns:
        The names of the modules that registered commands.
    """
    module = importlib.import_module(package)
    registered: list[str] = []
    for info in sorted(pkgutil.iter_modules(module.__path__), key=lambda i: i.name):
        if info.name == "main" or info.name.startswith("_"):
            continue
        name = f"{package}.{info.name}"
        try:
            command_module = importlib.import_module(name)
        except Exception as exc:
            err_console.print(f"[yellow]warning:[/] CLI module {name} failed to import: {exc!r}")
            continue
        register: Callable[[typer.Typer], None] | None = getattr(command_module, "register", None)
        if callable(register):
            register(target)
            registered.append(info.name)
    return registered


discover_commands(app)


def _plain_help(command: Any) -> Any:
    """Turn the docstrings' reST literals (double backticks) into the single ones help shows."""
    for holder in [command, *getattr(command, "params", ())]:
        for attr in ("help", "short_help"):
            text = getattr(holder, attr, None)
            if isinstance(text, str) and "``" in text:
                setattr(holder, attr, text.replace("``", "`"))
    for sub in (getattr(command, "commands", None) or {}).values():
        _plain_help(sub)
    return command


def main() -> None:
    """Entry point of the ``flowplane`` script (and ``python -m flowplane``)."""
    _plain_help(typer.main.get_command(app))(prog_name="flowplane")


if __name__ == "__main__":  # pragma: no cover
    main()
