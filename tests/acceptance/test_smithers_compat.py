"""Smithers' HTTP client, unchanged, against a real ``flowplane serve`` process.

``smithers_client.mjs`` implements the documented calls of Smithers' published client
(``runWorkflow``, ``resume``, ``approve``, ``deny``, ``streamEvents``, ``getStatus``,
``getFrames``, ``cancel``, ``listRuns``) with ``fetch`` under Node.js, and drives the run
lifecycle: approve, deny, cancel and resume. Its own assertions check the shapes Smithers
documents; this test checks the report it prints.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from serve_support import Serve, serving

HERE = Path(__file__).resolve().parent
CLIENT = HERE / "smithers_client.mjs"
NODE = shutil.which("node")

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

pytestmark = pytest.mark.skipif(NODE is None, reason="Node.js is not installed")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Serve]:
    """A ``flowplane serve`` on SQLite with the two workflows under its root."""
    base = tmp_path_factory.mktemp("smithers")
    root = base / "root"
    (root / "flows").mkdir(parents=True)
    (root / "flows" / "approval.yaml").write_text(APPROVAL)
    (root / "flows" / "flaky.yaml").write_text(FLAKY)
    with serving(base, f"sqlite:///{base / 'fp.db'}", root=root) as running:
        yield running


@pytest.fixture(scope="module")
def report(server: Serve) -> dict[str, Any]:
    """Run the Smithers client's lifecycle scenario once; return its JSON report."""
    url, key, log_path = server.url, server.key, server.log
    assert NODE is not None
    env = {
        **os.environ,
        "SMITHERS_BASE_URL": url,
        "SMITHERS_API_KEY": key,
        "SMITHERS_APPROVAL_WORKFLOW": "flows/approval.yaml",
        "SMITHERS_FLAKY_WORKFLOW": "flows/flaky.yaml",
    }
    result = subprocess.run(
        [NODE, str(CLIENT)], env=env, capture_output=True, text=True, timeout=120, check=False
    )
    assert result.returncode == 0, (
        f"{result.stderr}\n--- server log ---\n{log_path.read_text()[-4000:]}"
    )
    parsed: dict[str, Any] = json.loads(result.stdout.strip().splitlines()[-1])
    return parsed


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
