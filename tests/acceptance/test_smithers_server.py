"""Smithers' own server tests, ported: ``packages/server/tests/server.test.js`` of
smithersai/smithers, sent black-box over HTTP to a real ``flowplane serve``, on SQLite and
PostgreSQL (one server per backend for the module).

Each test keeps Smithers' name and its assertions on the wire (status, ``error.code``,
``error.message``, the members read); Smithers' ``.tsx`` workflows become YAML files under
the server's root with the same shape (one ``task1``; ``slow`` waits a minute;
``needsApproval`` is a ``control.approval`` node). Every JSON answer is also checked for
Smithers' ``Cache-Control: no-store`` and ``X-Content-Type-Options: nosniff``.

Left out or changed, and why (also in docs/smithers.md):

- "returns 400 when server DB not configured" (``/v1/runs``, ``/v1/approval/list``) and
  the "when server DB is configured" variants: Flowplane always has its database; the
  variants are the plain tests here.
- "keeps stale persisted status and exposes derived runState": it inserts a run row with a
  stale heartbeat through Smithers' DB adapter; Flowplane runs have no run-level heartbeat
  (node leases expire and are reaped), so there is no ``runState``.
- "returns 500 for invalid workflow path" and "returns 500 with error details on server
  error": Flowplane answers a missing workflow file with 404 ``NOT_FOUND`` (bad input is
  never a 500); the tests check that instead.
- "resumes a run with given runId" resumes a run that waits for an approval (and one that
  failed): Smithers' fast run may already be finished, which Flowplane refuses (409).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from backend_serve import serve_on
from serve_support import Serve

from conftest import BACKENDS

MAX_BODY_BYTES = 65_536
"""The server's body limit here (Smithers' test starts one with ``maxBodyBytes: 100``)."""


def task_workflow(name: str, value: int = 42) -> str:
    """Smithers' test workflow: one ``task1`` whose output is ``{value}``."""
    return f"""\
name: {name}
nodes:
  - {{id: task1, type: util.set, params: {{value: {{value: {value}}}}}}}
"""


def slow_workflow(name: str) -> str:
    """``{slow: true}``: ``task1`` takes a minute (until cancelled)."""
    return f"""\
name: {name}
nodes:
  - {{id: task1, type: wait.duration, params: {{duration: 60s}}}}
"""


def approval_workflow(name: str) -> str:
    """``{needsApproval: true}``: ``task1`` waits for a decision, then sets its value."""
    return f"""\
name: {name}
nodes:
  - {{id: task1, type: control.approval, params: {{title: "{name} gate"}}}}
  - {{id: after, type: util.set, needs: [task1], params: {{value: {{value: 42}}}}}}
"""


FLAKY = """\
name: flaky
nodes:
  - {id: task1, type: util.fail, params: {fail_times: 1, retryable: false}}
"""


@dataclass
class Smithers:
    """The server under test and Smithers' ``request`` helper over it."""

    server: Serve
    root: Path
    http: httpx.Client

    def request(
        self,
        path: str,
        method: str = "GET",
        body: Any = None,
        headers: dict[str, str] | None = None,
        *,
        auth: bool = True,
    ) -> tuple[int, Any]:
        """Smithers' ``request(path, {method, body, headers})``: ``(status, JSON body)``.

        Every answer must be JSON with Smithers' two headers.
        """
        sent = {**(self.server.headers if auth else {}), **(headers or {})}
        response = self.http.request(method, path, json=body, headers=sent)
        check_json_headers(response)
        return response.status_code, response.json()

    def write(self, name: str, text: str) -> str:
        """Write a workflow file under the root; return its ``workflowPath``."""
        (self.root / f"{name}.yaml").write_text(text)
        return f"{name}.yaml"

    def start(self, workflow_path: str, **body: Any) -> str:
        status, data = self.request("/v1/runs", "POST", {"workflowPath": workflow_path, **body})
        assert status == 200, data
        run_id: str = data["runId"]
        return run_id

    def wait_for_run_status(self, run_id: str, statuses: list[str], timeout: float = 20) -> Any:
        """Smithers' ``waitForRunStatus``."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            status, data = self.request(f"/v1/runs/{run_id}")
            if status == 200 and data["status"] in statuses:
                return data
            time.sleep(0.05)
        raise AssertionError(f"run {run_id} did not reach one of {statuses}")


def check_json_headers(response: httpx.Response) -> None:
    """Smithers' ``sendJson`` headers on a JSON answer."""
    assert "json" in response.headers["content-type"], response.headers
    assert response.headers["cache-control"] == "no-store"
    assert response.headers["x-content-type-options"] == "nosniff"


@pytest.fixture(scope="module", params=BACKENDS)
def smithers(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Smithers]:
    base = tmp_path_factory.mktemp(f"smithers-server-{request.param}")
    root = base / "root"
    root.mkdir()
    env = {"FLOWPLANE_MAX_BODY_BYTES": str(MAX_BODY_BYTES)}
    with (
        serve_on(request.param, base, root=root, env=env) as server,
        httpx.Client(base_url=server.url, timeout=30) as http,
    ):
        yield Smithers(server, root, http)


# --- POST /v1/runs ----------------------------------------------------------------------


def test_starts_a_new_run_and_returns_run_id(smithers: Smithers) -> None:
    workflow_path = smithers.write("test1", task_workflow("test1"))
    status, data = smithers.request("/v1/runs", "POST", {"workflowPath": workflow_path})
    assert status == 200
    assert isinstance(data["runId"], str)


def test_accepts_custom_run_id(smithers: Smithers) -> None:
    workflow_path = smithers.write("test2", task_workflow("test2"))
    custom = "custom-run-id-123"
    status, data = smithers.request(
        "/v1/runs", "POST", {"workflowPath": workflow_path, "runId": custom}
    )
    assert status == 200
    assert data["runId"] == custom
    # The same runId again, without resume: Smithers' 409 RUN_ALREADY_EXISTS.
    status, data = smithers.request(
        "/v1/runs", "POST", {"workflowPath": workflow_path, "runId": custom}
    )
    assert status == 409
    assert data["error"]["code"] == "RUN_ALREADY_EXISTS"


def test_returns_not_found_for_invalid_workflow_path(smithers: Smithers) -> None:
    """Smithers: 500 ``SERVER_ERROR`` (its module import fails); Flowplane: a clear 404."""
    status, data = smithers.request(
        "/v1/runs", "POST", {"workflowPath": "nonexistent/workflow.yaml"}
    )
    assert status == 404
    assert data["error"]["code"] == "NOT_FOUND"
    assert data["error"]["message"]


def test_reloads_a_workflow_file_after_it_changes_on_disk(smithers: Smithers) -> None:
    workflow_path = smithers.write("reload", task_workflow("reload", 42))
    first = smithers.start(workflow_path)
    finished = smithers.wait_for_run_status(first, ["finished"])
    assert finished["output"]["task1"] == {"value": 42}  # Smithers' readOutputValue
    smithers.write("reload", task_workflow("reload", 7))
    second = smithers.start(workflow_path)
    assert smithers.wait_for_run_status(second, ["finished"])["output"]["task1"] == {"value": 7}


def test_returns_400_for_invalid_json_body(smithers: Smithers) -> None:
    smithers.write("test-invalid-json", task_workflow("test-invalid-json"))
    response = smithers.http.post(
        "/v1/runs",
        content=b"{",
        headers={**smithers.server.headers, "Content-Type": "application/json"},
    )
    check_json_headers(response)
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "INVALID_JSON"


def test_returns_413_when_body_exceeds_limit(smithers: Smithers) -> None:
    workflow_path = smithers.write("test-large-body", task_workflow("test-large-body"))
    large = {"workflowPath": workflow_path, "input": {"payload": "x" * (MAX_BODY_BYTES + 1)}}
    status, data = smithers.request("/v1/runs", "POST", large)
    assert status == 413
    assert data["error"]["code"] == "PAYLOAD_TOO_LARGE"


def test_resume_without_run_id_is_run_id_required(smithers: Smithers) -> None:
    """Smithers' ``RUN_ID_REQUIRED`` (its server's code; no test of its own)."""
    workflow_path = smithers.write("test1", task_workflow("test1"))
    status, data = smithers.request(
        "/v1/runs", "POST", {"workflowPath": workflow_path, "resume": True}
    )
    assert status == 400
    assert data["error"]["code"] == "RUN_ID_REQUIRED"


# --- GET /v1/runs/:runId ----------------------------------------------------------------


def test_returns_run_status_after_starting(smithers: Smithers) -> None:
    run_id = smithers.start(smithers.write("test3", slow_workflow("test3")))
    status, data = smithers.request(f"/v1/runs/{run_id}")
    assert status == 200
    assert data["runId"] == run_id
    assert data["workflowName"] == "test3"
    # Smithers' slow task is an agent call ("running"); Flowplane's is a timer.
    assert data["status"] in ["running", "waiting-timer", "finished", "failed", "waiting-approval"]
    assert isinstance(data["summary"], dict)
    smithers.request(f"/v1/runs/{run_id}/cancel", "POST")


def test_get_run_returns_404_for_non_existent_run(smithers: Smithers) -> None:
    status, data = smithers.request("/v1/runs/non-existent-run-id")
    assert status == 404
    assert data["error"]["code"] == "NOT_FOUND"


# --- Auth -------------------------------------------------------------------------------


def test_rejects_requests_without_token_when_auth_is_enabled(smithers: Smithers) -> None:
    workflow_path = smithers.write("test-auth", task_workflow("test-auth"))
    status, data = smithers.request("/v1/runs", "POST", {"workflowPath": workflow_path}, auth=False)
    assert status == 401
    assert data["error"]["code"] == "UNAUTHORIZED"


def test_accepts_requests_with_valid_token(smithers: Smithers) -> None:
    workflow_path = smithers.write("test-auth-ok", task_workflow("test-auth-ok"))
    key = smithers.server.key
    for header in ({"Authorization": f"Bearer {key}"}, {"x-smithers-key": key}):
        status, data = smithers.request(
            "/v1/runs", "POST", {"workflowPath": workflow_path}, header, auth=False
        )
        assert status == 200, header
        assert data["runId"]


# --- POST /v1/runs/:runId/cancel --------------------------------------------------------


def test_cancels_an_active_run(smithers: Smithers) -> None:
    run_id = smithers.start(smithers.write("slow", slow_workflow("slow")))
    status, data = smithers.request(f"/v1/runs/{run_id}/cancel", "POST")
    assert status == 200
    assert data["runId"] == run_id
    status, data = smithers.request(f"/v1/runs/{run_id}/cancel", "POST")
    assert status == 409
    assert data["error"]["code"] == "RUN_NOT_ACTIVE"


def test_cancel_returns_404_for_non_existent_run(smithers: Smithers) -> None:
    status, data = smithers.request("/v1/runs/non-existent-run-id/cancel", "POST")
    assert status == 404
    assert data["error"]["code"] == "NOT_FOUND"


# --- POST /v1/runs/:runId/resume --------------------------------------------------------


def test_resumes_a_run_with_given_run_id(smithers: Smithers) -> None:
    workflow_path = smithers.write("resume", approval_workflow("resume"))
    run_id = smithers.start(workflow_path)
    smithers.wait_for_run_status(run_id, ["waiting-approval"])
    status, data = smithers.request(
        f"/v1/runs/{run_id}/resume", "POST", {"workflowPath": workflow_path}
    )
    assert status == 200
    assert data["runId"] == run_id
    assert data["status"] == "waiting-approval"  # a live run is left as it is

    failed = smithers.start(smithers.write("flaky", FLAKY))
    smithers.wait_for_run_status(failed, ["failed"])
    status, data = smithers.request(
        f"/v1/runs/{failed}/resume", "POST", {"workflowPath": "flaky.yaml"}
    )
    assert status == 200
    assert data["runId"] == failed
    smithers.wait_for_run_status(failed, ["finished"])


# --- GET /v1/runs/:runId/frames ---------------------------------------------------------


def test_returns_frames_for_a_run(smithers: Smithers) -> None:
    run_id = smithers.start(smithers.write("frames", slow_workflow("frames")))
    status, data = smithers.request(f"/v1/runs/{run_id}/frames")
    assert status == 200
    assert isinstance(data, list)
    smithers.request(f"/v1/runs/{run_id}/cancel", "POST")


def test_frames_return_404_for_non_existent_run(smithers: Smithers) -> None:
    status, data = smithers.request("/v1/runs/non-existent-run-id/frames")
    assert status == 404
    assert data["error"]["code"] == "NOT_FOUND"


def test_frames_respect_limit_and_after_frame_no_params(smithers: Smithers) -> None:
    run_id = smithers.start(smithers.write("frames2", slow_workflow("frames2")))
    status, data = smithers.request(f"/v1/runs/{run_id}/frames?limit=10&afterFrameNo=0")
    assert status == 200
    assert isinstance(data, list) and len(data) <= 10
    smithers.request(f"/v1/runs/{run_id}/cancel", "POST")


# --- POST /v1/runs/:runId/nodes/:nodeId/approve | deny -----------------------------------


@pytest.mark.parametrize("decision", ["approve", "deny"])
def test_decides_a_node(smithers: Smithers, decision: str) -> None:
    run_id = smithers.start(smithers.write(decision, approval_workflow(decision)))
    smithers.wait_for_run_status(run_id, ["waiting-approval"])
    note = "approved by test" if decision == "approve" else "denied by test"
    status, data = smithers.request(
        f"/v1/runs/{run_id}/nodes/task1/{decision}",
        "POST",
        {"iteration": 0, "note": note, "decidedBy": "test-user"},
    )
    assert status == 200
    assert data["runId"] == run_id
    smithers.wait_for_run_status(run_id, ["finished" if decision == "approve" else "failed"])


@pytest.mark.parametrize("decision", ["approve", "deny"])
def test_decision_returns_404_for_non_existent_run(smithers: Smithers, decision: str) -> None:
    status, data = smithers.request(
        f"/v1/runs/non-existent-run-id/nodes/some-node/{decision}", "POST", {"iteration": 0}
    )
    assert status == 404
    assert data["error"]["code"] == "NOT_FOUND"


# --- GET /v1/runs/:runId/events (SSE) ---------------------------------------------------


def test_returns_sse_stream_for_valid_run(smithers: Smithers) -> None:
    run_id = smithers.start(smithers.write("events", task_workflow("events")))
    smithers.wait_for_run_status(run_id, ["finished"])
    with smithers.http.stream(
        "GET", f"/v1/runs/{run_id}/events", headers=smithers.server.headers
    ) as response:
        assert response.status_code == 200
        assert response.headers["content-type"] == "text/event-stream"
        assert response.headers["cache-control"] == "no-cache"
        assert response.headers["x-content-type-options"] == "nosniff"
        assert response.headers["x-accel-buffering"] == "no"
        body = response.read().decode()
    # Smithers' framing: a retry hint, then `event: smithers` + one `data:` line each.
    assert body.startswith("retry: 1000\n\n")
    blocks = [b for b in body.split("\n\n") if "data: " in b]
    assert blocks and all("\nevent: smithers\n" in f"\n{b}\n" for b in blocks)
    assert '"type":"RunFinished"' in body


def test_events_return_404_for_non_existent_run(smithers: Smithers) -> None:
    response = smithers.http.get(
        "/v1/runs/non-existent-run-id/events", headers=smithers.server.headers
    )
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "NOT_FOUND"


# --- GET /v1/runs (list runs) -----------------------------------------------------------


def test_returns_runs_list(smithers: Smithers) -> None:
    status, data = smithers.request("/v1/runs")
    assert status == 200
    assert isinstance(data, list)


def test_runs_list_respects_limit_and_status_params(smithers: Smithers) -> None:
    status, data = smithers.request("/v1/runs?limit=10&status=running")
    assert status == 200
    assert isinstance(data, list) and len(data) <= 10
    assert all(run["status"] == "running" for run in data)


# --- GET /v1/approval/list --------------------------------------------------------------


def test_returns_pending_approvals_sorted_by_wait_time(smithers: Smithers) -> None:
    older = smithers.start(smithers.write("release-flow", approval_workflow("release-flow")))
    smithers.wait_for_run_status(older, ["waiting-approval"])
    newer = smithers.start(smithers.write("qa-flow", approval_workflow("qa-flow")))
    smithers.wait_for_run_status(newer, ["waiting-approval"])
    for path in ("/v1/approval/list", "/v1/approvals", "/approval/list", "/approvals"):
        status, data = smithers.request(path)
        assert status == 200, path
        assert isinstance(data["approvals"], list)
        ours = [a for a in data["approvals"] if a["runId"] in (older, newer)]
        assert len(ours) == 2
        assert ours[0]["runId"] == older and ours[0]["workflowName"] == "release-flow"
        assert ours[1]["runId"] == newer and ours[1]["workflowName"] == "qa-flow"
        assert all(a["nodeId"] == "task1" and a["label"] == "task1" for a in ours)
        assert isinstance(ours[0]["waitingMs"], int)
    for run_id in (older, newer):
        smithers.request(f"/v1/runs/{run_id}/cancel", "POST")


# --- signals (the legacy route) ---------------------------------------------------------


def test_signal_on_the_legacy_route(smithers: Smithers) -> None:
    """``POST /signal/:runId/:signalName``, which Smithers' server routes like
    ``/v1/runs/:runId/signals/:signalName`` (no test of its own)."""
    workflow = """\
name: signalled
nodes:
  - {id: task1, type: wait.signal, params: {name: go}}
"""
    run_id = smithers.start(smithers.write("signalled", workflow))
    smithers.wait_for_run_status(run_id, ["waiting-event"])
    status, data = smithers.request(f"/signal/{run_id}/go", "POST", {"data": {"ok": True}})
    assert status == 200, data
    assert data["runId"] == run_id
    output = smithers.wait_for_run_status(run_id, ["finished"])["output"]["task1"]
    assert output["payload"] == {"ok": True}
    status, data = smithers.request("/signal/non-existent-run-id/go", "POST", {})
    assert status == 404
    assert data["error"]["code"] == "NOT_FOUND"


# --- 404 handling -----------------------------------------------------------------------


def test_returns_404_for_unknown_routes(smithers: Smithers) -> None:
    status, data = smithers.request("/v1/unknown-route")
    assert status == 404
    assert data["error"]["code"] == "NOT_FOUND"
    assert data["error"]["message"] == "Route not found"


def test_returns_404_for_root_path(smithers: Smithers) -> None:
    status, data = smithers.request("/")
    assert status == 404
    assert data["error"]["code"] == "NOT_FOUND"


def test_errors_are_problem_documents_too(smithers: Smithers) -> None:
    """One body, both contracts: RFC 9457 members beside Smithers' envelope."""
    status, data = smithers.request("/v1/runs/non-existent-run-id")
    assert status == 404
    assert data["status"] == 404 and data["code"] == "RUN_NOT_FOUND" and data["title"]
    assert data["error"] == {"code": "NOT_FOUND", "message": data["detail"]}
