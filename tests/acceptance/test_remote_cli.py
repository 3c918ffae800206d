"""Remote CLI commands and the LLM repair example against a real ``flowplane serve`` process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from serve_support import Serve, serving
from typer.testing import CliRunner

from flowplane.cli.main import app
from flowplane.client import Client

REPO = Path(__file__).resolve().parents[2]
WORKFLOW = """\
name: cli-demo
nodes:
  - {id: hello, type: util.log, params: {message: "hello from the CLI"}}
  - {id: ask, type: control.approval, params: {title: "Go on?"}}
  - {id: done, type: util.set, params: {value: 42}}
"""


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Serve]:
    base = tmp_path_factory.mktemp("remote-cli")
    root = base / "root"
    root.mkdir()
    with serving(base, f"sqlite:///{base / 'fp.db'}", root=root) as running:
        yield running


def cli(server: Serve, *args: str, code: int = 0) -> str:
    result = CliRunner().invoke(app, list(args), env=server.env)
    assert result.exit_code == code, result.output
    return result.output


def cli_json(server: Serve, *args: str) -> Any:
    return json.loads(cli(server, *args, "--json"))


def test_workflows_commands(server: Serve, tmp_path: Path) -> None:
    file = tmp_path / "wf.yaml"
    file.write_text(WORKFLOW)
    assert cli_json(server, "workflows", "apply", str(file))["action"] == "created"
    again = cli_json(server, "workflows", "apply", str(file))
    assert again["action"] in ("unchanged", "updated")
    listed = cli_json(server, "workflows", "list")
    assert [w["name"] for w in listed] == ["cli-demo"]
    assert "name: cli-demo" in cli(server, "workflows", "export", "cli-demo")

    ops = tmp_path / "ops.json"
    ops.write_text(json.dumps([{"op": "add", "node_id": "x", "type": "util.nope", "params": {}}]))
    bad = cli(server, "workflows", "patch", listed[0]["id"], str(ops), code=1)
    assert "node_type_not_registered" in bad
    ops.write_text(json.dumps({"ops": [{"op": "edit", "node_id": "done", "params": {"value": 7}}]}))
    good = json.loads(cli(server, "workflows", "patch", listed[0]["id"], str(ops), "--json"))
    assert good["ok"] is True


def test_runs_commands(server: Serve, tmp_path: Path) -> None:
    with Client(server.url, token=server.key) as client:
        if not client.list_workflows().items:
            client.create_workflow(WORKFLOW)
        run = client.run_workflow(name="cli-demo")
        waiting = client.run_workflow(name="cli-demo")
        for run_id in (run.run_id, waiting.run_id):
            deadline = time.monotonic() + 20
            while client.get_run(run_id).status != "waiting-approval":
                assert time.monotonic() < deadline
                time.sleep(0.1)
        client.approve(run.run_id, "ask")
        client.wait(run.run_id, timeout=20)

    listed = cli_json(server, "runs", "list", "--limit", "1")
    assert len(listed["runs"]) == 1 and listed["nextCursor"]
    shown = cli_json(server, "runs", "show", run.run_id)
    assert shown["status"] == "finished" and shown["nodesTotal"] == 3
    assert "hello from the CLI" in cli(server, "runs", "logs", run.run_id)
    watched = cli(server, "runs", "watch", run.run_id)
    assert f"Run {run.run_id} finished" in watched and "✓ done finished" in watched
    assert "cancelled" in cli(server, "runs", "cancel", waiting.run_id)
    again = cli(server, "runs", "cancel", waiting.run_id, code=1)
    assert "RUN_NOT_ACTIVE" in again
    cli(server, "runs", "watch", waiting.run_id, code=1)
    resumed = cli_json(server, "runs", "resume", waiting.run_id)
    assert resumed["runId"] == waiting.run_id
    retried = cli_json(server, "runs", "retry", run.run_id)
    assert retried["runId"] != run.run_id
    assert "RUN_NOT_FOUND" in cli(server, "runs", "show", "nope", code=1)
    assert "nodeRunsTotal" not in shown and "nodesNextCursor" not in shown
    first = cli_json(server, "runs", "nodes", run.run_id, "--limit", "2")
    assert len(first["items"]) == 2 and first["nextCursor"]
    rest = cli_json(server, "runs", "nodes", run.run_id, "--cursor", first["nextCursor"])
    paged = [(n["nodeId"], n["iteration"]) for n in first["items"] + rest["items"]]
    assert paged == [(n["nodeId"], n["iteration"]) for n in shown["nodes"]]
    assert rest["nextCursor"] is None
    assert "more: --cursor" in cli(server, "runs", "nodes", run.run_id, "--limit", "1")


def test_cli_process_uses_environment(server: Serve) -> None:
    env = {**os.environ, **server.env}
    done = subprocess.run(
        [sys.executable, "-m", "flowplane", "runs", "list", "--json"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert "runs" in json.loads(done.stdout)
    denied = subprocess.run(
        [sys.executable, "-m", "flowplane", "runs", "list", "--token", "fp_wrong"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert denied.returncode == 1 and "unauthorized" in denied.stderr.lower()


def test_llm_repair_loop_example(server: Serve) -> None:
    done = subprocess.run(
        [
            sys.executable,
            str(REPO / "examples" / "llm_repair_loop.py"),
            "--server",
            server.url,
            "--token",
            server.key,
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "node_type_not_registered" in done.stdout
    assert '"HELLO ADA"' in done.stdout
