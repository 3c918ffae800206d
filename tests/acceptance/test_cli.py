"""The ``flowplane`` command as users run it: real processes, a real database file.

Each test starts ``python -m flowplane ...`` with ``FLOWPLANE_*`` variables pointing at a
fresh SQLite file (and, for one variant, a fresh PostgreSQL schema).
"""

from __future__ import annotations

import asyncio
import json
import os
import queue
import re
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

from conftest import POSTGRES_URL, drop_schema, require_postgres
from flowplane.services.caller import Caller
from flowplane.services.runs import RunService
from flowplane.store.base import Store

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"
FLOWPLANE = [sys.executable, "-m", "flowplane"]
WAIT_SECONDS = 120.0


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    """Environment of a CLI process: its own SQLite file, fast polling, no server URL."""
    values = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith("FLOWPLANE_") or key.startswith("FLOWPLANE_TEST_")
    }
    values.update(
        {
            "FLOWPLANE_DATABASE_URL": f"sqlite:///{tmp_path / 'flowplane.db'}",
            "FLOWPLANE_POLL_INTERVAL_SECONDS": "0.2",
            "FLOWPLANE_LOG_LEVEL": "info",
            "COLUMNS": "200",
            "NO_COLOR": "1",
        }
    )
    return values


def flowplane(
    *args: str, env: dict[str, str], cwd: Path | None = None, timeout: float = WAIT_SECONDS
) -> subprocess.CompletedProcess[str]:
    """Run ``flowplane ARGS`` to completion."""
    return subprocess.run(
        [*FLOWPLANE, *args],
        env=env,
        cwd=cwd or ROOT,
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        timeout=timeout,
        check=False,
    )


class Process:
    """A running ``flowplane`` process whose output lines are read as they come."""

    def __init__(self, *args: str, env: dict[str, str], cwd: Path | None = None) -> None:
        self.proc = subprocess.Popen(
            [*FLOWPLANE, *args],
            env=env,
            cwd=cwd or ROOT,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.stdout: list[str] = []
        self.stderr: list[str] = []
        self._lines: queue.Queue[tuple[str, str]] = queue.Queue()
        assert self.proc.stdout is not None and self.proc.stderr is not None
        self._pumps = [
            threading.Thread(target=self._pump, args=(name, stream), daemon=True)
            for name, stream in (("stdout", self.proc.stdout), ("stderr", self.proc.stderr))
        ]
        for pump in self._pumps:
            pump.start()

    def _pump(self, name: str, stream: Any) -> None:
        for line in stream:
            self._lines.put((name, line.rstrip("\n")))

    def _drain(self, timeout: float) -> bool:
        try:
            name, line = self._lines.get(timeout=timeout)
        except queue.Empty:
            return False
        (self.stdout if name == "stdout" else self.stderr).append(line)
        return True

    def expect(self, predicate: Callable[[str, str], bool], timeout: float = WAIT_SECONDS) -> str:
        """Wait for a line for which ``predicate(stream, line)`` holds; return it."""
        checked = {"stdout": 0, "stderr": 0}
        deadline = time.monotonic() + timeout
        while True:
            for name, lines in (("stdout", self.stdout), ("stderr", self.stderr)):
                for line in lines[checked[name] :]:
                    if predicate(name, line):
                        return line
                checked[name] = len(lines)
            if time.monotonic() > deadline:
                raise AssertionError(f"no matching line in time:\n{self.output()}")
            if not self._drain(0.1) and self.proc.poll() is not None and self._lines.empty():
                raise AssertionError(f"process exited {self.proc.returncode}:\n{self.output()}")

    def event(self, kind: str, timeout: float = WAIT_SECONDS) -> dict[str, Any]:
        """Wait for the ``--json`` event of type ``kind`` on stdout."""
        line = self.expect(
            lambda name, text: name == "stdout" and f'"type": "{kind}"' in text, timeout
        )
        event: dict[str, Any] = json.loads(line)
        return event

    def wait(self, timeout: float = WAIT_SECONDS) -> int:
        """Wait for the exit status, collecting the remaining output."""
        code = self.proc.wait(timeout=timeout)
        for pump in self._pumps:
            pump.join(timeout=10)
        while self._drain(0):
            pass
        return code

    def events(self) -> list[dict[str, Any]]:
        """Every JSON event printed on stdout."""
        return [json.loads(line) for line in self.stdout if line.startswith("{")]

    def output(self) -> str:
        """Everything printed so far, for assertion messages."""
        return "\n".join(["--- stdout", *self.stdout, "--- stderr", *self.stderr])

    def close(self) -> None:
        """Kill the process if it is still running and close its pipes."""
        if self.proc.poll() is None:
            self.proc.kill()
        self.wait(timeout=10)
        for stream in (self.proc.stdout, self.proc.stderr):
            if stream is not None:
                stream.close()


@pytest.fixture
def processes() -> Iterator[list[Process]]:
    """Processes started by a test, killed at its end whatever happens."""
    started: list[Process] = []
    yield started
    for process in started:
        process.close()


# --- validate -----------------------------------------------------------------------------


def test_validate_accepts_every_example(env: dict[str, str]) -> None:
    files = sorted(str(p.relative_to(ROOT)) for p in EXAMPLES.glob("*.yaml"))
    result = flowplane("validate", *files, env=env)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.count(": valid") == len(files)
    assert "workflow daily-sales-report, 5 nodes, 5 edges" in result.stdout


BAD_WORKFLOW = """\
name: broken
nodes:
  - id: fetch
    type: http.requst
    params: {url: "https://example.com"}
  - id: use
    type: util.log
    needs: [fetch, missing]
    params:
      message: "{{ nodes.later.output }}"
      colour: red
  - id: later
    type: util.noop
    needs: [use]
"""


def test_validate_reports_errors_with_lines_and_context(
    env: dict[str, str], tmp_path: Path
) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(BAD_WORKFLOW)
    result = flowplane("validate", str(bad), env=env)
    assert result.returncode == 1
    out = result.stdout
    assert f"{bad}:4:11: [unknown_type] node 'fetch' type: unknown connector type" in out
    assert "did you mean 'http.request'" in out
    assert f"{bad}:8:20: [unknown_need] node 'use' needs: needs unknown node 'missing'" in out
    assert f"{bad}:10:26: [not_upstream] node 'use' params: references nodes.later" in out
    assert f"{bad}:11:7: [unknown_param] node 'use' params.colour: unknown param 'colour'" in out
    # The source line is shown, the offending token underlined.
    assert "    4 |     type: http.requst\n      |           ^^^^^^^^^^^\n" in out
    assert "    8 |     needs: [fetch, missing]\n      |                    ^^^^^^^\n" in out
    assert "bad.yaml: 4 problems" in out

    as_json = flowplane("validate", str(bad), "--json", env=env)
    assert as_json.returncode == 1
    report = json.loads(as_json.stdout)
    assert report["valid"] is False
    codes = {(e["code"], e["line"]) for e in report["errors"]}
    assert ("unknown_type", 4) in codes and ("unknown_need", 8) in codes


def test_validate_reports_yaml_syntax_errors_with_line_and_column(
    env: dict[str, str], tmp_path: Path
) -> None:
    bad = tmp_path / "syntax.yaml"
    bad.write_text("name: x\nnodes:\n  - id: a\n    type: util.noop\n   params: {}\n")
    result = flowplane("validate", str(bad), env=env)
    assert result.returncode == 1
    assert re.search(rf"{re.escape(str(bad))}:\d+:\d+: \[document_invalid\]", result.stdout)

    missing = flowplane("validate", str(tmp_path / "nope.yaml"), env=env)
    assert missing.returncode == 2
    assert "no such file" in missing.stderr


# --- run ----------------------------------------------------------------------------------


@pytest.mark.slow
def test_run_json_prints_events_and_exit_codes(env: dict[str, str], tmp_path: Path) -> None:
    signups = {"signups": [{"name": "Ada", "email": "ada@example.com"}]}
    result = flowplane(
        "run", "examples/foreach_list.yaml", "--input", json.dumps(signups), "--json", env=env
    )
    assert result.returncode == 0, result.stdout + result.stderr
    events = [json.loads(line) for line in result.stdout.splitlines()]
    assert events[0]["type"] == "RunStarted"
    assert events[-1]["type"] == "RunFinished"
    assert events[-1]["output"]["summary"]["recipients"] == ["ada@example.com"]
    assert [e["seq"] for e in events] == sorted(e["seq"] for e in events)

    failing = tmp_path / "failing.yaml"
    failing.write_text(
        "name: failing\nnodes:\n  - id: boom\n    type: util.fail\n"
        "    params: {message: kaput, retryable: false}\n"
    )
    failed = flowplane("run", str(failing), "--json", env=env)
    assert failed.returncode == 1
    assert json.loads(failed.stdout.splitlines()[-1])["type"] == "RunFailed"

    invalid_input = flowplane("run", "examples/foreach_list.yaml", "--input", "{}", env=env)
    assert invalid_input.returncode == 2
    assert "signups" in invalid_input.stderr
    not_json = flowplane("run", "examples/foreach_list.yaml", "--input", "{oops", env=env)
    assert not_json.returncode == 2
    assert "not valid JSON" in not_json.stderr
    (tmp_path / "invalid.yaml").write_text(BAD_WORKFLOW)
    invalid = flowplane("run", str(tmp_path / "invalid.yaml"), env=env)
    assert invalid.returncode == 2
    assert "[unknown_type]" in invalid.stderr


def test_run_live_view_prints_progress_and_outputs(env: dict[str, str]) -> None:
    result = flowplane(
        "run",
        "examples/fan_out_fan_in.yaml",
        "--input-file",
        "examples/fan_out_fan_in.input.json",
        env=env,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    assert "workflow daily-sales-report" in out
    for node in ("paid", "amounts", "best_customer", "refunds", "report"):
        assert f"✓ {node} finished" in out
    assert "finished in" in out
    outputs = json.loads(out[out.index("Outputs:") + len("Outputs:") :])
    assert outputs["report"]["revenue"] == 365.5


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_run_waits_for_an_approval_given_from_another_process(
    env: dict[str, str], backend: str, processes: list[Process]
) -> None:
    schema = None
    db_flags: list[str] = []
    if backend == "postgres":
        require_postgres()
        schema = f"cli_{uuid.uuid4().hex[:12]}"
        db_flags = ["--database-url", POSTGRES_URL, "--database-schema", schema]
    try:
        run = Process(
            "run",
            "examples/approval_gate.yaml",
            "--input",
            '{"service": "billing", "version": "2.4.1"}',
            "--json",
            *db_flags,
            env=env,
        )
        processes.append(run)
        waiting = run.event("NodeWaitingApproval")
        run_id = waiting["runId"]
        assert waiting["nodeId"] == "approve"
        hint = run.expect(lambda name, line: name == "stderr" and "flowplane approve" in line)
        assert f"flowplane approve {run_id} approve --database-url" in hint
        if schema:
            assert f"--database-schema {schema}" in hint

        approved = flowplane(
            "approve", run_id, "approve", "--note", "ship it", "--by", "alice", *db_flags, env=env
        )
        assert approved.returncode == 0, approved.stdout + approved.stderr
        assert "approved" in approved.stdout

        assert run.wait() == 0, run.output()
        finished = run.events()[-1]
        assert finished["type"] == "RunFinished"
        assert finished["output"]["notify"] == {
            "service": "billing",
            "version": "2.4.1",
            "approved": True,
            "note": "ship it",
        }
        again = flowplane("deny", run_id, "approve", *db_flags, env=env)
        assert again.returncode == 1
        assert "run_not_active" in again.stderr.lower() or "already" in again.stderr.lower()
    finally:
        if schema:
            drop_schema(schema)


def test_signal_command_completes_a_waiting_node(
    env: dict[str, str], processes: list[Process]
) -> None:
    run = Process(
        "run", "examples/order_followup.yaml", "--input", '{"order_id": 8, "total": 50}',
        "--json", env=env,
    )  # fmt: skip
    processes.append(run)
    run_id = run.event("NodeWaitingEvent")["runId"]
    hint = run.expect(lambda name, line: name == "stderr" and "flowplane signal" in line)
    assert "--correlation-id order-8" in hint
    sent = flowplane(
        "signal", run_id, "payment-received", "--payload", '{"amount": 50}',
        "--correlation-id", "order-8", env=env,
    )  # fmt: skip
    assert sent.returncode == 0, sent.stderr
    assert "delivered to node 'payment'" in sent.stdout
    assert run.wait() == 0, run.output()
    assert run.events()[-1]["output"]["result"]["refund_step"] == "skipped"


def test_ctrl_c_cancels_the_run(env: dict[str, str], processes: list[Process]) -> None:
    run = Process(
        "run",
        "examples/approval_gate.yaml",
        "--input",
        '{"service": "billing", "version": "2.4.1"}',
        "--json",
        env=env,
    )
    processes.append(run)
    run_id = run.event("NodeWaitingApproval")["runId"]
    run.proc.send_signal(signal.SIGINT)
    assert run.wait() == 130, run.output()
    assert run.events()[-1]["type"] == "RunCancelled"
    assert any("Cancelling" in line for line in run.stderr)
    late = flowplane("approve", run_id, "approve", env=env)
    assert late.returncode == 1


# --- worker, serve, db --------------------------------------------------------------------


def test_db_upgrade_and_current(env: dict[str, str]) -> None:
    upgraded = flowplane("db", "upgrade", env=env)
    assert upgraded.returncode == 0, upgraded.stderr
    assert "upgraded from empty to" in upgraded.stdout
    again = flowplane("db", "upgrade", env=env)
    assert "already at revision" in again.stdout
    current = flowplane("db", "current", env=env)
    assert current.returncode == 0
    assert "up to date" in current.stdout


class SlowServer:
    """A local HTTP server that answers after ``delay`` seconds (an in-flight node)."""

    def __init__(self, delay: float) -> None:
        delay_seconds = delay

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                time.sleep(delay_seconds)
                body = b'{"slow": true}'
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self) -> SlowServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


async def wait_until(check: Callable[[], Awaitable[bool]], what: str) -> None:
    """Poll ``check`` until it holds."""
    deadline = time.monotonic() + WAIT_SECONDS
    while not await check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.1)


async def test_worker_executes_runs_and_finishes_in_flight_nodes_on_sigterm(
    env: dict[str, str], processes: list[Process]
) -> None:
    assert flowplane("db", "upgrade", env=env).returncode == 0
    worker = Process(
        "worker", "--concurrency", "4", env={**env, "FLOWPLANE_ALLOW_HOSTS": "127.0.0.1"}
    )
    processes.append(worker)
    worker.expect(lambda name, line: "worker" in line and "started" in line)

    store = await Store.open(env["FLOWPLANE_DATABASE_URL"], migrate=False)
    try:
        runs = RunService(store)
        quick = {
            "name": "worker-smoke",
            "nodes": [
                {"id": "a", "type": "util.set", "params": {"value": "{{ input.n * 2 }}"}},
                {"id": "b", "type": "util.log", "params": {"message": "{{ nodes.a.output }}"}},
            ],
        }
        started = await runs.start(Caller.system(), quick, {"n": 21})
        run_id = started.run.id

        async def finished(run_id: str = run_id) -> bool:
            return bool((await runs.get(Caller.system(), run_id)).status == "finished")

        await wait_until(finished, "the quick run")
        assert (await runs.get(Caller.system(), run_id)).output == {"b": {"message": "42"}}

        with SlowServer(delay=2.0) as server:
            slow = {
                "name": "in-flight",
                "nodes": [{"id": "call", "type": "http.request", "params": {"url": server.url}}],
            }
            slow_id = (await runs.start(Caller.system(), slow)).run.id

            async def in_progress() -> bool:
                nodes = await runs.nodes(Caller.system(), slow_id)
                return any(n.status == "in-progress" for n in nodes)

            await wait_until(in_progress, "the slow node to start")
            worker.proc.send_signal(signal.SIGTERM)
            # Graceful: the worker stops claiming but lets the in-flight node finish.
            assert await asyncio.to_thread(worker.wait) == 0, worker.output()
        run = await runs.get(Caller.system(), slow_id)
        assert run.status == "finished", run
        assert run.output["call"]["body"] == {"slow": True}
    finally:
        await store.close()
    assert any("finishing in-flight node runs" in line for line in worker.stderr)
    assert any("worker stopped" in line for line in worker.stderr)


def test_serve_listens_and_stops_on_sigterm(env: dict[str, str], processes: list[Process]) -> None:
    server = Process("serve", "--port", "0", "--workers", "1", env=env)
    processes.append(server)
    line = server.expect(lambda name, text: "Flowplane listening on" in text)
    url = line.split("listening on ", 1)[1].strip()
    assert re.fullmatch(r"http://127\.0\.0\.1:\d+", url)
    health = httpx.get(f"{url}/health", timeout=10)
    assert health.status_code == 200
    server.proc.send_signal(signal.SIGTERM)
    # uvicorn re-raises the signal it handled once shut down: the status says SIGTERM.
    assert server.wait() in (0, -signal.SIGTERM), server.output()


def test_version_and_help(env: dict[str, str]) -> None:
    version = flowplane("version", env=env)
    assert version.returncode == 0 and version.stdout.startswith("flowplane ")
    helped = flowplane("--help", env=env)
    for command in ("run", "validate", "worker", "serve", "db", "approve", "deny", "signal"):
        assert re.search(rf"│ {command}\s", helped.stdout), command
