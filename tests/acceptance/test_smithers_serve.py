"""Smithers' own serve-mode tests, ported: ``packages/server/tests/serve.test.js`` of
smithersai/smithers, sent black-box over HTTP to real ``flowplane run FILE --serve``
processes, on SQLite and PostgreSQL.

Smithers builds one serve app per test around a run of a ``.tsx`` workflow; here each kind
of run (slow, fast, waiting for an approval to grant, waiting for one to deny) is one
``flowplane run --serve`` process per backend, shared by the module's tests. The tests keep
Smithers' names and wire assertions; every JSON answer is also checked for
``Cache-Control: no-store`` and ``X-Content-Type-Options: nosniff``.

Left out or changed, and why (also in docs/smithers.md):

- "all routes accessible without auth when no token configured": serve mode never runs
  without a key (a fresh one is printed when ``FLOWPLANE_ADMIN_KEY`` is unset).
- "returns 404 when metrics disabled": serve mode has no switch to turn ``/metrics`` off.
- "Metrics after operations" read Smithers' own families (``smithers_runs_total``, ...);
  the ports read Flowplane's families for the same facts (``flowplane_runs_started_total``,
  ``flowplane_node_duration_seconds_count``, ``flowplane_approvals_granted_total``, ...).
  Flowplane has no run-duration histogram and counts node attempts (not starts and
  finishes separately), so those two Smithers families have no counterpart.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from backend_serve import database_args
from serve_support import new_key

from conftest import BACKENDS, drop_schema

SERVING = re.compile(r"Serving run (\S+) on (http://\S+)")
START_SECONDS = 60.0

FAST = """\
name: finished
nodes:
  - {id: task1, type: util.set, params: {value: {value: 42}}}
"""
SLOW = """\
name: status
nodes:
  - {id: task1, type: wait.duration, params: {duration: 60s}}
"""
APPROVAL = """\
name: approve
nodes:
  - {id: task1, type: control.approval, params: {title: "Go on?"}}
  - {id: after, type: util.set, needs: [task1], params: {value: {value: 42}}}
"""
WORKFLOWS = {"fast": FAST, "slow": SLOW, "approve": APPROVAL, "deny": APPROVAL}


@dataclass
class ServeApp:
    """A ``flowplane run wf.yaml --serve`` process: Smithers' ``startServeApp``."""

    proc: subprocess.Popen[bytes]
    url: str
    run_id: str
    key: str

    def request(
        self,
        path: str,
        method: str = "GET",
        body: Any = None,
        headers: dict[str, str] | None = None,
        *,
        auth: bool = True,
    ) -> tuple[int, Any]:
        """Smithers' ``request``: ``(status, JSON body)``; every answer must be JSON with
        Smithers' headers."""
        sent = {**({"Authorization": f"Bearer {self.key}"} if auth else {}), **(headers or {})}
        response = httpx.request(method, f"{self.url}{path}", json=body, headers=sent, timeout=10)
        assert "json" in response.headers["content-type"], response.headers
        assert response.headers["cache-control"] == "no-store"
        assert response.headers["x-content-type-options"] == "nosniff"
        return response.status_code, response.json()

    def metrics(self) -> dict[str, float]:
        """``GET /metrics`` parsed as Smithers' ``parsePrometheusText`` does."""
        response = httpx.get(f"{self.url}/metrics", headers=self.auth, timeout=10)
        assert response.status_code == 200
        return parse_prometheus_text(response.text)

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.key}"}

    def wait_for_status(self, statuses: list[str], timeout: float = 20) -> Any:
        """Smithers' ``waitForServeRunStatus``."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            status, data = self.request("/")
            if status == 200 and data["status"] in statuses:
                return data
            time.sleep(0.05)
        raise AssertionError(f"the served run did not reach one of {statuses}")


def parse_prometheus_text(text: str) -> dict[str, float]:
    """Metric line key (name plus labels) to value, comments skipped."""
    metrics: dict[str, float] = {}
    for line in text.splitlines():
        if line.startswith("#") or not line.strip():
            continue
        match = re.match(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})?\s+(.+)$", line)
        if match:
            try:
                metrics[match.group(1) + (match.group(2) or "")] = float(match.group(3))
            except ValueError:
                continue
    return metrics


def metric_value(snapshot: dict[str, float], name: str) -> float:
    """The sum of ``name``'s series (0 when absent), as Smithers' ``metricValue``."""
    return sum(v for k, v in snapshot.items() if k == name or k.startswith(f"{name}{{"))


@dataclass
class Launched:
    """A ``flowplane run wf.yaml --serve --port 0`` process that has not printed its URL yet."""

    proc: subprocess.Popen[bytes]
    stderr: Path
    key: str
    schema: str | None


def launch_serve_app(base: Path, backend: str, workflow: str) -> Launched:
    """Start ``flowplane run wf.yaml --serve --port 0`` (see :func:`wait_serving`)."""
    base.mkdir(parents=True, exist_ok=True)
    (base / "wf.yaml").write_text(workflow)
    key = new_key()
    env = {k: v for k, v in os.environ.items() if k != "FLOWPLANE_ADMIN_KEY"}
    env.update(
        FLOWPLANE_ADMIN_KEY=key,
        FLOWPLANE_POLL_INTERVAL_SECONDS="0.2",
        FLOWPLANE_DATA_DIR=str(base / "data"),
    )
    db_args, schema = database_args(backend, base)
    cmd = [sys.executable, "-m", "flowplane", "run", "wf.yaml", "--serve", "--port", "0"]
    stderr = base / "stderr.txt"
    with (base / "stdout.txt").open("wb") as out, stderr.open("wb") as err:
        proc = subprocess.Popen([*cmd, *db_args], env=env, stdout=out, stderr=err, cwd=base)
    return Launched(proc, stderr, key, schema)


def wait_serving(launched: Launched) -> ServeApp:
    """Wait for a launched app to print its URL (killed if it does not)."""
    deadline = time.monotonic() + START_SECONDS
    proc, stderr = launched.proc, launched.stderr
    while not (found := SERVING.search(stderr.read_text())):
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            raise RuntimeError(f"no URL printed:\n{stderr.read_text()}")
        time.sleep(0.1)
    return ServeApp(proc, found.group(2), found.group(1), launched.key)


def start_serve_app(base: Path, backend: str, workflow: str) -> tuple[ServeApp, str | None]:
    """Start ``flowplane run wf.yaml --serve --port 0``; wait for its URL."""
    launched = launch_serve_app(base, backend, workflow)
    return wait_serving(launched), launched.schema


def stop_serve_app(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM, then SIGKILL if it has not stopped in 20 s."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)


@pytest.fixture(scope="module", params=BACKENDS)
def apps(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, ServeApp]]:
    """One served run of each kind, on each backend (started side by side)."""
    base = tmp_path_factory.mktemp(f"smithers-serve-{request.param}")
    launched: dict[str, Launched] = {}
    try:
        for name, workflow in WORKFLOWS.items():
            launched[name] = launch_serve_app(base / name, request.param, workflow)
        yield {name: wait_serving(one) for name, one in launched.items()}
    finally:
        for one in launched.values():
            stop_serve_app(one.proc)
        for one in launched.values():
            if one.schema is not None:
                drop_schema(one.schema)


# --- GET / ------------------------------------------------------------------------------


def test_returns_run_status_for_a_running_workflow(apps: dict[str, ServeApp]) -> None:
    app = apps["slow"]
    status, data = app.request("/")
    assert status == 200
    assert data["runId"] == app.run_id
    assert data["status"]
    assert data["workflowName"] == "status"
    assert isinstance(data["summary"], dict)


def test_returns_status_after_workflow_completes(apps: dict[str, ServeApp]) -> None:
    app = apps["fast"]
    data = app.wait_for_status(["finished"])
    assert data["runId"] == app.run_id
    assert data["status"] in ["finished", "running"]


# --- GET /health ------------------------------------------------------------------------


def test_health_returns_ok_even_when_auth_is_configured(apps: dict[str, ServeApp]) -> None:
    status, data = apps["slow"].request("/health", auth=False)
    assert status == 200
    assert data["ok"] is True


# --- Auth -------------------------------------------------------------------------------


def test_rejects_requests_without_token_when_auth_is_set(apps: dict[str, ServeApp]) -> None:
    status, data = apps["slow"].request("/", auth=False)
    assert status == 401
    assert data["error"]["code"] == "UNAUTHORIZED"
    wrong = apps["slow"].request("/", headers={"x-smithers-key": "secret"}, auth=False)
    assert wrong[0] == 401


def test_accepts_authorization_bearer_header(apps: dict[str, ServeApp]) -> None:
    app = apps["slow"]
    status, data = app.request("/", headers={"Authorization": f"Bearer {app.key}"}, auth=False)
    assert status == 200
    assert data["runId"] == app.run_id


def test_accepts_x_smithers_key_header(apps: dict[str, ServeApp]) -> None:
    app = apps["slow"]
    status, data = app.request("/", headers={"x-smithers-key": app.key}, auth=False)
    assert status == 200
    assert data["runId"] == app.run_id


# --- POST /approve/:nodeId, POST /deny/:nodeId ------------------------------------------


def test_approves_a_waiting_approval_task(apps: dict[str, ServeApp]) -> None:
    app = apps["approve"]
    app.wait_for_status(["waiting-approval", "finished"])
    before = app.metrics()
    status, data = app.request(
        "/approve/task1",
        "POST",
        {"iteration": 0, "note": "approved by test", "decidedBy": "test-user"},
    )
    assert status == 200
    assert data["runId"] == app.run_id
    app.wait_for_status(["finished"])
    # "approved task increments approval counters"
    after = app.metrics()
    assert metric_value(after, "flowplane_approvals_requested_total") >= 1
    granted = "flowplane_approvals_granted_total"
    assert metric_value(after, granted) - metric_value(before, granted) >= 1


def test_denies_a_waiting_approval_task(apps: dict[str, ServeApp]) -> None:
    app = apps["deny"]
    app.wait_for_status(["waiting-approval"])
    status, data = app.request(
        "/deny/task1", "POST", {"iteration": 0, "note": "denied by test", "decidedBy": "test-user"}
    )
    assert status == 200
    assert data["runId"] == app.run_id
    app.wait_for_status(["failed"])
    # "denied task increments denial counters"
    after = app.metrics()
    assert metric_value(after, "flowplane_approvals_requested_total") >= 1
    assert metric_value(after, "flowplane_approvals_denied_total") >= 1


# --- POST /cancel -----------------------------------------------------------------------


def test_cancels_a_running_workflow(tmp_path: Path, backend: str) -> None:
    app, schema = start_serve_app(tmp_path, backend, SLOW)
    try:
        status, data = app.request("/cancel", "POST")
        assert status == 200
        assert data["runId"] == app.run_id
        assert app.wait_for_status(["cancelled"])["status"] == "cancelled"
    finally:
        stop_serve_app(app.proc)
        if schema is not None:
            drop_schema(schema)


def test_cancel_returns_409_for_non_running_workflow(apps: dict[str, ServeApp]) -> None:
    app = apps["fast"]
    app.wait_for_status(["finished"])
    status, data = app.request("/cancel", "POST")
    assert status == 409
    assert data["error"]["code"] == "RUN_NOT_ACTIVE"


# --- GET /events ------------------------------------------------------------------------


def test_events_return_text_event_stream_content_type(apps: dict[str, ServeApp]) -> None:
    app = apps["slow"]
    with httpx.stream("GET", f"{app.url}/events", headers=app.auth, timeout=10) as response:
        assert response.status_code == 200
        assert "text/event-stream" in response.headers["content-type"]


def test_streams_real_events(apps: dict[str, ServeApp]) -> None:
    app = apps["slow"]
    received = ""
    with httpx.stream("GET", f"{app.url}/events", headers=app.auth, timeout=10) as response:
        for chunk in response.iter_text():
            received += chunk
            if "event: smithers" in received and "data: " in received:
                break
    assert "event: smithers" in received
    assert "data: " in received


def test_events_support_after_seq_query_param(apps: dict[str, ServeApp]) -> None:
    app = apps["slow"]
    url = f"{app.url}/events?afterSeq=999999"
    with httpx.stream("GET", url, headers=app.auth, timeout=10) as response:
        assert response.status_code == 200
        assert "text/event-stream" in response.headers["content-type"]


# --- GET /frames ------------------------------------------------------------------------


def test_returns_array_of_rendered_frames(apps: dict[str, ServeApp]) -> None:
    status, data = apps["slow"].request("/frames")
    assert status == 200
    assert isinstance(data, list)


def test_frames_respect_limit_param(apps: dict[str, ServeApp]) -> None:
    status, data = apps["slow"].request("/frames?limit=1")
    assert status == 200
    assert isinstance(data, list) and len(data) <= 1


# --- GET /metrics -----------------------------------------------------------------------


def test_metrics_return_prometheus_text_format(apps: dict[str, ServeApp]) -> None:
    app = apps["slow"]
    response = httpx.get(f"{app.url}/metrics", headers=app.auth, timeout=10)
    assert response.status_code == 200
    assert "text/plain" in response.headers["content-type"]
    assert len(response.text) > 0
    assert httpx.get(f"{app.url}/metrics", timeout=10).status_code == 401  # needs the key


def test_completed_workflow_increments_run_and_node_counters(apps: dict[str, ServeApp]) -> None:
    app = apps["fast"]
    app.wait_for_status(["finished"])
    after = app.metrics()
    assert metric_value(after, "flowplane_runs_started_total") >= 1
    assert metric_value(after, "flowplane_runs_finished_total") >= 1
    assert metric_value(after, "flowplane_node_duration_seconds_count") >= 1
    assert metric_value(after, "flowplane_events_total") >= 1


def test_http_request_metrics_increment_across_multiple_requests(
    apps: dict[str, ServeApp],
) -> None:
    app = apps["slow"]
    before = app.metrics()
    app.request("/")
    app.request("/health", auth=False)
    app.request("/frames")
    after = app.metrics()
    for name in ("flowplane_http_requests_total", "flowplane_http_request_duration_seconds_count"):
        assert metric_value(after, name) - metric_value(before, name) >= 2, name


def test_no_run_failed_or_node_failed_counters_after_clean_completion(
    apps: dict[str, ServeApp],
) -> None:
    app = apps["fast"]
    app.wait_for_status(["finished"])
    after = app.metrics()
    assert metric_value(after, "flowplane_runs_failed_total") == 0
    assert metric_value(after, 'flowplane_runs{workflow="finished",status="failed"}') == 0


# --- 404 handling -----------------------------------------------------------------------


def test_returns_404_for_unknown_routes(apps: dict[str, ServeApp]) -> None:
    status, data = apps["slow"].request("/v1/unknown-route")
    assert status == 404
    assert data["error"]["code"] == "NOT_FOUND"
    assert data["error"]["message"] == "Route not found"


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    backend: str = request.param
    return backend
