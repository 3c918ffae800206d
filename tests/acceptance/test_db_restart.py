"""Liveness under database faults, against a private PostgreSQL cluster the tests start,
restart (``pg_ctl -m fast`` and ``-m immediate``) and stop, never the shared server.

* two real ``flowplane worker`` processes ride out a restart with work in flight: no run
  lost, stuck or with a node output recorded twice, both workers still alive;
* a worker started while the database is down waits (saying so in its log), then works;
* ``flowplane serve`` keeps executing and streaming events across a restart;
* the scheduler fires each slot of a schedule once across a crash restart;
* the API answers a database outage with a 503 ``database_unavailable`` problem and
  ``Retry-After``, and never a 500 while the database comes back.

The heartbeat test (a worker whose event loop and writer queue are saturated by work keeps
its short leases) runs on the shared databases, SQLite and PostgreSQL.
"""

from __future__ import annotations

import asyncio
import collections
import json
import os
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import serve_support
import sqlalchemy as sa
from crash_support import (
    all_events,
    attempts_by_node,
    check_invariants,
    node_runs,
    run_rows,
    until,
)
from outage_support import LEASE_SECONDS, effect_counts, registry, spawn_fixture  # noqa: F401  (``spawn``)
from private_postgres import RESTART_MODES, PrivateCluster, postgres_bin

from flowplane.api.app import create_app
from flowplane.security import passwords
from flowplane.security.tokens import generate_api_key
from flowplane.services.caller import Caller
from flowplane.services.runs import RunService
from flowplane.services.schedules import ScheduleService
from flowplane.services.workflows import WorkflowService
from flowplane.settings import Settings
from flowplane.store import schema as t
from flowplane.store.base import Store
from flowplane.store.tx import TERMINAL_RUN, Tx

pytestmark = pytest.mark.slow
passwords.use_cheap_hashing()

NODES = ("a", "b", "c", "d")


@pytest.fixture(scope="module")
def cluster() -> Iterator[PrivateCluster]:
    """A private PostgreSQL cluster for this module (removed at the end)."""
    bin_dir = postgres_bin()
    if bin_dir is None:
        if os.environ.get("CI"):
            pytest.fail("PostgreSQL binaries (initdb, pg_ctl) are required in CI")
        pytest.skip("no PostgreSQL binaries in /usr/lib/postgresql/*/bin")
    private = PrivateCluster(bin_dir)
    try:
        private.start()
        yield private
    finally:
        private.remove()


@pytest.fixture
def private_db(cluster: PrivateCluster) -> Iterator[tuple[str, str]]:
    """``(url, schema)``: a fresh schema on the running private cluster."""
    if not cluster.running():
        cluster.start()
    yield cluster.url, f"t_{uuid.uuid4().hex[:12]}"
    if not cluster.running():  # (a failed test may leave it down)
        cluster.start()


def chain(sleep: float) -> dict[str, Any]:
    """``a -> b -> c -> d``: each step sleeps, then adds one to the previous value."""
    nodes: list[dict[str, Any]] = []
    for index, node_id in enumerate(NODES):
        previous = NODES[index - 1]
        value = f"{{{{ nodes.{previous}.output.value + 1 }}}}" if index else "{{ input.n }}"
        node: dict[str, Any] = {
            "id": node_id,
            "type": "outage.step",
            "params": {"value": value, "sleep": sleep},
        }
        if index:
            node["needs"] = [NODES[index - 1]]
        nodes.append(node)
    return {"name": "outage-chain", "inputs": {"n": {"type": "integer"}}, "nodes": nodes}


@pytest.fixture
async def store_on(request: pytest.FixtureRequest) -> AsyncIterator[Any]:
    """``await store_on(db)`` opens the test's own store on ``db`` (closed at the end)."""
    opened: list[Store] = []

    async def open_store(db: tuple[str, str]) -> Store:
        store = await Store.open(db[0], schema=db[1])
        opened.append(store)
        return store

    yield open_store
    for store in opened:
        await store.close()


async def settle(store: Store, run_ids: list[str], timeout: float) -> dict[str, dict[str, Any]]:
    """Wait (up to ``timeout``) for every run to be terminal; return the runs."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        rows = await run_rows(store, run_ids)
        if all(r["status"] in TERMINAL_RUN for r in rows.values()) or loop.time() > deadline:
            return rows
        await asyncio.sleep(0.2)


async def duplicated_outputs(store: Store) -> int:
    """Node runs with more than one ``finished`` attempt or ``NodeFinished`` event."""
    attempts = await attempts_by_node(store)
    finished = collections.Counter(
        key for key, rows in attempts.items() for a in rows if a["status"] == "finished"
    )
    events = collections.Counter(
        (e["run_id"], e["node_id"], e["payload"]["iteration"])
        for e in await all_events(store)
        if e["type"] == "NodeFinished"
    )
    return sum(1 for n in finished.values() if n > 1) + sum(1 for n in events.values() if n > 1)


# (restart mode, seconds down, lease seconds): down for longer than the store's own retries
# (about a second), so the workers' loops and completions must wait and retry; in the last
# case down for longer than the leases, which expire meanwhile (the node runs in flight run
# again after the outage: at least once, their outputs still recorded once).
OUTAGES = [(mode, 3.0, LEASE_SECONDS) for mode in RESTART_MODES] + [("immediate", 12.0, 3.0)]


@pytest.mark.parametrize(("mode", "down", "lease"), OUTAGES)
async def test_workers_ride_out_a_database_restart(
    mode: str,
    down: float,
    lease: float,
    cluster: PrivateCluster,
    private_db: tuple[str, str],
    spawn: Any,
    store_on: Any,
    tmp_path: Path,
) -> None:
    store = await store_on(private_db)
    runs = RunService(store, registry())
    doc = chain(sleep=0.25)
    expected: dict[str, int] = {}
    for n in range(60):
        expected[(await runs.start(Caller.system(), doc, {"n": n})).run.id] = n
    workers = [spawn("A", private_db, lease), spawn("B", private_db, lease)]

    async def some_finished() -> bool:
        assert all(w.alive() for w in workers), workers[0].log() + workers[1].log()
        done = [r for r in (await node_runs(store)).values() if r["status"] == "finished"]
        return len(done) >= 40

    await until(some_finished, 60, "the workers did not make progress", interval=0.1)
    in_flight = sum(r["status"] == "in-progress" for r in (await node_runs(store)).values())
    await asyncio.to_thread(cluster.restart, mode, down)
    for n in range(60, 80):  # work started after the outage runs as well
        expected[(await runs.start(Caller.system(), doc, {"n": n})).run.id] = n

    rows = await settle(store, list(expected), timeout=120)
    stuck = sum(r["status"] not in TERMINAL_RUN for r in rows.values())
    lost = sum(
        r["status"] != "finished" or r["output"] != {"d": {"value": expected[i] + 3}}
        for i, r in rows.items()
    )
    duplicated = await duplicated_outputs(store)
    again = sum(n - 1 for n in effect_counts(tmp_path).values() if n > 1)
    alive = [w.alive() for w in workers]
    logs = "".join(f"--- worker {w.name}\n{w.log()[-3000:]}\n" for w in workers)
    print(
        f"\ndb restart -m {mode}, down {down:g}s, lease {lease:g}s: runs={len(rows)} "
        f"in-flight-at-restart={in_flight} "
        f"lost={lost} duplicated={duplicated} stuck={stuck} "
        f"side-effects-repeated={again} workers-alive={alive}"
    )
    assert (lost, duplicated, stuck) == (0, 0, 0), logs
    assert alive == [True, True], logs
    # The outage was felt and ridden out (not merely missed between two transactions).
    full = [w.log() for w in workers]
    assert all("waiting" in log and "database answers again" in log for log in full), logs
    assert not any("stopped unexpectedly" in log for log in full), logs
    await check_invariants(store, list(expected))


async def test_a_worker_started_while_the_database_is_down_waits(
    cluster: PrivateCluster,
    private_db: tuple[str, str],
    spawn: Any,
    store_on: Any,
) -> None:
    await asyncio.to_thread(cluster.stop, "fast")
    worker = spawn("early", private_db)

    async def waiting() -> bool:
        assert worker.alive(), worker.log()
        return worker.log().count("waiting") >= 2

    await until(waiting, 30, "the worker did not say it waits for the database")
    await asyncio.sleep(1.0)
    assert worker.alive(), worker.log()
    await asyncio.to_thread(cluster.start)

    store = await store_on(private_db)
    runs = RunService(store, registry())
    started = {
        (await runs.start(Caller.system(), chain(sleep=0), {"n": n})).run.id: n for n in range(5)
    }
    rows = await settle(store, list(started), timeout=60)
    assert {i: r["status"] for i, r in rows.items()} == dict.fromkeys(started, "finished"), (
        worker.log()
    )
    assert worker.alive()
    assert "database answers again" in worker.log() or "started" in worker.log()


@pytest.fixture
async def api(private_db: tuple[str, str], tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    """The API in-process on the private cluster (no embedded worker), as an admin."""
    root = tmp_path / "root"
    root.mkdir()
    (root / "hello.yaml").write_text(
        "name: hello\nnodes:\n  - id: a\n    type: util.set\n    params: {value: 1}\n"
    )
    settings = Settings(
        database_url=private_db[0],
        database_schema=private_db[1],
        root=root,
        data_dir=root / "data",
        workers=0,
        admin_key=generate_api_key().key,
    )
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app),
            base_url="http://flowplane.test",
            headers={"Authorization": f"Bearer {settings.admin_key}"},
        ) as client:
            yield client


async def test_the_api_answers_an_outage_with_503_and_retry_after(
    cluster: PrivateCluster, api: httpx.AsyncClient
) -> None:
    async def start_run() -> httpx.Response:
        return await api.post("/v1/runs", json={"workflowPath": "hello.yaml"})

    # Writes before the outage: the store's writer threads keep their connections, which
    # the restart breaks (the 500s of the report came from such connections).
    for _ in range(4):
        assert (await start_run()).status_code == 200
    assert (await api.get("/v1/runs")).status_code == 200

    await asyncio.to_thread(cluster.stop, "immediate")
    # A listing not read before: the one above is kept in the run cache (nothing can
    # change it while the database is down), so it would still be answered.
    for response in (await api.get("/v1/runs?limit=7"), await start_run()):
        assert response.status_code == 503, response.text
        assert response.headers["content-type"].startswith("application/problem+json")
        assert response.json()["code"] == "database_unavailable"
        assert int(response.headers["retry-after"]) > 0

    await asyncio.to_thread(cluster.start)
    statuses = []
    for _ in range(20):
        statuses += [(await start_run()).status_code, (await api.get("/v1/runs")).status_code]
    assert 500 not in statuses, statuses
    assert set(statuses[-10:]) == {200}, statuses


async def test_the_scheduler_rides_out_a_restart(
    cluster: PrivateCluster,
    private_db: tuple[str, str],
    spawn: Any,
    store_on: Any,
) -> None:
    """A schedule firing every second keeps firing each slot once across a crash restart
    (the slots due while the database was down fire after it, ``catchup: all``)."""
    store = await store_on(private_db)
    reg = registry()
    runs = RunService(store, reg)
    workflow = await WorkflowService(store, reg, runs).create(
        Caller.system(),
        {"name": "tick", "nodes": [{"id": "log", "type": "util.log", "params": {"message": "t"}}]},
    )
    start_ms = (int(time.time()) + 6) * 1000  # after the workers have started
    slots = [start_ms + i * 1000 for i in range(14)]
    await ScheduleService(store, reg, runs).create(
        Caller.system(),
        {
            "workflow_id": workflow.id,
            "name": "every-second",
            "cron": "* * * * * *",
            "start_at": slots[0],
            "end_at": slots[-1],
            "catchup": "all",
        },
    )
    workers = [spawn("A", private_db), spawn("B", private_db)]

    def fires(tx: Tx) -> list[tuple[int, str | None, str]]:
        c = t.schedule_fires.c
        query = sa.select(c.slot_ms, c.run_id, c.status).order_by(c.slot_ms)
        return [(r.slot_ms, r.run_id, r.status) for r in tx.conn.execute(query)]

    async def some_fired() -> bool:
        return len(await store.read(fires)) >= 4

    await until(some_fired, 30, "the schedule did not fire", interval=0.2)
    await asyncio.to_thread(cluster.restart, "immediate", 3.0)

    async def all_fired() -> bool:
        return len(await store.read(fires)) >= len(slots) and time.time() * 1000 > slots[-1] + 2000

    await until(all_fired, 60, "slots were not fired after the restart", interval=0.5)
    done = await store.read(fires)
    logs = "".join(w.log()[-3000:] for w in workers)
    assert [slot for slot, _, _ in done] == slots, logs
    assert {status for _, _, status in done} == {"fired"}, logs
    assert len({run_id for _, run_id, _ in done}) == len(slots)
    assert all(w.alive() for w in workers), logs


async def test_the_listener_reconnects_after_a_restart(
    cluster: PrivateCluster, private_db: tuple[str, str], store_on: Any
) -> None:
    """Wake-ups from other processes (LISTEN/NOTIFY: claims, cancels, event streams) resume
    once the database is back, however long it was down."""
    listening, sending = await store_on(private_db), await store_on(private_db)
    got: asyncio.Queue[tuple[str, str]] = asyncio.Queue()
    listening.add_listener(lambda kind, payload: got.put_nowait((kind, payload)))

    async def received(kind: str, payload: str) -> None:
        async with asyncio.timeout(30):
            while True:
                await sending.transact(lambda tx: tx.notify(kind, payload))
                try:
                    async with asyncio.timeout(0.3):
                        while (await got.get()) != (kind, payload):
                            pass
                        return
                except TimeoutError:
                    continue

    await received("cancel", "before")
    await asyncio.to_thread(cluster.restart, "immediate", 4.0)
    await received("cancel", "after")
    await received("event", "after")


async def test_serve_streams_and_executes_across_a_restart(
    cluster: PrivateCluster, private_db: tuple[str, str], tmp_path: Path
) -> None:
    """``flowplane serve`` (API, embedded worker, event feed) on the private cluster: an
    open SSE stream of the namespace's events carries on across a crash restart, and a run
    started after it executes and reaches the stream."""
    root = tmp_path / "root"
    root.mkdir()
    (root / "hello.yaml").write_text(
        "name: hello\nnodes:\n  - id: a\n    type: util.log\n    params: {message: hi}\n"
    )
    schema = private_db[1]
    server = serve_support.spawn(
        tmp_path, private_db[0], "--database-schema", schema, "--workers", "1", root=root
    )
    try:
        await asyncio.to_thread(serve_support.wait_ready, server)
        events: list[dict[str, Any]] = []
        path = "/v1/events?namespace=default&types=RunStarted,RunFinished"
        stream = asyncio.create_task(_collect_sse(server, path, events))

        async def start() -> str:
            async with httpx.AsyncClient(base_url=server.url, headers=server.headers) as c:
                for _ in range(50):
                    r = await c.post("/v1/runs", json={"workflowPath": "hello.yaml"})
                    if r.status_code == 200:
                        return str(r.json()["runId"])
                    assert r.status_code == 503, r.text  # (never a 500)
                    await asyncio.sleep(0.2)
            raise AssertionError("no run could be started")

        async def finished(run_id: str) -> bool:
            assert not stream.done(), stream
            return any(e["runId"] == run_id and e["type"] == "RunFinished" for e in events)

        await asyncio.sleep(0.5)  # (the stream is open)
        before = await start()
        await until(lambda: finished(before), 30, f"no RunFinished:\n{server.log.read_text()}")
        await asyncio.to_thread(cluster.restart, "immediate", 3.0)
        after = await start()
        await until(lambda: finished(after), 60, f"no RunFinished:\n{server.log.read_text()}")
        assert server.proc.poll() is None
        seqs = [e["seq"] for e in events]
        assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)
        assert [(e["runId"], e["type"]) for e in events] == [
            (before, "RunStarted"),
            (before, "RunFinished"),
            (after, "RunStarted"),
            (after, "RunFinished"),
        ]
        stream.cancel()
    finally:
        server.stop()


async def _collect_sse(server: serve_support.Serve, path: str, into: list[dict[str, Any]]) -> None:
    """Append each event of the SSE stream at ``path`` to ``into`` until cancelled."""
    async with (
        httpx.AsyncClient(base_url=server.url, timeout=None) as client,
        client.stream("GET", path, headers=server.headers) as response,
    ):
        assert response.status_code == 200
        async for line in response.aiter_lines():
            if line.startswith("data: "):
                into.append(json.loads(line[len("data: ") :]))


async def test_serve_started_while_the_database_is_down_waits(
    cluster: PrivateCluster, private_db: tuple[str, str], tmp_path: Path
) -> None:
    """``flowplane serve`` started during an outage waits (saying so), then serves."""
    await asyncio.to_thread(cluster.stop, "fast")
    server = serve_support.spawn(
        tmp_path, private_db[0], "--database-schema", private_db[1], "--workers", "1"
    )
    try:

        async def waiting() -> bool:
            assert server.proc.poll() is None, server.log.read_text()
            return server.log.read_text().count("waiting") >= 2

        await until(waiting, 30, "serve did not say it waits for the database")
        await asyncio.to_thread(cluster.start)
        await asyncio.to_thread(serve_support.wait_ready, server)
        async with httpx.AsyncClient(base_url=server.url, headers=server.headers) as c:
            assert (await c.get("/readyz")).status_code == 200
    finally:
        server.stop()
