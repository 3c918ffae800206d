"""``flowplane run FILE --serve``: one local run, served over HTTP like Smithers' ``up --serve``."""

from __future__ import annotations

import json
import os
import re
import secrets
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

WORKFLOW = """\
name: served
nodes:
  - {id: hello, type: util.log, params: {message: "hi"}}
  - {id: ask, type: control.approval, params: {title: "Go on?"}}
  - {id: done, type: util.set, params: {value: 42}}
"""
SERVING = re.compile(r"Serving run (\S+) on (http://\S+)")
KEY_LINE = re.compile(r"API key for this run \(shown once\): (fp_\S+)")


@dataclass
class Served:
    """A running ``flowplane run --serve`` process."""

    proc: subprocess.Popen[bytes]
    url: str
    run_id: str
    key: str
    stderr: Path
    stdout: Path

    def auth(self, key: str | None = None) -> dict[str, str]:
        return {"Authorization": f"Bearer {key or self.key}"}

    def status(self) -> dict[str, Any]:
        body: dict[str, Any] = httpx.get(f"{self.url}/", headers=self.auth(), timeout=5).json()
        return body

    def wait_status(self, *statuses: str, timeout: float = 20) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            body = self.status()
            if body["status"] in statuses:
                return body
            assert time.monotonic() < deadline, f"run stayed {body['status']}"
            time.sleep(0.1)

    def stop(self, sig: int = signal.SIGINT, timeout: float = 20) -> int:
        self.proc.send_signal(sig)
        return self.proc.wait(timeout)


def _serve(base: Path, *, key: str | None, args: tuple[str, ...] = ()) -> Served:
    """Start ``flowplane run wf.yaml --serve --port 0`` in ``base``; wait for its URL."""
    (base / "wf.yaml").write_text(WORKFLOW)
    env = {k: v for k, v in os.environ.items() if k != "FLOWPLANE_ADMIN_KEY"}
    env.update(FLOWPLANE_POLL_INTERVAL_SECONDS="0.2", FLOWPLANE_DATA_DIR=str(base / "data"))
    if key is not None:
        env["FLOWPLANE_ADMIN_KEY"] = key
    cmd = [
        sys.executable,
        "-m",
        "flowplane",
        "run",
        "wf.yaml",
        "--serve",
        "--port",
        "0",
        "--database-url",
        f"sqlite:///{base / 'fp.db'}",
        *args,
    ]
    stdout, stderr = base / "stdout.txt", base / "stderr.txt"
    with stdout.open("wb") as out, stderr.open("wb") as err:
        proc = subprocess.Popen(cmd, env=env, stdout=out, stderr=err, cwd=base)
    deadline = time.monotonic() + 60
    while True:
        text = stderr.read_text()
        found = SERVING.search(text)
        if found:
            break
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            raise RuntimeError(f"no URL printed:\n{text}\n{stdout.read_text()}")
        time.sleep(0.1)
    if key is None:
        printed = KEY_LINE.search(text)
        assert printed, text
        key = printed.group(1)
    return Served(proc, found.group(2), found.group(1), key, stderr, stdout)


@pytest.fixture
def served(tmp_path: Path) -> Iterator[Served]:
    """A served run with a key from ``FLOWPLANE_ADMIN_KEY`` and JSON progress on stdout."""
    key = f"fp_{secrets.token_hex(6)}_{secrets.token_urlsafe(32)}"
    handle = _serve(tmp_path, key=key, args=("--json",))
    try:
        yield handle
    finally:
        if handle.proc.poll() is None:
            handle.proc.kill()
            handle.proc.wait(10)


def read_events_until(served: Served, until: str) -> list[dict[str, Any]]:
    """Stream ``/events`` until an event of type ``until``; return the events read."""
    events: list[dict[str, Any]] = []
    with httpx.stream("GET", f"{served.url}/events", headers=served.auth(), timeout=20) as r:
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("text/event-stream")
        for line in r.iter_lines():
            if line.startswith("data: "):
                events.append(json.loads(line[6:]))
                if events[-1]["type"] == until:
                    break
    return events


def test_serves_the_run_and_its_controls(served: Served) -> None:
    health = httpx.get(f"{served.url}/health", timeout=5)
    assert health.status_code == 200 and health.json() == {"ok": True, "runId": served.run_id}
    for path in ("/", "/events", "/frames", "/nope", "/openapi.json"):
        assert httpx.get(f"{served.url}{path}", timeout=5).status_code == 401, path
        wrong = httpx.get(f"{served.url}{path}", headers=served.auth("fp_wrong"), timeout=5)
        assert wrong.status_code == 401, path
    refused = httpx.post(f"{served.url}/approve/ask", json={}, timeout=5)
    assert refused.status_code == 401

    waiting = read_events_until(served, "NodeWaitingApproval")
    assert waiting[-1]["nodeId"] == "ask" and all(e["runId"] == served.run_id for e in waiting)
    status = served.wait_status("waiting-approval")
    assert status["runId"] == served.run_id and status["workflowName"] == "served"
    assert status["summary"] == {"finished": 1, "waiting-approval": 1, "pending": 1}

    # Smithers' header works too, and so does its body (decidedBy is recorded).
    r = httpx.post(
        f"{served.url}/approve/ask",
        json={"iteration": 0, "note": "go", "decidedBy": "alice"},
        headers={"x-smithers-key": served.key},
        timeout=5,
    )
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "approved" and r.json()["decidedBy"] == "alice"
    finished = read_events_until(served, "RunFinished")
    assert [e["type"] for e in finished].count("ApprovalGranted") == 1
    assert served.wait_status("finished")["summary"] == {"finished": 3}

    frames = httpx.get(f"{served.url}/frames", headers=served.auth(), timeout=5).json()
    assert [f["frameNo"] for f in frames] == list(range(1, len(frames) + 1))
    newest = httpx.get(
        f"{served.url}/frames", params={"order": "desc", "limit": 1}, headers=served.auth()
    ).json()
    assert newest == [frames[-1]]
    again = httpx.post(f"{served.url}/cancel", headers=served.auth(), timeout=5)
    assert again.status_code == 409 and again.json()["code"] == "RUN_NOT_ACTIVE"
    denied = httpx.post(f"{served.url}/deny/ask", headers=served.auth(), timeout=5)
    assert denied.status_code == 409, denied.text

    # The run is over but the process keeps serving until Ctrl-C; then it exits 0.
    time.sleep(0.3)
    assert served.proc.poll() is None
    assert served.stop(signal.SIGINT) == 0
    lines = [json.loads(x) for x in served.stdout.read_text().splitlines() if x.startswith("{")]
    assert lines[-1]["type"] == "RunFinished"


def test_cancel_over_http_with_a_printed_key(tmp_path: Path) -> None:
    served = _serve(tmp_path, key=None)
    try:
        served.wait_status("waiting-approval")
        r = httpx.post(f"{served.url}/cancel", headers={"X-API-Key": served.key}, timeout=5)
        assert r.status_code == 200, r.text
        assert r.json()["runId"] == served.run_id
        assert served.wait_status("cancelled")["status"] == "cancelled"
        assert served.proc.poll() is None  # still serving the final state
        assert served.stop(signal.SIGTERM) == 1  # the run did not finish
    finally:
        if served.proc.poll() is None:
            served.proc.kill()
            served.proc.wait(10)
