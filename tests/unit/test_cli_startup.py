"""The CLI starts fast: ``flowplane --help`` and remote commands import no server modules.

``flowplane.cli.main`` imports every command module to register its commands, so those
modules import only ``typer`` and ``rich`` at the top and the rest inside the command
that needs it. These tests run in a fresh interpreter, where ``sys.modules`` shows what a
real start-up imports.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

SERVER_MODULES = (
    "sqlalchemy",
    "fastapi",
    "starlette",
    "uvicorn",
    "alembic",
    "pydantic_settings",
    "cryptography",
    "flowplane.api",
    "flowplane.engine",
    "flowplane.services",
    "flowplane.store",
    "flowplane.settings",
    "flowplane.connectors",
)
CLIENT_MODULES = ("httpx", "flowplane.client")


def _loaded_after(code: str) -> list[str]:
    """Run ``code`` in a fresh interpreter; return the top-level modules it imported."""
    script = (
        f"{code}\n"
        "import json, sys\n"
        "print(json.dumps(sorted({m.split('.')[0] if not m.startswith('flowplane.') "
        "else '.'.join(m.split('.')[:2]) for m in sys.modules})))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=60
    )
    loaded: list[str] = json.loads(result.stdout.strip().splitlines()[-1])
    return loaded


def test_help_imports_no_server_or_client_modules() -> None:
    loaded = _loaded_after(
        "from typer.testing import CliRunner\n"
        "from flowplane.cli.main import app\n"
        "result = CliRunner().invoke(app, ['--help'])\n"
        "assert result.exit_code == 0, result.output\n"
        "assert 'workflows' in result.output and 'serve' in result.output, result.output\n"
    )
    heavy = [m for m in (*SERVER_MODULES, *CLIENT_MODULES, "asyncio") if m in loaded]
    assert heavy == [], f"flowplane --help imported {heavy}"


def test_remote_command_imports_no_server_modules() -> None:
    loaded = _loaded_after(
        "from typer.testing import CliRunner\n"
        "from flowplane.cli.main import app\n"
        "result = CliRunner().invoke(app, ['runs', 'list', '--server', 'http://127.0.0.1:9'])\n"
        "assert result.exit_code == 1, result.output\n"
        "assert 'cannot reach the server' in result.output, result.output\n"
    )
    assert "flowplane.client" in loaded
    heavy = [m for m in SERVER_MODULES if m in loaded]
    assert heavy == [], f"flowplane runs list imported {heavy}"


def test_the_api_app_imports_the_mcp_sdk_and_redis_only_when_used() -> None:
    # The MCP SDK (~1 s) is imported by the first /mcp request, redis by a redis node.
    loaded = _loaded_after(
        "from flowplane.api.app import create_app\n"
        "from flowplane.connectors.registry import default_registry\n"
        "from flowplane.settings import Settings\n"
        "create_app(Settings(database_url='sqlite://'), registry=default_registry())\n"
    )
    assert "fastapi" in loaded and "flowplane.connectors" in loaded
    assert [m for m in ("mcp", "mcp_types", "redis") if m in loaded] == []


def test_serve_refuses_bad_settings_before_importing_the_app(tmp_path: Path) -> None:
    loaded = _loaded_after(
        "import os\n"
        "os.environ['FLOWPLANE_ALLOW_HOSTS'] = 'exa mple.com'\n"
        "from typer.testing import CliRunner\n"
        "from flowplane.cli.main import app\n"
        f"os.chdir({str(tmp_path)!r})\n"
        "result = CliRunner().invoke(app, ['serve', '--port', '0'])\n"
        "assert result.exit_code == 2, result.output\n"
        "assert 'invalid settings' in result.output, result.output\n"
    )
    heavy = [m for m in ("fastapi", "uvicorn", "flowplane.api") if m in loaded]
    assert heavy == [], f"a refused flowplane serve imported {heavy}"


def test_every_command_group_is_registered() -> None:
    import typer

    from flowplane.cli.main import app, discover_commands

    assert discover_commands(typer.Typer()) == [
        "admin",
        "audit",
        "connectors",
        "credentials",
        "kv",
        "local",
        "maintenance",
        "mcp",
        "remote",
        "schedules",
        "secrets",
        "server",
        "timetravel",
        "triggers",
        "validate",
    ]
    assert app.registered_groups and app.registered_commands


def test_constants_copied_into_the_cli_match_their_sources() -> None:
    from flowplane.cli import audit, secrets
    from flowplane.model.document import DEFAULT_NAMESPACE
    from flowplane.security.crypto import OLD_KEYS_ENV
    from flowplane.services.audit import MAX_LIST_LIMIT
    from flowplane.services.credentials import DEFAULT_TYPE

    assert secrets.DEFAULT_NAMESPACE == DEFAULT_NAMESPACE
    assert secrets.OLD_KEYS_ENV == OLD_KEYS_ENV
    assert secrets.DEFAULT_TYPE == DEFAULT_TYPE
    assert audit.REMOTE_PAGE_SIZE == MAX_LIST_LIMIT


def test_help_shows_no_rest_literals() -> None:
    """Docstrings' ``double backticks`` show as single ones in ``--help``."""
    for command in ("run", "serve", "worker"):
        out = subprocess.run(
            [sys.executable, "-m", "flowplane", command, "--help"],
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
            env={**os.environ, "COLUMNS": "200"},
        ).stdout
        assert "``" not in out
        if command == "run":
            assert "`--serve`" in out


def test_client_only_install_explains_what_to_install() -> None:
    """Without the server's extra, ``flowplane`` names the extra instead of a traceback."""
    blocker = (
        "import sys\n"
        "class Block:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name.split('.')[0] == 'typer':\n"
        "            raise ModuleNotFoundError(f\"No module named '{name}'\", name=name)\n"
        "sys.meta_path.insert(0, Block())\n"
        "sys.argv = ['flowplane', '--help']\n"
        "from flowplane.__main__ import run\n"
        "run()\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", blocker], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 1
    assert "pip install 'flowplane[server]'" in done.stderr
    assert "typer is not installed" in done.stderr
    assert "Traceback" not in done.stderr
