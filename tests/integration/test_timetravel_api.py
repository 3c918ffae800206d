"""Time travel over HTTP on both backends: frames, rewind, fork and diff.

The workflows use ``test.count`` (see ``engine_support``), which counts its calls per node:
a node whose recorded output is reused must not be called again, and the counter proves it.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from api_support import BASE_URL, harness_settings
from engine_support import Probe, make_registry

from flowplane.api.app import create_app
from flowplane.client import AsyncClient, Forbidden, InvalidInput, RunNotFound
from flowplane.services.auth import LOCAL

CHAIN: dict[str, Any] = {
    "name": "chain",
    "nodes": [
        {"id": "a", "type": "test.count"},
        {"id": "b", "type": "test.count"},
        {"id": "c", "type": "test.count"},
    ],
}
BROKEN: dict[str, Any] = {
    "name": "report",
    "nodes": [
        {"id": "fetch", "type": "test.count", "params": {"value": 7}},
        {"id": "compute", "type": "util.fail", "params": {"retryable": False}},
        {"id": "report", "type": "test.count"},
    ],
}


@dataclass
class TimeTravelApi:
    """A started app with a counting registry, one worker and keys per role."""

    http: httpx.AsyncClient
    transport: httpx.ASGITransport
    probe: Probe
    keys: dict[str, str]

    def auth(self, who: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.keys[who]}"}

    def client(self, who: str) -> AsyncClient:
        return AsyncClient(BASE_URL, token=self.keys[who], transport=self.transport)

    async def start(self, document: dict[str, Any], who: str = "owner") -> str:
        r = await self.http.post("/v1/workflows", json=document, headers=self.auth("admin"))
        assert r.status_code in (200, 201), r.text
        r = await self.http.post(
            "/v1/runs", json={"workflowId": r.json()["id"]}, headers=self.auth(who)
        )
        assert r.status_code == 200, r.text
        run_id: str = r.json()["runId"]
        return run_id

    async def wait(self, run_id: str, *statuses: str, timeout: float = 15) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            r = await self.http.get(f"/v1/runs/{run_id}", headers=self.auth("admin"))
            body: dict[str, Any] = r.json()
            if body["status"] in statuses:
                return body
            assert time.monotonic() < deadline, f"run {run_id} stayed {body['status']}"
            await asyncio.sleep(0.05)


@pytest.fixture
async def tt(db: tuple[str, str], tmp_path: Path) -> AsyncIterator[TimeTravelApi]:
    root = tmp_path / "root"
    root.mkdir()
    probe = Probe()
    settings = harness_settings(db, root, workers=1)
    app = create_app(settings, registry=make_registry(probe))
    async with app.router.lifespan_context(app):
        auth = app.state.services.auth
        keys = {"admin": settings.admin_key or ""}
        for handle, role, namespaces in (
            ("owner", "executor", None),
            ("other", "executor", None),
            ("viewer", "viewer", None),
            ("foreign", "admin", ["elsewhere"]),
        ):
            created = await auth.create_api_key(
                caller=LOCAL, name=handle, role=role, namespaces=namespaces
            )
            keys[handle] = created.secret
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url=BASE_URL) as http:
            yield TimeTravelApi(http, transport, probe, keys)


def first_frame_with(frames: list[dict[str, Any]], node_id: str) -> int:
    """The first frame where ``node_id`` is finished (and nothing after it has started)."""
    return int(
        next(
            f["frameNo"]
            for f in frames
            if any(n["nodeId"] == node_id and n["status"] == "finished" for n in f["nodes"])
        )
    )


async def test_frames_are_snapshots_in_both_orders(tt: TimeTravelApi) -> None:
    run_id = await tt.start(CHAIN)
    await tt.wait(run_id, "finished")
    r = await tt.http.get(f"/v1/runs/{run_id}/frames", headers=tt.auth("viewer"))
    assert r.status_code == 200, r.text
    frames = r.json()
    numbers = [f["frameNo"] for f in frames]
    assert numbers == list(range(1, len(frames) + 1)) and len(frames) >= 4
    last = frames[-1]
    assert last["runId"] == run_id and last["createdAtMs"] == last["timestampMs"]
    assert {n["nodeId"]: n["status"] for n in last["nodes"]} == dict.fromkeys("abc", "finished")
    assert all(c["nodeId"] in "abc" for c in last["changes"])

    page = await tt.http.get(
        f"/v1/runs/{run_id}/frames",
        params={"afterFrameNo": 2, "limit": 2},
        headers=tt.auth("viewer"),
    )
    assert [f["frameNo"] for f in page.json()] == [3, 4]
    assert page.json()[1] == frames[3]
    tail = await tt.http.get(
        f"/v1/runs/{run_id}/frames", params={"limit": 2, "order": "desc"}, headers=tt.auth("viewer")
    )
    assert [f["frameNo"] for f in tail.json()] == [numbers[-1], numbers[-2]]
    assert tail.json()[0] == last

    foreign = await tt.http.get(f"/v1/runs/{run_id}/frames", headers=tt.auth("foreign"))
    assert foreign.status_code == 404


async def test_rewind_reuses_outputs_before_the_frame(tt: TimeTravelApi) -> None:
    run_id = await tt.start(CHAIN, who="owner")
    await tt.wait(run_id, "finished")
    assert tt.probe.calls == {"a[0]": 1, "b[0]": 1, "c[0]": 1}
    frames = (await tt.http.get(f"/v1/runs/{run_id}/frames", headers=tt.auth("owner"))).json()
    point = first_frame_with(frames, "a")

    refused = {
        "viewer": 403,  # below the executor role
        "other": 403,  # an executor, but not the run's owner
        "foreign": 404,  # an admin of another namespace: the run does not exist for it
    }
    for who, status in refused.items():
        r = await tt.http.post(
            f"/v1/runs/{run_id}/rewind", json={"frameNo": point}, headers=tt.auth(who)
        )
        assert r.status_code == status, (who, r.text)
    bad = await tt.http.post(
        f"/v1/runs/{run_id}/rewind", json={"frameNo": 10_000}, headers=tt.auth("owner")
    )
    assert bad.status_code == 400, bad.text

    r = await tt.http.post(
        f"/v1/runs/{run_id}/rewind", json={"frameNo": point}, headers=tt.auth("owner")
    )
    assert r.status_code == 200, r.text
    assert r.json()["runId"] == run_id and r.json()["status"] not in ("finished",)
    await tt.wait(run_id, "finished")
    # "a" was finished at the frame: reused. "b" and "c" ran again.
    assert tt.probe.calls == {"a[0]": 1, "b[0]": 2, "c[0]": 2}
    events = await tt.http.get(f"/v1/runs/{run_id}/events", headers=tt.auth("owner"))
    assert '"type":"RunRewound"' in events.text

    # An admin may rewind anybody's run (through the Python client this time).
    async with tt.client("admin") as admin:
        run = await admin.rewind(run_id, first_frame_with(frames, "b"))
        assert run.run_id == run_id
    await tt.wait(run_id, "finished")
    assert tt.probe.calls == {"a[0]": 1, "b[0]": 2, "c[0]": 3}


async def test_fork_from_node_on_the_fixed_version_and_diff(tt: TimeTravelApi) -> None:
    run_id = await tt.start(BROKEN)
    original = await tt.wait(run_id, "failed")
    assert tt.probe.calls == {"fetch[0]": 1}
    workflow_id = original["workflowId"]
    fixed = {**BROKEN, "nodes": [dict(n) for n in BROKEN["nodes"]]}
    fixed["nodes"][1] = {"id": "compute", "type": "util.set", "params": {"value": 21}}
    r = await tt.http.put(
        f"/v1/workflows/{workflow_id}",
        json=fixed,
        headers={**tt.auth("admin"), "If-Match": '"1"'},
    )
    assert r.status_code == 200, r.text

    for body in ({}, {"frameNo": 1, "fromNode": "compute"}):
        r = await tt.http.post(f"/v1/runs/{run_id}/fork", json=body, headers=tt.auth("owner"))
        assert r.status_code == 400, r.text
    r = await tt.http.post(
        f"/v1/runs/{run_id}/fork", json={"fromNode": "nope"}, headers=tt.auth("owner")
    )
    assert r.status_code == 404, r.text

    r = await tt.http.post(
        f"/v1/runs/{run_id}/fork",
        json={"fromNode": "compute", "useLatestVersion": True},
        headers=tt.auth("other"),  # any executor may fork: it starts a new run
    )
    assert r.status_code == 201, r.text
    fork = r.json()
    assert fork["forkedFrom"] == run_id and fork["runId"] != run_id
    assert fork["trigger"] == "fork" and fork["triggeredBy"] == "other"
    assert fork["workflowVersion"] == 2
    assert r.headers["Location"] == f"/v1/runs/{fork['runId']}"
    detail = await tt.wait(fork["runId"], "finished")
    nodes = {n["nodeId"]: n for n in detail["nodes"]}
    assert nodes["fetch"]["output"]["value"] == 7 and nodes["compute"]["output"] == 21
    # "fetch" was reused (not called again); "report" ran for the first time.
    assert tt.probe.calls == {"fetch[0]": 1, "report[0]": 1}

    r = await tt.http.get(f"/v1/runs/{run_id}/diff/{fork['runId']}", headers=tt.auth("viewer"))
    assert r.status_code == 200, r.text
    diff = r.json()
    assert diff["changedNodes"] == ["compute", "report"]
    assert diff["versionChanged"] and diff["statusChanged"] and not diff["inputChanged"]
    by_node = {n["nodeId"]: n for n in diff["nodes"]}
    assert by_node["fetch"]["changed"] is False
    assert by_node["compute"]["original"]["status"] == "failed"
    assert by_node["compute"]["other"] == {"status": "finished", "output": 21}
    missing = await tt.http.get(f"/v1/runs/{run_id}/diff/no-such-run", headers=tt.auth("viewer"))
    assert missing.status_code == 404


async def test_fork_from_frame_with_new_input_through_the_client(tt: TimeTravelApi) -> None:
    run_id = await tt.start(CHAIN)
    await tt.wait(run_id, "finished")
    async with tt.client("owner") as owner:
        frames = await owner.get_frames(run_id)  # typed: Frame models
        assert frames[0].frame_no == 1 and frames[0].run_id == run_id
        point = first_frame_with([f.model_dump(by_alias=True) for f in frames], "b")
        fork = await owner.fork(run_id, frame_no=point, input={"again": True})
        assert fork.forked_from == run_id and fork.created
        await tt.wait(fork.run_id, "finished")
        # "a" and "b" were finished at the frame: reused. Only "c" ran again.
        assert tt.probe.calls == {"a[0]": 1, "b[0]": 1, "c[0]": 2}
        diff = await owner.diff(run_id, fork.run_id)
        assert diff.input_changed and not diff.version_changed
        assert diff.changed_nodes == ["c"]  # its output counts a second call
        with pytest.raises(Forbidden):
            async with tt.client("other") as other:
                await other.rewind(run_id, point)
        with pytest.raises(InvalidInput):
            await owner.fork(run_id)
        with pytest.raises(RunNotFound):
            await owner.diff(run_id, "no-such-run")
