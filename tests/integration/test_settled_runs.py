"""``GET /v1/runs/{id}`` of settled runs served from memory, on both backends.

The first read of a settled run renders it; later reads are answered before routing
(:mod:`flowplane.api.settled_runs`). These tests check that such answers are the same
document with the same headers, still authenticated, rate-limited, counted and
namespace-checked, and that a change of the run is never hidden from this process.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from runs_support import ADMIN, OTHER_NS, VIEWER, Api, create_keys, fast_settings

from flowplane.api.app import create_app
from flowplane.services.caller import Caller
from flowplane.services.runs import RunService
from flowplane.store.base import Store

FAILS_ONCE = """
name: fails-once
nodes:
  - {id: first, type: util.set, params: {value: 1}}
  - id: flaky
    type: util.fail
    needs: [first]
    params: {fail_times: 1, retryable: false}
"""
ROUTE_SAMPLE = re.compile(
    r'^flowplane_http_requests_total\{method="GET",route="/v1/runs/\{run_id\}",status="(\d+)"\} '
    r"(\S+)$",
    re.M,
)


@contextlib.asynccontextmanager
async def served(db: tuple[str, str], root: Path, **settings: Any) -> AsyncIterator[Api]:
    app = create_app(fast_settings(db, root, **settings), workers=1)
    async with app.router.lifespan_context(app):
        keys = await create_keys(app)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://flowplane") as http:
            yield Api(app, http, root, keys)


@pytest.fixture
async def api(db: tuple[str, str], tmp_path: Path) -> AsyncIterator[Api]:
    async with served(db, tmp_path) as started:
        yield started


async def settled_run(api: Api) -> tuple[str, httpx.Response]:
    """Start FAILS_ONCE, wait until it failed; return its id and its first (rendering) read."""
    run_id = await api.dispatch_file("fails-once.yaml", FAILS_ONCE)
    await api.wait_status(run_id, "failed")
    first = await api.http.get(f"/v1/runs/{run_id}", headers=api.headers(VIEWER))
    assert first.status_code == 200
    return run_id, first


def route_counts(text: str) -> dict[str, float]:
    return {status: float(value) for status, value in ROUTE_SAMPLE.findall(text)}


async def test_repeated_reads_are_the_same_document_and_headers(api: Api) -> None:
    run_id, first = await settled_run(api)
    before = route_counts((await api.http.get("/metrics", headers=api.headers(ADMIN))).text)
    reads = [
        await api.http.get(
            f"/v1/runs/{run_id}", headers={**api.headers(VIEWER), "X-Request-Id": f"r{i}"}
        )
        for i in range(3)
    ]
    for read in reads:
        assert read.status_code == 200
        assert read.json() == first.json()
        assert read.headers["content-type"] == "application/json"
        assert int(read.headers["content-length"]) == len(read.content)
        assert read.headers["ratelimit-policy"] == first.headers["ratelimit-policy"]
        assert "ratelimit" in read.headers
    assert [read.headers["x-request-id"] for read in reads] == ["r0", "r1", "r2"]
    body = first.json()
    assert body["status"] == "failed" and body["summary"] == {"finished": 1, "failed": 1}
    after = route_counts((await api.http.get("/metrics", headers=api.headers(ADMIN))).text)
    assert after["200"] - before.get("200", 0.0) == 3


async def test_still_authenticated_and_namespace_checked(api: Api) -> None:
    run_id, _ = await settled_run(api)
    anonymous = await api.http.get(f"/v1/runs/{run_id}")
    assert anonymous.status_code == 401
    wrong = await api.http.get(f"/v1/runs/{run_id}", headers={"Authorization": "Bearer fp_x"})
    assert wrong.status_code == 401
    hidden = await api.http.get(f"/v1/runs/{run_id}", headers=api.headers(OTHER_NS))
    assert hidden.status_code == 404 and hidden.json()["code"] == "RUN_NOT_FOUND"
    missing = await api.http.get("/v1/runs/no-such-run", headers=api.headers(VIEWER))
    assert missing.status_code == 404


async def test_a_change_through_this_process_shows_at_once(api: Api) -> None:
    run_id, first = await settled_run(api)
    assert first.json()["status"] == "failed"
    resumed = await api.http.post(f"/v1/runs/{run_id}/resume", headers=api.headers())
    assert resumed.status_code == 200, resumed.text
    # The very next read sees the resumed run, not the cached failure.
    after = await api.http.get(f"/v1/runs/{run_id}", headers=api.headers(VIEWER))
    assert after.json()["status"] != "failed"
    finished = await api.wait_status(run_id, "finished")
    assert {n["nodeId"]: n["state"] for n in finished["nodes"]} == {
        "first": "finished",
        "flaky": "finished",
    }
    again = await api.http.get(f"/v1/runs/{run_id}", headers=api.headers(VIEWER))
    assert again.json() == finished


async def test_a_change_through_another_process(db: tuple[str, str], tmp_path: Path) -> None:
    """Another process (its own store and RunService) resumes the run. On PostgreSQL its
    ``run-changed`` NOTIFY drops the entry here at once (the TTL is set far too long to
    matter); SQLite has no notifications between processes, so the TTL bounds it."""
    postgres = db[0].startswith("postgresql")
    ttl = 120.0 if postgres else 0.5
    async with served(db, tmp_path, run_cache_seconds=ttl) as api:
        run_id, _ = await settled_run(api)
        other_store = await Store.open(db[0], schema=db[1])
        try:
            await RunService(other_store).resume(Caller.system(), run_id)
            resumed_at = time.monotonic()
            while True:
                read = await api.http.get(f"/v1/runs/{run_id}", headers=api.headers(VIEWER))
                if read.json()["status"] != "failed":
                    break
                assert time.monotonic() - resumed_at < (5.0 if postgres else ttl + 5.0), "stale"
                await asyncio.sleep(0.05)
        finally:
            await other_store.close()


async def test_cache_off(db: tuple[str, str], tmp_path: Path) -> None:
    async with served(db, tmp_path, run_cache_seconds=0) as api:
        run_id, _ = await settled_run(api)
        other = RunService(api.app.state.services.store)
        await other.resume(Caller.system(), run_id)
        read = await api.http.get(f"/v1/runs/{run_id}", headers=api.headers(VIEWER))
        assert read.json()["status"] != "failed"
