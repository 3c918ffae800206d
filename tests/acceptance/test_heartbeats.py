"""Heartbeats keep short leases while the worker is saturated by its own work.

A real ``flowplane worker`` with a 1 s lease runs 16 node runs at once, each burning the
CPU with the event loop held for 0.1 s at a time (one turn of the loop then takes ~1.6 s,
longer than the lease) and all completing, and so writing, together. A heartbeat that
waited for the event loop or behind the work's transactions arrived after its lease had
expired: the nodes were reaped (``lease_expired``) and ran again. Heartbeats run on their
own thread and connection now: no lease expires, every node runs once.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from crash_support import attempts_by_node, run_rows, until
from outage_support import effect_counts, registry, spawn_fixture  # noqa: F401  (``spawn``)

from flowplane.services.caller import Caller
from flowplane.services.runs import RunService
from flowplane.store.base import Store
from flowplane.store.tx import TERMINAL_RUN

pytestmark = pytest.mark.slow
LEASE_SECONDS = 1.0
ITEMS = 16


async def test_a_saturated_worker_keeps_its_short_leases(
    db: tuple[str, str], spawn: Any, tmp_path: Path
) -> None:
    store = await Store.open(db[0], schema=db[1])
    try:
        runs = RunService(store, registry())
        doc = {
            "name": "busy",
            "nodes": [
                {
                    "id": "work",
                    "type": "outage.step",
                    "foreach": list(range(ITEMS)),
                    "params": {"value": "{{ item }}", "busy": 0.8, "chunk": 0.1},
                }
            ],
        }
        run_id = (await runs.start(Caller.system(), doc)).run.id
        worker = spawn("busy", db, lease_seconds=LEASE_SECONDS)

        async def settled() -> bool:
            assert worker.alive(), worker.log()
            status = (await run_rows(store, [run_id]))[run_id]["status"]
            return status in TERMINAL_RUN

        await until(settled, 90, f"the run did not finish:\n{worker.log()[-3000:]}", 0.2)
        attempts = await attempts_by_node(store)
        await asyncio.sleep(0)
    finally:
        await store.close()
    lost = [a for rows in attempts.values() for a in rows if a["status"] != "finished"]
    assert lost == [], (lost, worker.log()[-3000:])
    items = {k: rows for k, rows in attempts.items() if k[2] >= 0}
    assert len(items) == ITEMS
    assert all(len(rows) == 1 for rows in items.values()), items
    assert all(n == 1 for n in effect_counts(tmp_path).values())
    assert len(effect_counts(tmp_path)) == ITEMS
