"""The CLI's server commands against a real ``flowplane serve``: running a stored workflow,
watching a run live and answering it, time travel, schedules, triggers, credentials and KV.

Commands run in-process (``CliRunner``, an 80-column console) except the watching ones, which
run as processes while the test answers the run from another "terminal".
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from serve_support import Serve, serving
from typer.testing import CliRunner

from flowplane.cli.main import app
from flowplane.client import Client

APPROVAL = """\
name: gate
nodes:
  - {id: hello, type: util.log, params: {message: "hello"}}
  - {id: ask, type: control.approval, params: {title: "Go on?"}}
  - {id: done, type: util.set, params: {value: 42}}
"""
GREET = """\
name: greet
inputs: {type: object, properties: {who: {type: string}}}
nodes:
  - {id: a, type: util.log, params: {message: "hi {{ input.who }}"}}
  - {id: c, type: util.set, params: {value: {greeted: "{{ input.who }}"}}}
"""


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Serve]:
    base = tmp_path_factory.mktemp("cli-commands")
    root = base / "root"
    root.mkdir()
    env = {"FLOWPLANE_SECRET_KEY": ""}  # the generated master key, as on `make run`
    with serving(base, f"sqlite:///{base / 'fp.db'}", root=root, env=env) as running:
        with Client(running.url, token=running.key) as fp:
            fp.apply_workflow(APPROVAL)
            fp.apply_workflow(GREET)
        yield running


def cli(server: Serve, *args: str, code: int = 0, stdin: str | None = None) -> str:
    result = CliRunner().invoke(app, list(args), env=server.env, input=stdin)
    assert result.exit_code == code, result.output
    return result.output


def cli_json(server: Serve, *args: str) -> Any:
    return json.loads(cli(server, *args, "--json"))


class Watcher:
    """A ``flowplane`` process whose output is read line by line."""

    def __init__(self, server: Serve, *args: str) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("FLOWPLANE_")}
        env.update({**server.env, "NO_COLOR": "1", "COLUMNS": "120"})
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "flowplane", *args],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self.lines: list[str] = []

    def until(self, needle: str) -> str:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line)
            if needle in line:
                return line
        raise AssertionError(f"{needle!r} never came:\n{''.join(self.lines)}")

    def finish(self) -> tuple[int, str]:
        out, _ = self.proc.communicate(timeout=120)
        self.lines.append(out)
        return self.proc.returncode, "".join(self.lines)

    def close(self) -> None:
        """Stop the process if a failed test left it running, and close its pipe."""
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.communicate()


@pytest.fixture
def watch(server: Serve) -> Iterator[Callable[..., Watcher]]:
    """Start watchers; whatever happens, none outlives the test."""
    started: list[Watcher] = []

    def start(*args: str) -> Watcher:
        started.append(Watcher(server, *args))
        return started[-1]

    yield start
    for watcher in started:
        watcher.close()


def _answer(server: Serve, line: str) -> None:
    """Run the command a watcher printed (``flowplane approve ... --server URL``)."""
    argv = shlex.split(line.strip())
    assert argv[0] == "flowplane" and argv[-2:] == ["--server", server.url]
    cli(server, *argv[1:])


def test_workflows_run_watch_shows_the_table_and_how_to_approve(
    server: Serve, watch: Callable[..., Watcher]
) -> None:
    watcher = watch("workflows", "run", "gate", "--input", "{}", "--watch")
    first = watcher.until("Run ")
    run_id = first.split()[1]
    hint = watcher.until("flowplane approve")
    assert f"flowplane approve {run_id} ask --server {server.url}" in hint
    _answer(server, hint)
    code, out = watcher.finish()
    assert code == 0, out
    assert "ask" in out and "waiting approval" in out and f"Run {run_id} finished" in out


def test_runs_watch_of_a_waiting_run(server: Serve, watch: Callable[..., Watcher]) -> None:
    with Client(server.url, token=server.key) as fp:
        run = fp.run_workflow(name="gate")
        for event in fp.stream_events(run.run_id):
            if event.type == "NodeWaitingApproval":
                break
    watcher = watch("runs", "watch", run.run_id)
    hint = watcher.until("flowplane deny")
    assert f"flowplane deny {run.run_id} ask --server {server.url}" in hint
    _answer(server, hint)
    code, out = watcher.finish()
    assert code == 1, out  # denied: the run failed
    assert "hello" in out and f"Run {run.run_id} failed" in out


def test_time_travel_commands(server: Serve) -> None:
    out = cli(server, "workflows", "run", "greet", "-i", '{"who": "ann"}', "--watch", "--json")
    events = [json.loads(line) for line in out.splitlines()]  # --watch --json: JSON lines
    assert events[0]["type"] == "RunStarted" and events[-1]["type"] == "RunFinished"
    original = events[0]["runId"]
    frames = cli_json(server, "runs", "frames", original)
    assert [f["frameNo"] for f in frames] == list(range(1, len(frames) + 1))
    table = cli(server, "runs", "frames", original)
    assert "c[0]" in table

    out = cli(server, "runs", "fork", original, "--from-node", "c", "--input", '{"who": "bob"}')
    fork_id = out.split()[1]
    with Client(server.url, token=server.key) as fp:
        assert fp.wait(fork_id, timeout=60).node("c").output == {"greeted": "bob"}
    diff = cli_json(server, "runs", "diff", original, fork_id)
    assert diff["inputChanged"] and diff["changedNodes"] == ["c"]
    assert "c" in cli(server, "runs", "diff", original, fork_id)

    rewound = cli(server, "runs", "rewind", original, "1", "--watch")
    assert f"Run {original} finished" in rewound
    cli(server, "runs", "fork", original, code=2)  # neither --frame nor --from-node


def test_schedule_and_trigger_commands(server: Serve) -> None:
    created = cli_json(
        server, "schedules", "create", "greet", "--cron", "0 3 * * *", "--input", '{"who": "c"}'
    )
    schedule_id = created["id"]
    assert created["cron"] == "0 3 * * *" and created["enabled"]
    assert schedule_id in cli(server, "schedules", "list")  # whole, at 80 columns
    assert cli_json(server, "schedules", "show", schedule_id)["input"] == {"who": "c"}
    assert cli_json(server, "schedules", "update", schedule_id, "--disable")["enabled"] is False
    fired = cli(server, "schedules", "trigger", schedule_id, "--watch")
    assert "finished" in fired
    cli(server, "schedules", "delete", schedule_id)
    cli(server, "schedules", "show", schedule_id, code=1)

    trigger = cli_json(server, "triggers", "create", "greet", "--key", "greet-hook")
    assert trigger["url"].endswith("/v1/webhooks/greet-hook")
    assert trigger["id"] in cli(server, "triggers", "list")
    assert "greet-hook" in cli(server, "triggers", "show", trigger["id"])
    cli(server, "triggers", "delete", trigger["id"])
    assert cli_json(server, "triggers", "list")["items"] == []


def test_credential_and_kv_commands(server: Serve) -> None:
    cli(server, "credentials", "set", "SHOP_TOKEN", "--value-stdin", stdin="s3cr3t\n")
    cli(server, "credentials", "set", "SHOP_TOKEN", "--value-stdin", stdin="again\n")
    (listed,) = cli_json(server, "credentials", "list")
    assert listed["name"] == "SHOP_TOKEN" and listed["version"] == 2
    assert "s3cr3t" not in cli(server, "credentials", "list")
    cli(server, "credentials", "delete", "SHOP_TOKEN")
    assert cli_json(server, "credentials", "list") == []

    assert cli_json(server, "kv", "set", "default", "orders/7", '{"paid": true}')["version"] == 1
    cli(server, "kv", "set", "default", "word", "plain")
    assert cli_json(server, "kv", "get", "default", "word")["value"] == "plain"
    assert json.loads(cli(server, "kv", "get", "default", "orders/7")) == {"paid": True}
    keys = [
        e["key"] for e in cli_json(server, "kv", "list", "default", "--prefix", "orders/")["items"]
    ]
    assert keys == ["orders/7"]
    cli(server, "kv", "set", "default", "orders/7", "1", "--if-match", "5", code=1)
    cli(server, "kv", "delete", "default", "orders/7")
    cli(server, "kv", "get", "default", "orders/7", code=1)


def test_lists_print_whole_ids(server: Serve) -> None:
    with Client(server.url, token=server.key) as fp:
        workflow_ids = [w.id for w in fp.list_workflows().items]
        run_ids = [r.run_id for r in fp.list_runs(limit=5).items]
    workflows = cli(server, "workflows", "list")
    assert all(i in workflows for i in workflow_ids) and "…" not in workflows
    runs = cli(server, "runs", "list", "--limit", "5")
    assert run_ids and all(i in runs for i in run_ids) and "…" not in runs
