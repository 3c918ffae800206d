"""Three real ``flowplane worker`` processes on PostgreSQL fire each schedule slot once.

No leader: every process's scheduler ticks the same schedule as each slot comes due, and the
unique ``(schedule_id, slot_ms)`` row decides. The schedule fires every second for a minute
(60 slots), as the issue asks.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from conftest import POSTGRES_URL, drop_schema, require_postgres
from flowplane.connectors.registry import default_registry
from flowplane.services.caller import Caller
from flowplane.services.runs import RunService
from flowplane.services.schedules import ScheduleService
from flowplane.services.workflows import WorkflowService
from flowplane.store import schema as t
from flowplane.store.base import Store

WORKERS = 3
SLOTS = 60
STARTUP_SECONDS = 6.0
"""Time for the processes to import and connect before the first slot."""

WORKFLOW = {
    "name": "every-second",
    "nodes": [{"id": "log", "type": "util.log", "params": {"message": "tick"}}],
}


@pytest.fixture
async def store() -> AsyncIterator[Store]:
    require_postgres()
    schema = f"t_{uuid.uuid4().hex[:12]}"
    opened = await Store.open(POSTGRES_URL, schema=schema)
    try:
        yield opened
    finally:
        await opened.close()
        drop_schema(schema)


def start_worker(store: Store, folder: Path, index: int) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FLOWPLANE_")}
    env.update(
        {
            "FLOWPLANE_DATABASE_URL": store.url,
            "FLOWPLANE_DATABASE_SCHEMA": store.schema,
            "FLOWPLANE_POLL_INTERVAL_SECONDS": "0.2",
            "FLOWPLANE_LOG_LEVEL": "info",
        }
    )
    log = folder / f"worker-{index}.err"
    with log.open("wb") as err:
        return subprocess.Popen(
            [sys.executable, "-m", "flowplane", "worker", "--grace-seconds", "2"],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=err,
            cwd=folder,
        )


async def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + 15
    while proc.poll() is None and time.monotonic() < deadline:
        await asyncio.sleep(0.1)
    if proc.poll() is None:
        proc.kill()
        proc.wait(5)


@pytest.mark.slow
@pytest.mark.timeout(300)
async def test_three_workers_fire_each_slot_exactly_once(store: Store, tmp_path: Path) -> None:
    registry = default_registry()
    runs = RunService(store, registry)
    workflow = await WorkflowService(store, registry, runs).create(Caller.system(), WORKFLOW)
    start_ms = (int(time.time() + STARTUP_SECONDS) + 1) * 1000
    end_ms = start_ms + (SLOTS - 1) * 1000
    schedule = await ScheduleService(store, registry, runs).create(
        Caller.system(),
        {
            "workflow_id": workflow.id,
            "name": "every-second",
            "cron": "* * * * * *",
            "start_at": start_ms,
            "end_at": end_ms,
            "catchup": "all",
        },
    )
    assert schedule.next_fire_ms == start_ms
    procs = [start_worker(store, tmp_path, i) for i in range(WORKERS)]
    try:

        def fires(tx: object) -> list[tuple[int, str | None, str]]:
            c = t.schedule_fires.c
            query = sa.select(c.slot_ms, c.run_id, c.status).order_by(c.slot_ms)
            return [tuple(r) for r in tx.conn.execute(query)]  # type: ignore[attr-defined]

        deadline = end_ms / 1000 + 20
        while time.time() < deadline:
            done = await store.read(fires)
            if len(done) >= SLOTS and time.time() * 1000 > end_ms + 2000:
                break
            await asyncio.sleep(0.5)
        for proc in procs:
            assert proc.poll() is None, "a worker died"
    finally:
        await asyncio.gather(*(stop(p) for p in procs))

    done = await store.read(fires)
    assert [slot for slot, _, _ in done] == [start_ms + i * 1000 for i in range(SLOTS)]
    assert all(status == "fired" for _, _, status in done)

    def started_runs(tx: object) -> list[tuple[str, str, str]]:
        c = t.runs.c
        query = sa.select(c.id, c.idempotency_key, c.trigger)
        return [tuple(r) for r in tx.conn.execute(query)]  # type: ignore[attr-defined]

    created = await store.read(started_runs)
    assert len(created) == SLOTS
    assert {key for _, key, _ in created} == {
        f"schedule:{schedule.id}:{start_ms + i * 1000}" for i in range(SLOTS)
    }
    assert {run_id for run_id, _, _ in created} == {run_id for _, run_id, _ in done}
    assert {trigger for _, _, trigger in created} == {"schedule"}
    for index in range(WORKERS):
        log = (tmp_path / f"worker-{index}.err").read_text(errors="replace")
        assert "Traceback" not in log, log[-3000:]
