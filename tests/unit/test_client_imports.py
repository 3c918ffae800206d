"""The client installs and imports without the server's dependencies."""

from __future__ import annotations

import subprocess
import sys

import flowplane.client

SERVER_MODULES = ("sqlalchemy", "fastapi", "starlette", "uvicorn", "jinja2", "yaml", "typer")


def test_client_imports_without_server_modules() -> None:
    code = (
        "import sys, flowplane.client\n"
        "from flowplane.client import Client, AsyncClient, RunNotFound\n"
        f"loaded = [m for m in {SERVER_MODULES!r} if m in sys.modules]\n"
        "print(','.join(loaded))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert result.stdout.strip() == "", f"the client imported {result.stdout.strip()}"


def test_exported_names() -> None:
    exported = set(flowplane.client.__all__)
    assert {"Client", "AsyncClient", "RunDetail", "Event", "PatchResult", "RunNotFound"} <= exported
    for name in exported:
        assert hasattr(flowplane.client, name), name
