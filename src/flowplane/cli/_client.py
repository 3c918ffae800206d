"""What every command that talks to a server shares: its options and :func:`remote`.

``--server`` and ``--token`` fall back to ``FLOWPLANE_URL`` and ``FLOWPLANE_TOKEN``;
``--json`` asks for machine-readable output. :func:`remote` opens a
:class:`flowplane.client.Client` and turns what can go wrong on the wire into an error
message and an exit status, so a command body holds only its own logic::

    with remote(server, token) as fp:
        run = fp.get_run(run_id)

The client (and ``httpx``) is imported when a command runs, not when the CLI starts.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape

from flowplane.cli._common import err_console, fail, fail_with

if TYPE_CHECKING:
    from flowplane.client import Client

MAX_PROBLEMS_SHOWN = 20

Server = Annotated[
    str | None,
    typer.Option("--server", envvar="FLOWPLANE_URL", help="Server URL.", show_default=False),
]
Token = Annotated[
    str | None,
    typer.Option("--token", envvar="FLOWPLANE_TOKEN", help="API key or JWT.", show_default=False),
]
AsJson = Annotated[bool, typer.Option("--json", help="Print JSON instead of tables.")]


@contextlib.contextmanager
def remote_errors() -> Iterator[None]:
    """Report server errors (``code: detail``) and unreachable servers, and exit.

    Exit status 2 for invalid input, 1 otherwise; a problem's ``errors`` list is printed
    under the message.
    """
    from flowplane.errors import FlowplaneError

    try:
        yield
    except FlowplaneError as exc:
        problems = exc.extra.get("errors")
        if isinstance(problems, list):
            for problem in problems[:MAX_PROBLEMS_SHOWN]:
                err_console.print(f"  - {escape(json.dumps(problem, default=str))}")
        fail_with(exc)
    except OSError as exc:  # connection refused, DNS, ...
        fail(f"cannot reach the server: {exc}")
    except Exception as exc:
        if type(exc).__module__.startswith("httpx"):
            fail(f"cannot reach the server: {exc}")
        raise


@contextlib.contextmanager
def remote(server: str | None, token: str | None) -> Iterator[Client]:
    """Open a client of ``server`` (closed on exit); errors as in :func:`remote_errors`."""
    from flowplane.client import Client

    with remote_errors(), Client(server, token=token) as client:
        yield client
