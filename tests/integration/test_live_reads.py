"""``GET /v1/runs/{id}`` of live runs and ``GET /v1/runs`` answered from memory, never stale.

A live run's snapshot and a page of run summaries are kept in the run cache
(:mod:`flowplane.services.run_cache`) until a change is announced: this process's own
commits at once, other processes' over LISTEN on PostgreSQL, and within
``FLOWPLANE_RUN_CACHE_SECONDS`` between SQLite processes. Each test reads through the
public API, changes the run through another path (a worker completing a node, an approval,
a cancel, another process's store) and must see the change within that bound; the TTL is
set far too long to hide a missing invalidation, except where it is the bound (SQLite
between processes).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from runs_support import APPROVAL_WORKFLOW, VIEWER, Api, create_keys, fast_settings

from flowplane.api.app import create_app
from flowplane.connectors.base import NodeContext, connector
from flowplane.connectors.registry import Registry, load_builtins
from flowplane.services.caller import Caller
from flowplane.services.container import build_services
from flowplane.store.base import Store

GATED = """
name: gated
nodes:
  - {id: gate, type: test.gate}
  - {id: done, type: util.set, needs: [gate], params: {value: 1}}
"""
LONG_TTL = 120.0
"""A TTL no test waits for: only an invalidation can make a change visible in time."""


def gated_registry(gate: asyncio.Event) -> Registry:
    """Built-ins plus ``test.gate``: in progress until ``gate`` is set."""
    registry = Registry()
    load_builtins(registry)

    @connector("test.gate", description="Wait for the test's gate.")
    async def wait_gate(params: dict[str, Any], ctx: NodeContext) -> Any:
        await gate.wait()
        return {"opened": True}

    registry.register(wait_gate)
    return registry


@contextlib.asynccontextmanager
async def served(
    db: tuple[str, str],
    root: Path,
    gate: asyncio.Event | None = None,
    workers: int = 1,
    **settings: Any,
) -> AsyncIterator[Api]:
    registry = gated_registry(gate or asyncio.Event())
    app = create_app(fast_settings(db, root, **settings), workers=workers, registry=registry)
    async with app.router.lifespan_context(app):
        keys = await create_keys(app)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://flowplane") as http:
            yield Api(app, http, root, keys)


async def detail(api: Api, run_id: str) -> dict[str, Any]:
    response = await api.http.get(f"/v1/runs/{run_id}", headers=api.headers(VIEWER))
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def listing(api: Api) -> list[dict[str, Any]]:
    response = await api.http.get("/v1/runs?limit=50", headers=api.headers(VIEWER))
    assert response.status_code == 200, response.text
    body: list[dict[str, Any]] = response.json()
    return body


def node(body: dict[str, Any], node_id: str) -> dict[str, Any]:
    found: dict[str, Any] = next(n for n in body["nodes"] if n["nodeId"] == node_id)
    return found


def cached_live(api: Api, run_id: str) -> bool:
    """Whether the run's live snapshot is kept (so that the next read is from memory)."""
    cache = api.app.state.services.runs.settled
    return cache.get_live(run_id) is not None


async def until(
    read: Any, check: Any, bound: float, what: str, poll: float = 0.02
) -> dict[str, Any] | list[dict[str, Any]]:
    """Read until ``check`` holds; fail when ``bound`` seconds pass first (stale)."""
    start = time.monotonic()
    while True:
        value = await read()
        if check(value):
            return value  # type: ignore[no-any-return]
        assert time.monotonic() - start < bound, f"stale beyond {bound}s: {what}"
        await asyncio.sleep(poll)


async def cached_gated_run(api: Api) -> str:
    """A run whose ``gate`` node is in progress, read twice (the second from memory)."""
    run_id = await api.dispatch_file("gated.yaml", GATED)
    await until(
        lambda: detail(api, run_id),
        lambda b: node(b, "gate")["state"] == "in-progress",
        10,
        "gate never started",
    )
    first = await detail(api, run_id)
    assert cached_live(api, run_id)
    second = await detail(api, run_id)
    assert still(second) == still(first)
    assert second["durationMs"] >= first["durationMs"]
    return run_id


def still(value: Any) -> Any:
    """``value`` without its ``durationMs`` members (they grow while things run)."""
    if isinstance(value, dict):
        return {k: still(v) for k, v in value.items() if k != "durationMs"}
    if isinstance(value, list):
        return [still(v) for v in value]
    return value


async def test_a_worker_completing_a_node_shows(db: tuple[str, str], tmp_path: Path) -> None:
    gate = asyncio.Event()
    async with served(db, tmp_path, gate, run_cache_seconds=LONG_TTL) as api:
        run_id = await cached_gated_run(api)
        gate.set()  # the embedded worker completes `gate`, then `done`: its own commits
        done = await until(
            lambda: detail(api, run_id),
            lambda b: b["status"] == "finished",
            10,
            "the worker's completion",
        )
        assert isinstance(done, dict)
        assert node(done, "gate")["output"] == {"opened": True}


async def test_an_approval_and_a_cancel_show_at_once(db: tuple[str, str], tmp_path: Path) -> None:
    async with served(db, tmp_path, run_cache_seconds=LONG_TTL) as api:
        approved = await api.dispatch_file("approval.yaml", APPROVAL_WORKFLOW)
        cancelled = await api.dispatch_file("approval.yaml", APPROVAL_WORKFLOW)
        # Both waiting first: a run still moving announces events, and while an announced
        # event is not applied no live detail is kept (RunCache.unsure).
        for run_id in (approved, cancelled):
            await api.wait_status(run_id, "waiting-approval")
        for run_id in (approved, cancelled):
            await detail(api, run_id)
            assert cached_live(api, run_id)
            assert (await detail(api, run_id))["status"] == "waiting-approval"
        answer = await api.http.post(
            f"/v1/runs/{approved}/nodes/ask/approve", json={}, headers=api.headers()
        )
        assert answer.status_code == 200, answer.text
        # The very next read: the approval is no longer waited for.
        after = await detail(api, approved)
        assert node(after, "ask")["state"] == "finished" and after["status"] != "waiting-approval"
        stop = await api.http.post(f"/v1/runs/{cancelled}/cancel", headers=api.headers())
        assert stop.status_code == 200, stop.text
        assert (await detail(api, cancelled))["status"] == "cancelled"


async def test_changes_through_another_process(db: tuple[str, str], tmp_path: Path) -> None:
    """The served app runs no worker: another process (its own store, services and worker)
    moves the runs, approves one and cancels another, so only a notification from it (or
    the TTL) can tell this process. PostgreSQL: its NOTIFY arrives over LISTEN (the TTL is
    far too long to matter); SQLite has no notifications between processes: the TTL is the
    bound."""
    postgres = db[0].startswith("postgresql")
    ttl = LONG_TTL if postgres else 0.5
    bound = 5.0 if postgres else ttl + 5.0
    async with served(db, tmp_path, run_cache_seconds=ttl, workers=0) as api:
        other_store = await Store.open(db[0], schema=db[1])
        other = build_services(
            other_store, fast_settings(db, tmp_path), gated_registry(asyncio.Event())
        )
        worker = other.new_worker()
        working = asyncio.create_task(worker.run())
        try:
            approved = await api.dispatch_file("approval.yaml", APPROVAL_WORKFLOW)
            cancelled = await api.dispatch_file("approval.yaml", APPROVAL_WORKFLOW)
            for run_id in (approved, cancelled):
                await until(
                    lambda run_id=run_id: detail(api, run_id),
                    lambda b: b["status"] == "waiting-approval",
                    bound + 10,
                    "the other worker's progress",
                )
                await detail(api, run_id)
            assert (await listing(api))[0]["status"] == "waiting-approval"
            await other.runs.decide(Caller.system(), approved, "ask", approved=True)
            await other.runs.cancel(Caller.system(), cancelled)
            await until(
                lambda: detail(api, approved),
                lambda b: node(b, "ask")["state"] != "waiting-approval",
                bound,
                "another process's approval",
            )
            await until(
                lambda: detail(api, cancelled),
                lambda b: b["status"] == "cancelled",
                bound,
                "another process's cancel",
            )
            await until(
                lambda: listing(api),
                lambda runs: {r["runId"]: r["status"] for r in runs}[approved] == "finished",
                bound + 10,
                "another process's worker finishing a run, in the listing",
            )
        finally:
            await worker.stop()
            working.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await working
            await other.aclose()
            await other_store.close()


async def test_the_listing_follows_every_change(db: tuple[str, str], tmp_path: Path) -> None:
    gate = asyncio.Event()
    async with served(db, tmp_path, gate, run_cache_seconds=LONG_TTL) as api:
        first = await api.dispatch_file("gated.yaml", GATED)
        await until(lambda: detail(api, first), lambda b: b["status"] == "running", 10, "start")
        before = await listing(api)
        assert [r["runId"] for r in before] == [first]
        assert still(await listing(api)) == still(before)
        # A new run (POST through this process) is listed by the very next read.
        second = await api.dispatch_file("approval.yaml", APPROVAL_WORKFLOW)
        assert [r["runId"] for r in await listing(api)] == [second, first]
        # A status change by the worker (the approval node starts waiting).
        await until(
            lambda: listing(api),
            lambda runs: runs[0]["status"] == "waiting-approval",
            10,
            "the worker's change in the listing",
        )
        stop = await api.http.post(f"/v1/runs/{second}/cancel", headers=api.headers())
        assert stop.status_code == 200
        assert (await listing(api))[0]["status"] == "cancelled"
        # A page with a next one: the kept answer has the route's cursor and Link headers.
        paged = [
            await api.http.get(
                "/v1/runs?limit=1&status=cancelled,running", headers=api.headers(VIEWER)
            )
            for _ in range(2)
        ]
        assert paged[0].headers["x-next-cursor"] == paged[1].headers["x-next-cursor"] == second
        assert paged[0].headers["link"] == paged[1].headers["link"]
        assert "cursor=" in paged[1].headers["link"] and "status=" in paged[1].headers["link"]
        assert paged[0].content == paged[1].content
        gate.set()
        await until(
            lambda: listing(api),
            lambda runs: runs[1]["status"] == "finished",
            10,
            "the worker finishing a run, in the listing",
        )


async def test_answers_are_what_a_fresh_rendering_writes(
    db: tuple[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With the clock stopped, the answer from memory (a template joined with durations)
    has the very bytes of the first answer (rendered by pydantic from the database), and
    the listing the items of the RPC ``listRuns`` (pydantic models)."""
    gate = asyncio.Event()
    async with served(db, tmp_path, gate, run_cache_seconds=LONG_TTL) as api:
        run_id = await cached_gated_run(api)
        waiting = await api.dispatch_file("approval.yaml", APPROVAL_WORKFLOW)
        await api.wait_status(waiting, "waiting-approval")
        api.app.state.services.runs.settled.drop(run_id)
        frozen = int(time.time() * 1000) + 5_000
        monkeypatch.setattr("flowplane.services.run_reads.now_ms", lambda: frozen)
        monkeypatch.setattr("flowplane.api.run_templates.now_ms", lambda: frozen)
        url = f"/v1/runs/{run_id}"
        fresh = await api.http.get(url, headers=api.headers(VIEWER))
        assert cached_live(api, run_id)
        kept = await api.http.get(url, headers=api.headers(VIEWER))
        assert kept.content == fresh.content
        assert fresh.json()["durationMs"] >= 5_000
        rpc = await api.http.post("/v1/rpc/listRuns", json={"limit": 50}, headers=api.headers())
        assert rpc.status_code == 200, rpc.text
        # (the gateway's rows: Flowplane's list model, plus two members of Smithers')
        extra = {"workflowKey", "system"}
        expected = [
            {k: v for k, v in row.items() if k not in extra} for row in rpc.json()["payload"]
        ]
        assert len(expected) == 2
        for _ in range(2):  # the route's rendering, then the kept page's template
            response = await api.http.get("/v1/runs?limit=50", headers=api.headers(VIEWER))
            assert json.loads(response.content) == expected
        gate.set()
