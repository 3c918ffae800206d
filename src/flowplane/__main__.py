"""``python -m flowplane`` and the ``flowplane`` command.

The command needs the server's extra (``typer``, ``rich``, SQLAlchemy, ...). ``pip install
flowplane`` installs the Python client alone: then the command says what to install instead
of failing with a traceback.
"""

from __future__ import annotations

import sys

SERVER_EXTRA_HINT = (
    "flowplane: the command line needs the server's dependencies ({missing} is not installed).\n"
    "Install them with:  pip install 'flowplane[server]'\n"
    "The Python client (`from flowplane.client import Client`) works without them."
)


def run() -> None:
    """Start the command line, or explain which extra to install when it is missing."""
    try:
        from flowplane.cli.main import main
    except ModuleNotFoundError as exc:
        top = (exc.name or "").split(".")[0]
        if not top or top == "flowplane":
            raise
        print(SERVER_EXTRA_HINT.format(missing=top), file=sys.stderr)
        raise SystemExit(1) from None
    main()


if __name__ == "__main__":
    run()
