"""A first run as a new user makes it: ``make run``, then the README, the CLI and credentials.

The server is started as ``make run`` starts it (``flowplane serve --root examples
--load-examples examples`` on SQLite, no ``FLOWPLANE_SECRET_KEY``, a fresh folder), then:
the README's Python blocks run as printed, a credential is stored over the API and with
``flowplane secrets set``, the README's headline workflow is validated (a warning names its
missing credential) and run (its node fails naming it), local commands refuse to create a
database they did not find, and remote ones name the server they tried.
"""

from __future__ import annotations

import json
import os
import re
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from serve_support import Serve, free_port, serving

from flowplane.client import Client

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"
README = (ROOT / "README.md").read_text()


def code_blocks(language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", README, re.S)


def cli(*args: str, cwd: Path, env: dict[str, str] | None = None, stdin: str | None = None) -> Any:
    """Run ``flowplane ARGS`` with no ``FLOWPLANE_*`` variable but ``env``'s."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("FLOWPLANE_")}
    clean.update({"COLUMNS": "80", "NO_COLOR": "1", **(env or {})})
    return subprocess.run(
        [sys.executable, "-m", "flowplane", *args],
        cwd=cwd,
        env=clean,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.fixture
def make_run(tmp_path: Path) -> Iterator[Serve]:
    """``make run`` in a fresh clone: SQLite in the working folder, the examples loaded."""
    base = tmp_path / "clone"
    env = {"FLOWPLANE_SECRET_KEY": "", "FLOWPLANE_DATA_DIR": "flowplane-data"}
    args = ("--load-examples", str(EXAMPLES))
    with serving(base, f"sqlite:///{base / 'flowplane.db'}", *args, root=EXAMPLES, env=env) as s:
        yield s


def test_the_readme_python_blocks_run_after_make_run(
    make_run: Serve, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert "Loaded" in make_run.log.read_text()  # the examples were there first
    monkeypatch.chdir(ROOT)  # the snippets' paths are relative to the clone
    blocks = code_blocks("python")
    assert blocks
    printed: list[str] = []
    for block in blocks:
        code = block.replace('"http://127.0.0.1:8080"', repr(make_run.url))
        code = code.replace('token="fp_..."', f"token={make_run.key!r}")
        namespace = {"print": lambda *a: printed.append(" ".join(map(str, a)))}
        exec(compile(code, "README.md", "exec"), namespace)
    assert printed == ["finished"]


def test_the_generated_master_key_makes_credentials_work(make_run: Serve) -> None:
    base = make_run.log.parent
    key_file = base / "flowplane-data" / "master.key"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert f"Generated the master key for credentials in {key_file}" in make_run.log.read_text()

    headline = next(b for b in code_blocks("yaml") if "SHOP_TOKEN" in b)
    (base / "order.yaml").write_text(headline)
    token = {"FLOWPLANE_TOKEN": make_run.key}
    check = ("validate", "order.yaml", "--server", make_run.url)
    warned = cli(*check, cwd=base, env=token)
    assert warned.returncode == 0, warned.stdout + warned.stderr
    assert "warning [credential_missing] node 'fetch': uses credential 'SHOP_TOKEN'" in " ".join(
        warned.stdout.split()
    )
    locally = cli("validate", "order.yaml", cwd=base)
    assert locally.returncode == 0 and "SHOP_TOKEN" in locally.stdout
    with Client(make_run.url, token=make_run.key) as fp:
        checked = fp.validate_workflow(headline)
        assert checked.valid
        assert [(w.code, w.value) for w in checked.warnings] == [
            ("credential_missing", "SHOP_TOKEN")
        ]
        wf = fp.apply_workflow(headline)
        run = fp.wait(fp.run_workflow(wf.id, input={"order_id": 7}).run_id, timeout=60)
        assert run.status == "failed"
        error = run.node("fetch").error
        assert error["code"] == "credential_missing" and "SHOP_TOKEN" in error["message"]

        assert fp.create_credential("API_KEY", "over-the-api").version == 1
        stored = cli("secrets", "set", "SHOP_TOKEN", "--value-stdin", cwd=base, stdin="tok\n")
        assert stored.returncode == 0, stored.stderr
        assert "created" in stored.stderr
        assert {c.name for c in fp.list_credentials().items} == {"API_KEY", "SHOP_TOKEN"}
        assert fp.validate_workflow(headline).warnings == []
    quiet = cli(*check, cwd=base, env=token)
    assert quiet.returncode == 0 and "warning" not in quiet.stdout


def test_local_commands_never_create_a_database(tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    result = cli("approve", "some-run", "approve", cwd=elsewhere)
    assert result.returncode == 1
    assert f"no database at {elsewhere / 'flowplane.db'}" in " ".join(result.stderr.split())
    assert list(elsewhere.iterdir()) == []
    for command in (("secrets", "list"), ("db", "current"), ("worker",), ("audit",)):
        refused = cli(*command, cwd=elsewhere)
        assert refused.returncode == 1 and "no database at" in refused.stderr, command
    assert list(elsewhere.iterdir()) == []


def test_remote_commands_name_the_server(make_run: Serve, tmp_path: Path) -> None:
    nobody = f"http://127.0.0.1:{free_port()}"
    down = cli("runs", "list", "--server", nobody, cwd=tmp_path)
    assert down.returncode == 1 and f"cannot reach the server (server {nobody})" in down.stderr
    keyless = cli("runs", "list", cwd=tmp_path, env={"FLOWPLANE_URL": make_run.url})
    text = " ".join(keyless.stderr.split())
    assert keyless.returncode == 1 and f"(server {make_run.url})" in text and "--token" in text


def test_validate_shows_every_problem_in_one_pass(tmp_path: Path) -> None:
    broken = tmp_path / "broken.yaml"
    broken.write_text(
        "name: broken\n"
        "nodes:\n"
        "  - id: a\n"
        "    type: util.log\n"
        "    timeout: banana\n"
        "    params: {message: hi}\n"
        "  - id: b\n"
        "    needs: [a, zz]\n"
        "    type: nope.nope\n"
        "  - id: c\n"
        "    type: util.log\n"
        "    params: {messag: hi}\n"
    )
    result = cli("validate", str(broken), "--json", cwd=tmp_path)
    assert result.returncode == 1
    report = json.loads(result.stdout)
    found = {(e["node_id"], e["code"], e["line"]) for e in report["errors"]}
    assert found == {
        ("a", "workflow_invalid", 5),
        ("b", "unknown_need", 8),
        ("b", "unknown_type", 9),
        ("c", "missing_param", 12),
        ("c", "unknown_param", 12),
    }
