"""Deleting runs and the retention policy, on SQLite and PostgreSQL, through the HTTP API and
the async client: role checks, the audit entry, what is refused while a run is live, and a
prune that runs while workers execute other runs and loses nothing it should keep.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from api_support import BASE_URL, ApiHarness, started

from flowplane.client import AsyncClient, Forbidden, RunNotFound, RunNotSettled

QUICK = """
name: quick
namespace: {namespace}
nodes:
  - {{id: a, type: util.log, params: {{message: one}}}}
  - {{id: b, type: util.log, params: {{message: two}}}}
"""
GATED = """
name: gated
namespace: {namespace}
nodes:
  - {{id: first, type: util.log, params: {{message: before}}}}
  - {{id: gate, type: control.approval, params: {{title: go?}}}}
  - {{id: after, type: util.log, params: {{message: after}}}}
"""
FAILING = """
name: failing
nodes:
  - {id: boom, type: util.fail, params: {retryable: false}}
"""


async def _start(api: ApiHarness, text: str, name: str) -> str:
    (api.root / name).write_text(text)
    response = await api.client.post("/v1/runs", json={"workflowPath": name})
    assert response.status_code == 200, response.text
    run_id: str = response.json()["runId"]
    return run_id


async def _wait(api: ApiHarness, run_id: str, *statuses: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        body: dict[str, Any] = (await api.client.get(f"/v1/runs/{run_id}")).json()
        if body.get("status") in statuses:
            return
        assert time.monotonic() < deadline, f"run {run_id} stayed {body.get('status')}"
        await asyncio.sleep(0.05)


async def _frames(api: ApiHarness, run_id: str) -> Any:
    response = await api.client.get(f"/v1/runs/{run_id}/frames", params={"limit": 1000})
    assert response.status_code == 200, response.text
    return response.json()


def _client(api: ApiHarness, key: str) -> AsyncClient:
    return AsyncClient(BASE_URL, token=key, transport=httpx.ASGITransport(app=api.app))


async def test_delete_run_checks_role_and_state_and_audits(
    db: tuple[str, str], tmp_path: Path
) -> None:
    async with started(db, tmp_path / "root", workers=1) as api:
        done = await _start(api, QUICK.format(namespace="default"), "quick.yaml")
        gated = await _start(api, GATED.format(namespace="default"), "gated.yaml")
        await _wait(api, done, "finished")
        await _wait(api, gated, "waiting-approval")

        async with _client(api, await api.key("executor")) as executor:
            with pytest.raises(Forbidden):
                await executor.delete_run(done)
        async with _client(api, await api.key("editor", ["elsewhere"])) as stranger:
            with pytest.raises(RunNotFound):
                await stranger.delete_run(done)
        async with _client(api, await api.key("editor")) as editor:
            with pytest.raises(RunNotSettled):
                await editor.delete_run(gated)
            await editor.delete_run(done)
            with pytest.raises(RunNotFound):
                await editor.get_run(done)
            with pytest.raises(RunNotFound):
                await editor.delete_run(done)
            # A live run is untouched by the refusal: it still waits and can go on.
            await editor.approve(gated, "gate")
            await _wait(api, gated, "finished")
            await editor.delete_run(gated)

        for path in (f"/v1/runs/{done}/frames", f"/v1/runs/{done}/logs", f"/v1/runs/{done}/events"):
            assert (await api.client.get(path)).status_code == 404, path
        audit = (await api.client.get("/v1/audit", params={"action": "run.delete"})).json()
        entries = audit["items"] if isinstance(audit, dict) else audit
        deleted = {e["targetId"] for e in entries if e["action"] == "run.delete"}
        assert {done, gated} <= deleted


async def test_delete_over_http_is_problem_json(db: tuple[str, str], tmp_path: Path) -> None:
    async with started(db, tmp_path / "root", workers=1) as api:
        gated = await _start(api, GATED.format(namespace="default"), "gated.yaml")
        await _wait(api, gated, "waiting-approval")
        response = await api.client.delete(f"/v1/runs/{gated}")
        assert response.status_code == 409
        assert response.headers["content-type"].startswith("application/problem+json")
        assert response.json()["code"] == "RUN_NOT_SETTLED"
        assert (await api.client.post(f"/v1/runs/{gated}/cancel")).status_code == 200
        await _wait(api, gated, "cancelled")
        assert (await api.client.delete(f"/v1/runs/{gated}")).status_code == 204
        assert (await api.client.delete("/v1/runs/no-such-run")).status_code == 404


async def test_prune_while_workers_run_keeps_what_it_should(
    db: tuple[str, str], tmp_path: Path
) -> None:
    """Old finished runs go, batch by batch; failed runs (no policy), a namespace that keeps
    everything, live runs and runs that settled after the cut-off stay and keep working."""
    async with started(
        db,
        tmp_path / "root",
        workers=1,
        retention_finished="1s",
        retention_namespaces={"keep": {"finished": None}},
        retention_batch_size=2,
    ) as api:
        old = [await _start(api, QUICK.format(namespace="default"), f"q{i}.yaml") for i in range(5)]
        kept_ns = await _start(api, QUICK.format(namespace="keep"), "keep.yaml")
        failed = await _start(api, FAILING, "failing.yaml")
        waiting = await _start(api, GATED.format(namespace="default"), "gated.yaml")
        for run_id in [*old, kept_ns]:
            await _wait(api, run_id, "finished")
        await _wait(api, failed, "failed")
        await _wait(api, waiting, "waiting-approval")
        await asyncio.sleep(1.1)  # the old runs are now past the 1s retention

        async with _client(api, await api.key("editor")) as editor:
            with pytest.raises(Forbidden):
                await editor.prune_runs(dry_run=True)
        async with _client(api, api.admin_key) as admin:
            dry = await admin.prune_runs(dry_run=True)
            assert dry.dry_run and dry.deleted == {"default": 5} and dry.total == 5
            for run_id in old:  # a dry run deletes nothing
                await admin.get_run(run_id)

            kept = (kept_ns, failed, waiting)
            frames_before = {r: await _frames(api, r) for r in kept}

            # Two prunes at once (as two processes would) while the worker runs new runs,
            # which settle after the cut-off: together they delete each old run once.
            fresh_texts = [QUICK.format(namespace="default")] * 4
            starts = [_start(api, text, f"fresh{i}.yaml") for i, text in enumerate(fresh_texts)]
            results = await asyncio.gather(admin.prune_runs(), admin.prune_runs(), *starts)
            reports, fresh = results[:2], list(results[2:])
            assert sum(r.total for r in reports) == 5
            assert all(set(r.deleted) <= {"default"} for r in reports)
            for run_id in kept:  # nothing of a kept run was touched
                assert await _frames(api, run_id) == frames_before[run_id]
            for run_id in fresh:
                await _wait(api, run_id, "finished")
                detail = await admin.get_run(run_id)
                assert [n.state for n in detail.nodes] == ["finished", "finished"]

            for run_id in old:
                with pytest.raises(RunNotFound):
                    await admin.get_run(run_id)
            for run_id in (kept_ns, failed):
                assert (await admin.get_run(run_id)).status in ("finished", "failed")
                assert (await api.client.get(f"/v1/runs/{run_id}/frames")).status_code == 200
            # The live run kept its frames and can still be approved and finish.
            frames = (await api.client.get(f"/v1/runs/{waiting}/frames")).json()
            assert frames
            await admin.approve(waiting, "gate")
            await _wait(api, waiting, "finished")

        audit = (await api.client.get("/v1/audit", params={"action": "run.prune"})).json()
        entries = audit["items"] if isinstance(audit, dict) else audit
        assert sum(e["details"]["runs"] for e in entries if e["action"] == "run.prune") == 5


async def test_background_task_applies_the_policy(db: tuple[str, str], tmp_path: Path) -> None:
    async with started(
        db,
        tmp_path / "root",
        workers=1,
        retention_failed="1s",
        retention_interval_seconds=1,
    ) as api:
        failed = await _start(api, FAILING, "failing.yaml")
        finished = await _start(api, QUICK.format(namespace="default"), "quick.yaml")
        await _wait(api, failed, "failed")
        await _wait(api, finished, "finished")
        deadline = time.monotonic() + 30
        while (await api.client.get(f"/v1/runs/{failed}")).status_code != 404:
            assert time.monotonic() < deadline, "the retention task never deleted the run"
            await asyncio.sleep(0.2)
        assert (await api.client.get(f"/v1/runs/{finished}")).status_code == 200


async def test_delete_run_over_rpc(db: tuple[str, str], tmp_path: Path) -> None:
    async with started(db, tmp_path / "root", workers=1) as api:
        gated = await _start(api, GATED.format(namespace="default"), "gated.yaml")
        await _wait(api, gated, "waiting-approval")
        refused = await api.client.post("/v1/rpc/deleteRun", json={"runId": gated})
        # /v1/rpc answers Smithers' response frames (docs/surfaces/gateway.md).
        assert refused.status_code == 409 and refused.json()["error"]["code"] == "RUN_NOT_SETTLED"
        async with api.client_for(await api.key("executor")) as executor:
            forbidden = await executor.post("/v1/rpc/deleteRun", json={"runId": gated})
            assert forbidden.status_code == 403
        await api.client.post(f"/v1/runs/{gated}/cancel")
        await _wait(api, gated, "cancelled")
        deleted = await api.client.post("/v1/rpc/deleteRun", json={"runId": gated})
        assert deleted.status_code == 200, deleted.text
        assert deleted.json()["payload"] == {"deleted": True, "runId": gated}
        assert (await api.client.get(f"/v1/runs/{gated}")).status_code == 404
