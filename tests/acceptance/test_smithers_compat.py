"""Smithers' published HTTP client, from the npm registry, against a real ``flowplane serve``.

``node/pi_plugin_lifecycle.mjs`` imports ``smithers-orchestrator/pi-plugin`` (the package
pinned in ``node/package.json``, installed with ``npm ci`` when ``node/node_modules`` is
missing) and drives the run lifecycle with its calls (``runWorkflow``, ``resume``,
``approve``, ``deny``, ``streamEvents``, ``getStatus``, ``getFrames``, ``cancel``,
``listRuns``): approve, deny, cancel, resume. Its own assertions check the shapes Smithers
documents; this test checks the report it prints. On SQLite and PostgreSQL.

Without Node.js or npm the test is skipped locally and fails in CI.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from backend_serve import serve_on
from serve_support import Serve

from conftest import BACKENDS

NODE_DIR = Path(__file__).resolve().parent / "node"
SCENARIO = NODE_DIR / "pi_plugin_lifecycle.mjs"
NPM_CI_SECONDS = 600

APPROVAL = """\
name: smithers-approval
nodes:
  - {id: prepare, type: util.log, params: {message: "preparing"}}
  - {id: review, type: control.approval, params: {title: "Ship it?"}}
  - {id: ship, type: util.set, params: {value: shipped}}
"""
FLAKY = """\
name: smithers-flaky
nodes:
  - {id: first, type: util.set, params: {value: 1}}
  - {id: flaky, type: util.fail, params: {fail_times: 1, retryable: false}}
  - {id: last, type: util.set, params: {value: done}}
"""


def _missing(tool: str) -> None:
    if os.environ.get("CI"):
        pytest.fail(f"{tool} is required in CI to run Smithers' published client")
    pytest.skip(f"{tool} is not installed")


def smithers_node() -> str:
    """The ``node`` binary, with ``node/node_modules`` installed (``npm ci`` if missing).

    ``npm ci`` runs under a file lock: pytest-xdist workers may get here at once.
    """
    node = shutil.which("node")
    if node is None:
        _missing("Node.js")
    assert node is not None
    with (NODE_DIR / ".npm-ci.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        # npm writes node_modules/.package-lock.json last: its absence means "not installed".
        if not (NODE_DIR / "node_modules" / ".package-lock.json").is_file():
            npm = shutil.which("npm")
            if npm is None:
                _missing("npm")
            assert npm is not None
            installed = subprocess.run(
                [npm, "ci", "--ignore-scripts", "--no-audit", "--no-fund"],
                cwd=NODE_DIR,
                capture_output=True,
                text=True,
                timeout=NPM_CI_SECONDS,
                check=False,
            )
            assert installed.returncode == 0, f"npm ci failed:\n{installed.stderr[-4000:]}"
    return node


def run_node(script: Path, env: dict[str, str], timeout: float = 120) -> dict[str, Any]:
    """Run ``script`` under Node with the TypeScript loader; return its last JSON line."""
    node = smithers_node()
    result = subprocess.run(
        [node, "--import", "./ts_loader.mjs", script.name],
        cwd=NODE_DIR,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    parsed: dict[str, Any] = json.loads(result.stdout.strip().splitlines()[-1])
    return parsed


@pytest.fixture(scope="module", params=BACKENDS)
def server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Serve]:
    """A ``flowplane serve`` with the two workflows under its root, on each backend."""
    base = tmp_path_factory.mktemp(f"smithers-{request.param}")
    root = base / "root"
    (root / "flows").mkdir(parents=True)
    (root / "flows" / "approval.yaml").write_text(APPROVAL)
    (root / "flows" / "flaky.yaml").write_text(FLAKY)
    with serve_on(request.param, base, root=root) as running:
        yield running


@pytest.fixture(scope="module")
def report(server: Serve) -> dict[str, Any]:
    """Run the published client's lifecycle scenario once; return its JSON report."""
    env = {
        "SMITHERS_BASE_URL": server.url,
        "SMITHERS_API_KEY": server.key,
        "SMITHERS_APPROVAL_WORKFLOW": "flows/approval.yaml",
        "SMITHERS_FLAKY_WORKFLOW": "flows/flaky.yaml",
    }
    try:
        return run_node(SCENARIO, env)
    except AssertionError as exc:
        raise AssertionError(
            f"{exc}\n--- server log ---\n{server.log.read_text()[-4000:]}"
        ) from exc


def test_approve_streams_smithers_event_types(report: dict[str, Any]) -> None:
    approved = report["approve"]
    assert approved["nodeId"] == "review"
    waiting = approved["waitingTypes"]
    assert waiting[0] in ("RunQueued", "RunStarted") and "RunStarted" in waiting
    assert waiting[-1] == "NodeWaitingApproval"
    assert {"NodeStarted", "NodeFinished"} <= set(waiting)
    assert waiting.index("NodeStarted") < waiting.index("NodeFinished")
    finished = approved["finishedTypes"]
    assert finished[: len(waiting)] == waiting  # a new stream replays from the start
    assert "ApprovalGranted" in finished and finished[-1] == "RunFinished"
    status = approved["status"]
    assert status["workflowName"] == "smithers-approval"
    assert status["summary"] == {"finished": 3}
    assert approved["resumeWhileWaiting"] == approved["runId"]
    frame_nos = approved["frameNos"]
    assert frame_nos == sorted(frame_nos) and len(frame_nos) == 5


def test_deny_fails_the_run(report: dict[str, Any]) -> None:
    denied = report["deny"]
    assert "ApprovalDenied" in denied["types"] and denied["types"][-1] == "RunFailed"
    assert denied["status"]["summary"].get("failed") == 1


def test_cancel_and_cancel_again(report: dict[str, Any]) -> None:
    cancelled = report["cancel"]
    assert cancelled["runId"] == "smithers-cancel-1"
    assert cancelled["types"][-1] == "RunCancelled"
    assert cancelled["cancelAgain"] == 409
    assert cancelled["reusedRunId"] == 409  # RUN_ALREADY_EXISTS
    assert cancelled["status"]["status"] == "cancelled"


def test_resume_a_failed_run(report: dict[str, Any]) -> None:
    resumed = report["resume"]
    types = resumed["types"]
    assert "RunFailed" in types and types[-1] == "RunFinished"
    assert types.index("RunFailed") < types.index("RunFinished")
    assert resumed["status"]["summary"] == {"finished": 3}


def test_list_runs_and_auth(report: dict[str, Any]) -> None:
    listed = {r["runId"]: r["status"] for r in report["listRuns"]["all"]}
    assert listed[report["approve"]["runId"]] == "finished"
    assert listed[report["deny"]["runId"]] == "failed"
    assert listed["smithers-cancel-1"] == "cancelled"
    assert report["approve"]["runId"] in report["listRuns"]["finished"]
    assert report["deny"]["runId"] not in report["listRuns"]["finished"]
    assert report["unauthorized"] == 401
