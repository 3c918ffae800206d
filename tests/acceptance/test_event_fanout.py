"""Event fan-out under a mass reconnect, against a real ``flowplane serve`` on both backends.

A hundred SSE clients reconnect to ``/v1/events`` with old ``Last-Event-ID``\\ s (a few
pages of history behind the head) while runs keep being started and followed to their end.
Each client must receive every event of the namespace after its cursor exactly once and in
``seq`` order (the catch-up replays run paced, from shared pages, and then hand over to the
live tail), and every run started meanwhile must finish.
"""

from __future__ import annotations

import asyncio
import json
import random
from pathlib import Path

import httpx
import pytest
from serve_support import Serve, serving

from flowplane.store import reads
from flowplane.store.base import Store

WORKFLOW = """
name: fanout-three
nodes:
  - {id: a, type: util.noop}
  - {id: b, type: util.noop, needs: [a]}
  - {id: c, type: util.noop, needs: [b]}
"""
HISTORY_RUNS = 40  # ~13 events each: several replay pages of history
RUNS_DURING = 8
SUBSCRIBERS = 100


async def start_and_follow(c: httpx.AsyncClient, workflow_id: str) -> str:
    """Start a run and follow its SSE stream until the server ends it (the run is over)."""
    started = await c.post("/v1/runs", json={"workflowId": workflow_id})
    assert started.status_code == 200, started.text
    run_id: str = started.json()["runId"]
    types: list[str] = []
    async with c.stream("GET", f"/v1/runs/{run_id}/events") as response:
        assert response.status_code == 200
        async for line in response.aiter_lines():
            if line.startswith("data: "):
                types.append(json.loads(line[6:])["type"])
    assert "RunFinished" in types, types
    return run_id


async def subscribe(server: Serve, after: int, target: asyncio.Future[int], got: list[int]) -> None:
    """Read ``/v1/events`` from ``Last-Event-ID: after`` until the event ``target``."""
    headers = {**server.headers, "Last-Event-ID": str(after)}
    async with (
        httpx.AsyncClient(base_url=server.url, timeout=60) as c,
        c.stream("GET", "/v1/events?namespace=default", headers=headers) as response,
    ):
        assert response.status_code == 200
        async for line in response.aiter_lines():
            if line.startswith("id: "):
                got.append(int(line[4:]))
                if target.done() and got[-1] >= target.result():
                    return


async def table(url: str, schema: str) -> list[int]:
    store = await Store.open(url, schema=schema, migrate=False)
    try:
        events = await store.read(
            lambda tx: reads.events_after(tx, namespaces=["default"], limit=100_000)
        )
        return [event.seq for event in events]
    finally:
        await store.close()


@pytest.mark.slow
async def test_a_mass_reconnect_gets_every_event_once_while_runs_go_on(
    db: tuple[str, str], tmp_path: Path
) -> None:
    url, schema = db
    with serving(tmp_path, url, "--database-schema", schema, ready_path="/readyz") as server:
        # Idle connections are dropped before the server's 5 s keep-alive timeout: a POST on
        # one the loaded server is closing at that moment would fail with ReadError.
        limits = httpx.Limits(keepalive_expiry=1.0)
        async with httpx.AsyncClient(
            base_url=server.url, headers=server.headers, timeout=60, limits=limits
        ) as c:
            created = await c.post(
                "/v1/workflows", content=WORKFLOW, headers={"Content-Type": "text/yaml"}
            )
            assert created.status_code == 201, created.text
            workflow_id = created.json()["id"]
            for _ in range(HISTORY_RUNS // 8):
                await asyncio.gather(*(start_and_follow(c, workflow_id) for _ in range(8)))
            history = await table(url, schema)
            assert len(history) > 400

            rng = random.Random(19)
            starts = [rng.randrange(0, 120) for _ in range(SUBSCRIBERS)]
            target: asyncio.Future[int] = asyncio.get_running_loop().create_future()
            got: list[list[int]] = [[] for _ in starts]
            subscribers = [
                asyncio.create_task(subscribe(server, after, target, mine))
                for after, mine in zip(starts, got, strict=True)
            ]
            # Runs keep starting and finishing while the hundred catch up.
            finished = await asyncio.wait_for(
                asyncio.gather(*(start_and_follow(c, workflow_id) for _ in range(RUNS_DURING))),
                120,
            )
            assert len(finished) == RUNS_DURING
            every = await table(url, schema)
            target.set_result(every[-1])
            # A subscriber already past the target when it was set stops at its next event.
            await c.post(
                "/v1/runs", json={"workflowId": workflow_id}
            )  # one more run: every stream gets an event after the target
            await asyncio.wait_for(asyncio.gather(*subscribers), 120)

    for after, mine in zip(starts, got, strict=True):
        expected = [seq for seq in every if seq > after]
        assert mine[: len(expected)] == expected, f"from {after}: gap, duplicate or disorder"
        assert mine == sorted(set(mine))
