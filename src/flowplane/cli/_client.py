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

from flowplane.cli._common import EXIT_FAILED, EXIT_INVALID, err_console, fail

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
def remote_errors(url: str | None = None) -> Iterator[None]:
    """Report server errors (``code: detail``) and unreachable servers, and exit.

    Exit status 2 for invalid input, 1 otherwise; a problem's ``errors`` list is printed
    under the message. ``url`` (the server tried) is named in every message.
    """
    from flowplane.errors import FlowplaneError

    where = f" (server {url})" if url else ""
    unreachable = f"cannot reach the server{where}"
    pointer = "give its URL with --server or FLOWPLANE_URL"
    try:
        yield
    except FlowplaneError as exc:
        problems = exc.extra.get("errors")
        if isinstance(problems, list):
            for problem in problems[:MAX_PROBLEMS_SHOWN]:
                err_console.print(f"  - {escape(json.dumps(problem, default=str))}")
        hint = ""
        if exc.code in ("unauthorized", "token_invalid", "token_expired") or exc.status == 401:
            hint = "; give an API key with --token or FLOWPLANE_TOKEN"
        fail(
            f"{exc.code}: {exc.detail}{where}{hint}",
            EXIT_INVALID if exc.status == 400 else EXIT_FAILED,
        )
    except OSError as exc:  # connection refused, DNS, ...
        fail(f"{unreachable}: {exc}; {pointer}")
    except Exception as exc:
        if type(exc).__module__.startswith("httpx"):
            fail(f"{unreachable}: {exc}; {pointer}")
        raise


def server_url(server: str | None) -> str:
    """The URL a remote command talks to: ``--server``, ``FLOWPLANE_URL``, else the default."""
    from flowplane.client._transport import resolve_url

    return resolve_url(server)


@contextlib.contextmanager
def remote(server: str | None, token: str | None) -> Iterator[Client]:
    """Open a client of ``server`` (closed on exit); errors as in :func:`remote_errors`."""
    from flowplane.client import Client

    url = server_url(server)
    with remote_errors(url), Client(url, token=token) as client:
        yield client
