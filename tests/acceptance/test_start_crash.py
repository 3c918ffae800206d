"""kill -9 while a group of run starts is being committed: no start is answered unless stored.

A real ``flowplane serve`` (API only) is killed at the ``dispatch`` fault point (a run
inserted in its starting transaction, before the commit) while 48 starts arrive at once,
so that several share each transaction (group commit, ``services/group_commit.py``). Every
start answered 200 must be stored, with its node runs, once the process is gone.
"""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

import httpx
import pytest
from serve_support import serving

from conftest import BACKENDS, POSTGRES_URL, drop_schema, require_postgres
from flowplane.store.base import Store

STARTS = 48
CRASH_AT = 20  # the 20th run inserted: in a batch, after others of it
WORKFLOW = {
    "name": "crash-starts",
    "nodes": [{"id": "a", "type": "util.noop"}, {"id": "b", "type": "util.noop", "needs": ["a"]}],
}


@pytest.mark.parametrize("backend", BACKENDS)
async def test_no_start_is_answered_before_its_commit(backend: str, tmp_path: Path) -> None:
    if backend == "sqlite":
        url, schema = f"sqlite:///{tmp_path / 'fp.db'}", "flowplane"
    else:
        require_postgres()
        url, schema = POSTGRES_URL, f"t_{uuid.uuid4().hex[:12]}"
    # The pause before the kill gives an answer sent before its commit time to arrive.
    env = {"FLOWPLANE_CRASH_AT": f"dispatch:{CRASH_AT}", "FLOWPLANE_CRASH_DELAY_SECONDS": "0.5"}
    try:
        with serving(
            tmp_path, url, "--database-schema", schema, "--workers", "0", env=env
        ) as server:
            created = httpx.post(
                f"{server.url}/v1/workflows", json=WORKFLOW, headers=server.headers
            )
            assert created.status_code == 201, created.text
            workflow_id = created.json()["id"]
            limits = httpx.Limits(max_connections=STARTS)
            async with httpx.AsyncClient(
                base_url=server.url, headers=server.headers, limits=limits, timeout=30
            ) as client:

                async def start(i: int) -> str | None:
                    try:
                        answer = await client.post(
                            "/v1/runs", json={"workflowId": workflow_id, "input": {"i": i}}
                        )
                    except httpx.TransportError:
                        return None  # the process died before answering
                    assert answer.status_code == 200, answer.text
                    run_id: str = answer.json()["runId"]
                    return run_id

                answers = await asyncio.gather(*(start(i) for i in range(STARTS)))
            server.proc.wait(30)
            assert server.proc.returncode == -9, server.log.read_text()[-2000:]
        accepted = [run_id for run_id in answers if run_id is not None]
        assert len(accepted) < STARTS  # the kill came while starts were in flight
        store = await Store.open(url, schema=schema, migrate=False)
        try:
            for run_id in accepted:
                run = await store.read(lambda tx, run_id=run_id: tx.get_run(run_id))
                assert run is not None, f"run {run_id} was answered but is not stored"
                states = await store.read(lambda tx, run_id=run_id: tx.node_states(run_id))
                assert len(states) == 2
        finally:
            await store.close()
    finally:
        if backend == "postgres":
            drop_schema(schema)
