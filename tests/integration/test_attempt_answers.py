"""Every face that shows attempts answers the same history the same way, on both backends.

A node run's successful attempt is kept on its ``node_runs`` row (``worker``,
``attempt_started_ms``), not in ``attempts``, which holds failed, lost and superseded
attempts (issue 19, storage). These runs cover each way an attempt ends: lone successes, a
retried success, a failure, a rewind (superseded successes), a ``foreach`` (items finished
together in one transaction) and a fork (reused outputs). For each, the run detail, the node
pages, the log page (attempt items), the flat attempts list and the thodare run view must
agree with each other and with the event log, which this change does not touch: every
attempt's outcome, number, error and finish time are the ones its events state, in the
order the attempts finished.

With ``FLOWPLANE_ATTEMPT_ANSWERS=<file>`` set, the answers (run ids, workers, times and
cursors replaced by stable placeholders) are also written there: run once on the old code
and once on the new and compare the files (``docs/performance.md``, "Storage").
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from api_support import BASE_URL, harness_settings
from engine_support import Probe, make_registry

from flowplane.api.app import create_app
from flowplane.services.auth import LOCAL
from flowplane.services.container import Services

CHAIN: dict[str, Any] = {
    "name": "chain",
    "nodes": [
        {"id": "a", "type": "test.count"},
        {"id": "b", "type": "test.count"},
        {"id": "c", "type": "test.count"},
    ],
}
RETRIED: dict[str, Any] = {
    "name": "retried",
    "nodes": [
        {
            "id": "flaky",
            "type": "util.fail",
            "params": {"fail_times": 2},
            "retry": {"max_attempts": 3, "backoff": "fixed", "initial": "10ms"},
        },
        {"id": "after", "type": "test.count"},
    ],
}
FAILING: dict[str, Any] = {
    "name": "failing",
    "nodes": [
        {"id": "fetch", "type": "test.count"},
        {"id": "broken", "type": "util.fail", "params": {"retryable": False}},
    ],
}
EACH: dict[str, Any] = {
    "name": "each",
    "nodes": [
        {"id": "items", "type": "util.set", "params": {"value": [1, 2, 3, 4]}},
        {
            "id": "each",
            "type": "util.set",
            "foreach": "{{ nodes.items.output }}",
            "params": {"value": "{{ item * 10 }}"},
        },
        {"id": "total", "type": "util.set", "params": {"value": "{{ nodes.each.output | sum }}"}},
    ],
}
APPROVAL: dict[str, Any] = {
    "name": "approval",
    "nodes": [
        {"id": "ask", "type": "control.approval", "params": {"title": "Ship it?"}},
        {"id": "done", "type": "util.set", "params": {"value": "shipped"}},
    ],
}
ENDINGS = {"NodeFinished": "finished", "NodeFailed": "failed"}
PLACEHOLDERS = ("runId", "run_id", "id", "worker", "forkedFrom", "workflowId")


class Harness:
    """The app with one worker, over HTTP in-process."""

    def __init__(self, http: httpx.AsyncClient, services: Services, headers: dict[str, str]):
        self.http, self.services, self.headers = http, services, headers

    async def get(self, path: str, **params: Any) -> Any:
        r = await self.http.get(path, params=params, headers=self.headers)
        assert r.status_code == 200, r.text
        return r.json()

    async def start(self, document: dict[str, Any]) -> str:
        r = await self.http.post("/v1/workflows", json=document, headers=self.headers)
        assert r.status_code in (200, 201), r.text
        r = await self.http.post(
            "/v1/runs", json={"workflowId": r.json()["id"]}, headers=self.headers
        )
        assert r.status_code == 200, r.text
        return str(r.json()["runId"])

    async def wait(self, run_id: str, *statuses: str) -> dict[str, Any]:
        deadline = time.monotonic() + 20
        while True:
            body: dict[str, Any] = await self.get(f"/v1/runs/{run_id}")
            waiting = body["status"].startswith("waiting")
            if body["status"] in statuses and (waiting or not _in_flight(body)):
                return body
            assert time.monotonic() < deadline, f"run {run_id} stayed {body['status']}"
            await asyncio.sleep(0.05)


def _in_flight(body: dict[str, Any]) -> bool:
    return any(n["state"] in ("ready", "in-progress", "pending") for n in body["nodes"])


@pytest.fixture
async def harness(db: tuple[str, str], tmp_path: Path) -> AsyncIterator[Harness]:
    root = tmp_path / "root"
    root.mkdir()
    settings = harness_settings(db, root, workers=1)
    app = create_app(settings, registry=make_registry(Probe()))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url=BASE_URL) as http:
            headers = {"Authorization": f"Bearer {settings.admin_key}"}
            yield Harness(http, app.state.services, headers)


async def _answers(h: Harness, run_id: str) -> dict[str, Any]:
    """Every answer about the run's attempts, checked against each other and the events."""
    detail = await h.get(f"/v1/runs/{run_id}")
    events = await h.services.runs.events(LOCAL, run_id, limit=10_000)
    ends: dict[tuple[str, int, int], tuple[str, int, Any]] = {}
    for e in events:
        if e["type"] in ENDINGS:
            key = (e["nodeId"], e.get("iteration", 0), e.get("attempt", 0))
            ends[key] = (ENDINGS[e["type"]], e["timestampMs"], e.get("error"))

    # The node pages hold exactly the detail's nodes with their attempts.
    pages: list[dict[str, Any]] = []
    cursor: str | None = None
    while True:
        params: dict[str, Any] = {"limit": 2} | ({"cursor": cursor} if cursor else {})
        page = await h.get(f"/v1/runs/{run_id}/nodes", **params)
        pages.extend(page["items"])
        cursor = page.get("nextCursor")
        if not cursor:
            break
    assert pages == detail["nodes"]

    # The flat list (gateway attempts.list, MCP) in the order the attempts finished.
    flat = await h.services.runs.attempts(LOCAL, run_id)
    assert [a.finished_at_ms for a in flat] == sorted(a.finished_at_ms for a in flat)
    by_node = {
        (n["nodeId"], n["iteration"], a["attempt"]): (n, a)
        for n in detail["nodes"]
        for a in n["attempts"]
    }
    assert sorted(by_node) == sorted((a.node_id, a.iteration, a.attempt) for a in flat)
    for a in flat:
        node, wire = by_node[(a.node_id, a.iteration, a.attempt)]
        assert (wire["status"], wire["worker"], wire["startedAtMs"], wire["finishedAtMs"]) == (
            a.status,
            a.worker,
            a.started_at_ms,
            a.finished_at_ms,
        )
        assert wire["durationMs"] == a.finished_at_ms - (a.started_at_ms or a.finished_at_ms)
        assert a.worker or a.node_id == "ask", a  # an approval ran on no worker
        assert a.started_at_ms is not None and a.started_at_ms <= a.finished_at_ms, a
        # The outcome the events state (a superseded attempt had finished).
        ending, ts, error = ends[(a.node_id, a.iteration, a.attempt)]
        assert (ending, ts, error) == (
            "finished" if a.status == "superseded" else a.status,
            a.finished_at_ms,
            a.error,
        )
        if a.status == "finished":
            assert node["state"] == "finished" and node["attempt"] == a.attempt
            assert node["finishedAtMs"] == a.finished_at_ms
    # Every attempt that ended is on record (a foreach node's level row finishes when its
    # items have, without an attempt of its own).
    assert {k for k in ends if k[1] >= 0} <= set(by_node)

    # The log page, one item at a time: the attempt items are the flat list, in order.
    items: list[dict[str, Any]] = []
    after: str | None = None
    while True:
        page = await h.get(f"/v1/runs/{run_id}/logs", limit=1, **({"after": after} or {}))
        items.extend(page["items"])
        after = page.get("nextCursor")
        if not after:
            break
    attempt_items = [i for i in items if i["kind"] == "attempt"]
    assert [
        (i["nodeId"], i["iteration"], i["attempt"], i["status"], i["tsMs"]) for i in attempt_items
    ] == [(a.node_id, a.iteration, a.attempt, a.status, a.finished_at_ms) for a in flat]

    thodare = await h.get(f"/api/runs/{run_id}")
    assert thodare["attempts"] == len(flat)
    # (Attempt ids are internal: no face shows them.)
    flat_answers = [{k: v for k, v in a.__dict__.items() if k != "id"} for a in flat]
    return {"detail": detail, "logs": items, "flat": flat_answers}


def _placeholders(answers: dict[str, Any]) -> Any:
    """The answers with run ids, workers, times and cursors replaced (stable across runs)."""
    names: dict[str, str] = {}

    def walk(value: Any, key: str = "") -> Any:
        if isinstance(value, dict):
            return {k: walk(v, k) for k, v in value.items()}
        if isinstance(value, list):
            return [walk(v) for v in value]
        if isinstance(value, str) and key in (
            "runId",
            "run_id",
            "id",
            "worker",
            "forkedFrom",
            "workflowId",
        ):
            return names.setdefault(value, f"<{key}{len(names)}>")
        if isinstance(value, str) and key.endswith("At"):
            return "<time>"
        if isinstance(value, str) and value.startswith("fork:"):
            return "fork:<run>"
        if isinstance(value, int) and not isinstance(value, bool) and value > 10**12:
            return "<ms>"
        if key.endswith(("Ms", "_ms")) and isinstance(value, int):
            return "<duration>" if key == "durationMs" else "<ms>"
        return value

    return walk(answers)


async def test_attempt_answers_agree_for_every_ending(harness: Harness, db: Any) -> None:
    h = harness
    answers: dict[str, Any] = {}

    chain = await h.start(CHAIN)
    await h.wait(chain, "finished")
    answers["lone"] = await _answers(h, chain)

    retried = await h.start(RETRIED)
    await h.wait(retried, "finished")
    answers["retried"] = await _answers(h, retried)
    flaky = next(n for n in answers["retried"]["detail"]["nodes"] if n["nodeId"] == "flaky")
    assert [(a["attempt"], a["status"]) for a in flaky["attempts"]] == [
        (1, "failed"),
        (2, "failed"),
        (3, "finished"),
    ]

    failing = await h.start(FAILING)
    await h.wait(failing, "failed")
    answers["failed"] = await _answers(h, failing)

    each = await h.start(EACH)
    await h.wait(each, "finished")
    answers["foreach"] = await _answers(h, each)
    items = [n for n in answers["foreach"]["detail"]["nodes"] if n["nodeId"] == "each"]
    assert [len(n["attempts"]) for n in items if n["iteration"] >= 0] == [1, 1, 1, 1]

    # A rewind re-runs b and c: their first, successful attempts become superseded.
    frames = await h.get(f"/v1/runs/{chain}/frames")
    point = next(
        f["frameNo"]
        for f in frames
        if any(n["nodeId"] == "a" and n["status"] == "finished" for n in f["nodes"])
    )
    r = await h.http.post(f"/v1/runs/{chain}/rewind", json={"frameNo": point}, headers=h.headers)
    assert r.status_code == 200, r.text
    await h.wait(chain, "finished")
    answers["rewound"] = await _answers(h, chain)
    got = {
        n["nodeId"]: [(a["attempt"], a["status"]) for a in n["attempts"]]
        for n in answers["rewound"]["detail"]["nodes"]
    }
    assert got == {
        "a": [(1, "finished")],
        "b": [(1, "superseded"), (2, "finished")],
        "c": [(1, "superseded"), (2, "finished")],
    }

    # A rewind of the foreach: its items run again, numbering on.
    frames = await h.get(f"/v1/runs/{each}/frames")
    point = next(
        f["frameNo"]
        for f in frames
        if any(n["nodeId"] == "items" and n["status"] == "finished" for n in f["nodes"])
    )
    r = await h.http.post(f"/v1/runs/{each}/rewind", json={"frameNo": point}, headers=h.headers)
    assert r.status_code == 200, r.text
    await h.wait(each, "finished")
    answers["foreach_rewound"] = await _answers(h, each)
    items = [n for n in answers["foreach_rewound"]["detail"]["nodes"] if n["nodeId"] == "each"]
    assert [
        [(a["attempt"], a["status"]) for a in n["attempts"]] for n in items if n["iteration"] >= 0
    ] == [[(1, "superseded"), (2, "finished")]] * 4

    # A fork reuses a and b (recorded as finished by "fork:<run>") and runs c.
    r = await h.http.post(f"/v1/runs/{chain}/fork", json={"fromNode": "c"}, headers=h.headers)
    assert r.status_code in (200, 201), r.text
    fork = str(r.json()["runId"])
    await h.wait(fork, "finished")
    answers["fork"] = await _answers(h, fork)
    workers = {n["nodeId"]: n["attempts"][0]["worker"] for n in answers["fork"]["detail"]["nodes"]}
    assert workers["a"] == workers["b"] == f"fork:{chain}" != workers["c"]

    # A waiting node settled by an approval: its success ran on no worker.
    approval = await h.start(APPROVAL)
    await h.wait(approval, "waiting-approval")
    r = await h.http.post(
        f"/v1/runs/{approval}/nodes/ask/approve", json={"iteration": 0}, headers=h.headers
    )
    assert r.status_code == 200, r.text
    await h.wait(approval, "finished")
    answers["approval"] = await _answers(h, approval)
    ask = next(n for n in answers["approval"]["detail"]["nodes"] if n["nodeId"] == "ask")
    assert [(a["attempt"], a["status"], a["worker"]) for a in ask["attempts"]] == [
        (1, "finished", None)
    ]

    out = os.environ.get("FLOWPLANE_ATTEMPT_ANSWERS")
    if out:
        Path(f"{out}.{db[0].split(':')[0]}").write_text(
            json.dumps(_placeholders(answers), indent=1, sort_keys=True)
        )
