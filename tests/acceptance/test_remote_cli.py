"""Remote CLI commands and the LLM repair example against a real ``flowplane serve`` process."""

from __future__ import annotations

import json
import os
import secrets
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
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


@dataclass
class Server:
    """A running ``flowplane serve``."""

    url: str
    key: str

    @property
    def env(self) -> dict[str, str]:
        return {"FLOWPLANE_URL": self.url, "FLOWPLANE_TOKEN": self.key}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    base = tmp_path_factory.mktemp("remote-cli")
    root = base / "root"
    root.mkdir()
    port = _free_port()
    key = f"fp_{secrets.token_hex(6)}_{secrets.token_urlsafe(32)}"
    env = {
        **os.environ,
        "FLOWPLANE_ADMIN_KEY": key,
        "FLOWPLANE_POLL_INTERVAL_SECONDS": "0.2",
        "FLOWPLANE_DATA_DIR": str(base / "data"),
    }
    cmd = [
        sys.executable,
        "-m",
        "flowplane",
        "serve",
        "--port",
        str(port),
        "--database-url",
        f"sqlite:///{base / 'fp.db'}",
        "--root",
        str(root),
    ]
    log = (base / "serve.log").open("w")
    proc = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT, cwd=base)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError((base / "serve.log").read_text())
            time.sleep(0.2)
        yield Server(url, key)
    finally:
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


def cli(server: Server, *args: str, code: int = 0) -> str:
    result = CliRunner().invoke(app, list(args), env=server.env)
    assert result.exit_code == code, result.output
    return result.output


def cli_json(server: Server, *args: str) -> Any:
    return json.loads(cli(server, *args, "--json"))


def test_workflows_commands(server: Server, tmp_path: Path) -> None:
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


def test_runs_commands(server: Server, tmp_path: Path) -> None:
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
    assert "RunFinished" in watched and "finished" in watched
    assert "cancelled" in cli(server, "runs", "cancel", waiting.run_id)
    again = cli(server, "runs", "cancel", waiting.run_id, code=1)
    assert "RUN_NOT_ACTIVE" in again
    cli(server, "runs", "watch", waiting.run_id, code=1)
    resumed = cli_json(server, "runs", "resume", waiting.run_id)
    assert resumed["runId"] == waiting.run_id
    retried = cli_json(server, "runs", "retry", run.run_id)
    assert retried["runId"] != run.run_id
    assert "RUN_NOT_FOUND" in cli(server, "runs", "show", "nope", code=1)


def test_cli_process_uses_environment(server: Server) -> None:
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


def test_llm_repair_loop_example(server: Server) -> None:
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
