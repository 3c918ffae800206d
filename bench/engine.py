"""Engine benchmark: what one node costs on SQLite and on PostgreSQL, against the commit floor.

Run it with ``make bench`` or ``python bench/engine.py [--quick] [--backend sqlite|postgres]``.
It measures the engine in-process (RunService + Worker on one event loop, no HTTP):

* ``sequential``: a 10-node sequential no-op workflow, one run at a time; runs/s and the
  per-node overhead (run latency / 10, p50 and p99);
* ``concurrent``: 1,000 runs of that workflow, 16 at a time (worker concurrency 16);
* ``fan-out``: one run whose node fans out over 1,000 ``foreach`` items, then a join;
* ``singles``: 1,000 independent single-node runs, 16 in flight: the rate the fan-out's
  items are compared with (``fan-out items/s ÷ singles runs/s``, issue 19's target 4);
* ``floor``: single-row INSERT + COMMIT transactions in a loop through the store's own
  SQLAlchemy engine (same pool, pragmas, ``BEGIN IMMEDIATE``), the fastest any durable step
  can be on this database; ``via store`` adds the thread hop of ``Store.transact``.

Commits are counted by wrapping ``Store.run_sync`` of the store instance (every transaction
goes through it), so ``writes/node`` is what the engine pays per node. Run ends are detected
by wrapping ``transitions.complete`` (no polling reads that would distort the counts).

PostgreSQL: ``FLOWPLANE_TEST_POSTGRES_URL`` or ``postgresql://postgres@127.0.0.1:5432/test``,
in a throw-away schema. Numbers are wall-clock on a shared machine: see docs/performance.md.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from flowplane.connectors.registry import default_registry
from flowplane.engine import transitions
from flowplane.engine.worker import Worker
from flowplane.services.caller import Caller
from flowplane.services.runs import RunService
from flowplane.settings import Settings
from flowplane.store.base import Store
from flowplane.store.prepared import Prepared
from flowplane.store.tx import TERMINAL_RUN

POSTGRES_URL = os.environ.get(
    "FLOWPLANE_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"
)
SEQUENTIAL_NODES = 10
CONCURRENCY = 16
FAN_OUT_WIDTH = 1000


# --- instrumentation --------------------------------------------------------------------


class Counters:
    """Transactions that went through ``Store.run_sync``, by kind, and SQL statements."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.writes = 0
        self.reads = 0
        self.statements = 0

    def statement(self, *_args: Any) -> None:
        with self._lock:
            self.statements += 1

    def add(self, readonly: bool) -> None:
        with self._lock:
            if readonly:
                self.reads += 1
            else:
                self.writes += 1

    def snapshot(self) -> tuple[int, int, int]:
        with self._lock:
            return self.writes, self.reads, self.statements


def count_transactions(store: Store) -> Counters:
    """Wrap the store instance's ``run_sync`` to count committed transactions."""
    counters = Counters()
    original = store.run_sync

    @functools.wraps(original)
    def run_sync(fn: Callable[[Any], Any], readonly: bool = False, **kwargs: Any) -> Any:
        result = original(fn, readonly, **kwargs)
        counters.add(readonly)
        return result

    store.run_sync = run_sync  # type: ignore[method-assign]
    sa.event.listen(store.engine, "before_cursor_execute", counters.statement)
    return counters


class RunEnds:
    """Resolves a future when a completion transaction ends its run (no polling).

    Installed once per process: it wraps ``transitions.complete``, which the worker calls
    through the module.
    """

    def __init__(self) -> None:
        self._waiting: dict[str, asyncio.Future[str]] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        original = transitions.complete

        @functools.wraps(original)
        def complete(tx: Any, claimed: Any, outcome: Any, **kwargs: Any) -> Any:
            result = original(tx, claimed, outcome, **kwargs)
            if result.run_status in TERMINAL_RUN and self._loop is not None:
                # Runs on the loop only after the commit (the store returns after it).
                self._loop.call_soon_threadsafe(self._resolve, claimed.run_id, result.run_status)
            return result

        transitions.complete = complete

    def attach(self) -> None:
        """Bind to the running loop (one per backend)."""
        self._loop = asyncio.get_running_loop()
        self._waiting = {}

    def _future(self, run_id: str) -> asyncio.Future[str]:
        assert self._loop is not None
        return self._waiting.setdefault(run_id, self._loop.create_future())

    def _resolve(self, run_id: str, status: str) -> None:
        future = self._future(run_id)
        if not future.done():
            future.set_result(status)

    async def wait(self, run_id: str) -> str:
        """Wait for the end of ``run_id``; return its status."""
        status = await self._future(run_id)
        del self._waiting[run_id]
        return status


ENDS = RunEnds()


# --- workloads --------------------------------------------------------------------------


def sequential_doc(nodes: int = SEQUENTIAL_NODES) -> dict[str, Any]:
    return {
        "name": "bench-sequential",
        "nodes": [{"id": f"n{i}", "type": "util.noop"} for i in range(nodes)],
    }


def fan_out_doc(width: int) -> dict[str, Any]:
    return {
        "name": "bench-fan-out",
        "nodes": [
            {"id": "start", "type": "util.noop"},
            {"id": "fan", "type": "util.noop", "needs": ["start"], "foreach": list(range(width))},
            {"id": "join", "type": "util.noop", "needs": ["fan"]},
        ],
    }


def single_doc() -> dict[str, Any]:
    return {"name": "bench-single", "nodes": [{"id": "only", "type": "util.noop"}]}


@dataclass
class Result:
    """One measured workload."""

    name: str
    seconds: float
    runs: int
    nodes: int
    writes: int
    reads: int
    statements: int
    cpu_seconds: float
    per_node_ms: list[float] = field(default_factory=list)
    items: int = 0  # foreach items (fan-out)

    @property
    def nodes_per_s(self) -> float:
        return self.nodes / self.seconds

    @property
    def runs_per_s(self) -> float:
        return self.runs / self.seconds


def percentile(values: list[float], p: float) -> float:
    """The ``p``-th percentile (nearest rank)."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)]


class Bench:
    """A store, a worker and a run service on one backend."""

    def __init__(self, store: Store, counters: Counters, ends: RunEnds) -> None:
        self.store = store
        self.counters = counters
        self.ends = ends
        self.runs = RunService(store, default_registry())

    async def run_one(self, doc: dict[str, Any]) -> tuple[float, float]:
        """Start a run and wait for its end; return (dispatch seconds, total seconds)."""
        t0 = time.perf_counter()
        started = await self.runs.start(Caller.system(), doc)
        t1 = time.perf_counter()
        status = await self.ends.wait(started.run.id)
        t2 = time.perf_counter()
        assert status == "finished", status
        return t1 - t0, t2 - t0

    async def measure(self, name: str, runs: int, nodes: int, body: Any) -> Result:
        w0, r0, s0 = self.counters.snapshot()
        t0, c0 = time.perf_counter(), time.process_time()
        per_node = await body
        seconds, cpu = time.perf_counter() - t0, time.process_time() - c0
        w1, r1, s1 = self.counters.snapshot()
        return Result(name, seconds, runs, nodes, w1 - w0, r1 - r0, s1 - s0, cpu, per_node or [])

    async def sequential(self, count: int) -> Result:
        doc = sequential_doc()
        await self.run_one(doc)  # warm caches and connections

        async def body() -> list[float]:
            per_node = []
            for _ in range(count):
                _dispatch, total = await self.run_one(doc)
                per_node.append(total / SEQUENTIAL_NODES * 1000)
            return per_node

        return await self.measure("sequential 10 nodes", count, count * SEQUENTIAL_NODES, body())

    async def concurrent(self, count: int) -> Result:
        doc = sequential_doc()
        queue = list(range(count))

        async def client(latencies: list[float]) -> None:
            while queue:
                queue.pop()
                _dispatch, total = await self.run_one(doc)
                latencies.append(total / SEQUENTIAL_NODES * 1000)

        async def body() -> list[float]:
            latencies: list[float] = []
            await asyncio.gather(*(client(latencies) for _ in range(CONCURRENCY)))
            return latencies

        return await self.measure(
            f"{count} runs x {CONCURRENCY} concurrent",
            count,
            count * SEQUENTIAL_NODES,
            body(),
        )

    async def singles(self, count: int) -> Result:
        """``count`` independent single-node runs, CONCURRENCY in flight."""
        doc = single_doc()
        await self.run_one(doc)  # warm the document cache
        queue = list(range(count))

        async def client() -> None:
            while queue:
                queue.pop()
                await self.run_one(doc)

        async def body() -> list[float]:
            await asyncio.gather(*(client() for _ in range(CONCURRENCY)))
            return []

        return await self.measure(f"{count} single-node runs x {CONCURRENCY}", count, count, body())

    async def fan_out(self, width: int) -> Result:
        doc = fan_out_doc(width)

        async def body() -> list[float]:
            await self.run_one(doc)
            return []

        # start + the fan node-level row + each item + join.
        result = await self.measure(f"fan-out {width} wide", 1, width + 3, body())
        result.items = width
        return result


# --- the floor --------------------------------------------------------------------------

floor_metadata = sa.MetaData()
floor_table = sa.Table(
    "bench_floor",
    floor_metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("payload", sa.String(64), nullable=False),
)


def commit_floor(store: Store, seconds: float, threads: int = 1) -> tuple[float, float]:
    """Single-row INSERT + COMMIT transactions, each thread on one connection of the store's
    engine (same driver, pragmas and server settings), the fewest round trips the driver
    allows: on PostgreSQL one (an autocommit INSERT), on SQLite ``BEGIN IMMEDIATE``,
    INSERT, COMMIT. Return (commits/s, CPU ms each)."""
    floor_metadata.create_all(store.engine)
    stop = time.perf_counter() + seconds
    counts = [0] * threads
    c0 = time.process_time()
    sql = "INSERT INTO bench_floor (payload) VALUES ('" + "x" * 32 + "')"

    def loop(slot: int) -> None:
        with store.engine.connect() as conn:
            dbapi: Any = conn.connection.dbapi_connection
            if store.dialect == "postgresql":
                dbapi.autocommit = True
                cursor = dbapi.cursor()
                while time.perf_counter() < stop:
                    cursor.execute(sql, prepare=True)
                    counts[slot] += 1
                dbapi.autocommit = False
                return
            while time.perf_counter() < stop:
                with conn.begin():
                    conn.exec_driver_sql(sql)
                counts[slot] += 1

    t0 = time.perf_counter()
    workers = [threading.Thread(target=loop, args=(i,)) for i in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    total = sum(counts)
    return total / (time.perf_counter() - t0), 1000 * (time.process_time() - c0) / total


async def commit_floor_via_store(store: Store, seconds: float) -> float:
    """The same commits through ``Store.transact`` as the engine writes (a prepared
    statement, queued: on PostgreSQL it travels with the ``COMMIT``, one round trip);
    adds the store's thread hop (PostgreSQL) and transaction set-up."""
    insert = Prepared(floor_table.insert())
    params = {"payload": "x" * 32}
    stop = time.perf_counter() + seconds
    count = 0
    t0 = time.perf_counter()
    while time.perf_counter() < stop:
        await store.transact(lambda tx: insert.defer(tx.conn, params))
        count += 1
    return count / (time.perf_counter() - t0)


# --- driver -----------------------------------------------------------------------------


@dataclass
class BackendReport:
    backend: str
    floor: float
    floor_cpu_ms: float
    floor_store: float
    floor_parallel: float
    parallel_threads: int
    results: list[Result]
    dbos: dict[str, Any] | None = None
    openworkflow: dict[str, Any] | None = None


async def bench_backend(backend: str, quick: bool) -> BackendReport:
    if backend == "sqlite":
        folder = tempfile.mkdtemp(prefix="flowplane-bench-")
        url, schema = f"sqlite:///{Path(folder) / 'bench.db'}", "flowplane"
    else:
        url, schema = POSTGRES_URL, f"bench_{uuid.uuid4().hex[:10]}"
    store = await Store.open(url, schema=schema)
    try:
        floor_seconds = 1.0 if quick else 3.0
        threads = store._write_threads()
        floor, floor_cpu_ms = commit_floor(store, floor_seconds)
        floor_parallel = commit_floor(store, floor_seconds, threads)[0] if threads > 1 else floor
        floor_store = await commit_floor_via_store(store, floor_seconds)

        counters = count_transactions(store)
        ENDS.attach()
        dbos: dict[str, Any] | None = None
        ow: dict[str, Any] | None = None  # openworkflow
        settings = Settings(
            worker_concurrency=CONCURRENCY,
            lease_seconds=30,
            poll_interval_seconds=1.0,
            reaper_interval_seconds=5.0,
        )
        worker = Worker(store, settings=settings, registry=default_registry())
        task = asyncio.create_task(worker.run())
        bench = Bench(store, counters, ENDS)
        try:
            results = [await bench.sequential(30 if quick else 100)]
            if backend == "postgres":
                dbos = await asyncio.to_thread(dbos_baseline, 30 if quick else 100)
                ow = await asyncio.to_thread(openworkflow_baseline, 30 if quick else 100)
            results += [
                await bench.concurrent(100 if quick else 1000),
                await bench.fan_out(200 if quick else FAN_OUT_WIDTH),
                await bench.singles(200 if quick else FAN_OUT_WIDTH),
            ]
        finally:
            await worker.stop()
            await task
        return BackendReport(
            backend, floor, floor_cpu_ms, floor_store, floor_parallel, threads, results, dbos, ow
        )
    finally:
        await store.close()
        if backend == "postgres":
            import psycopg

            with psycopg.connect(POSTGRES_URL, autocommit=True) as conn:
                conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        else:
            shutil.rmtree(folder, ignore_errors=True)


def dbos_baseline(runs: int) -> dict[str, Any] | None:
    """DBOS's ``sequential`` on the same server (bench/dbos_baseline.py, in its own
    virtualenv: ``FLOWPLANE_BENCH_DBOS_PYTHON`` or ``.venv-dbos``); ``None`` without it."""
    python = os.environ.get("FLOWPLANE_BENCH_DBOS_PYTHON") or str(
        Path(__file__).resolve().parent.parent / ".venv-dbos" / "bin" / "python"
    )
    if not Path(python).exists():
        return None
    script = Path(__file__).resolve().parent / "dbos_baseline.py"
    done = subprocess.run(
        [python, str(script), POSTGRES_URL, str(runs)],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    lines = done.stdout.strip().splitlines()
    if done.returncode != 0 or not lines:
        print(f"DBOS baseline failed: {done.stderr.strip()[-500:]}", file=sys.stderr)
        return None
    result: dict[str, Any] = json.loads(lines[-1])
    return result


def openworkflow_baseline(runs: int) -> dict[str, Any] | None:
    """openworkflow's ``sequential`` on the same server (bench/openworkflow/baseline.mjs, run
    by ``FLOWPLANE_BENCH_NODE`` or ``node`` with the packages ``npm ci`` installed there);
    ``None`` without them."""
    folder = Path(__file__).resolve().parent / "openworkflow"
    node = shutil.which(os.environ.get("FLOWPLANE_BENCH_NODE") or "node")
    if node is None or not (folder / "node_modules" / "openworkflow").is_dir():
        return None
    done = subprocess.run(
        [node, str(folder / "baseline.mjs"), POSTGRES_URL, str(runs)],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    lines = done.stdout.strip().splitlines()
    if done.returncode != 0 or not lines:
        print(f"openworkflow baseline failed: {done.stderr.strip()[-500:]}", file=sys.stderr)
        return None
    result: dict[str, Any] = json.loads(lines[-1])
    return result


def print_report(report: BackendReport) -> None:
    floor = report.floor
    print(f"\n== {report.backend} ==")
    print(
        f"floor: {floor:,.0f} commits/s raw (1 thread, {report.floor_cpu_ms:.2f} CPU ms each), "
        f"{report.floor_store:,.0f}/s via Store.transact, "
        f"{report.floor_parallel:,.0f}/s raw with {report.parallel_threads} threads"
    )
    header = (
        f"{'workload':<28}{'runs/s':>9}{'nodes/s':>10}{'ms/node p50':>13}{'p99':>8}"
        f"{'cpu ms/node':>13}{'writes/node':>13}{'reads/node':>12}{'stmts/node':>12}"
        f"{'nodes/s÷floor':>15}"
    )
    print(header)
    print("-" * len(header))
    for r in report.results:
        p50 = f"{percentile(r.per_node_ms, 50):.2f}" if r.per_node_ms else "-"
        p99 = f"{percentile(r.per_node_ms, 99):.2f}" if r.per_node_ms else "-"
        print(
            f"{r.name:<28}{r.runs_per_s:>9.1f}{r.nodes_per_s:>10.0f}{p50:>13}{p99:>8}"
            f"{1000 * r.cpu_seconds / r.nodes:>13.2f}"
            f"{r.writes / r.nodes:>13.2f}{r.reads / r.nodes:>12.2f}"
            f"{r.statements / r.nodes:>12.1f}"
            f"{r.nodes_per_s / floor:>15.3f}"
        )
    fan = next((r for r in report.results if r.items), None)
    singles = next((r for r in report.results if r.name.startswith(f"{r.runs} single")), None)
    if fan is not None and singles is not None:
        items_per_s = fan.items / fan.seconds
        print(
            f"fan-out: {items_per_s:,.0f} items/s; {singles.runs_per_s:,.0f} single-node runs/s "
            f"({CONCURRENCY} in flight); items/s ÷ single runs/s = "
            f"{items_per_s / singles.runs_per_s:.2f} (issue 19 target on PostgreSQL: ≥ 0.7)"
        )
    seq = report.results[0]
    node_cpu_ms = 1000 * seq.cpu_seconds / seq.nodes
    print(
        f"sequential: mean {1000 * seq.seconds / seq.nodes:.2f} ms/node = "
        f"{floor * seq.seconds / seq.nodes:.1f} floor commits' worth of time, "
        f"{node_cpu_ms / report.floor_cpu_ms:.1f} of CPU"
    )
    if report.dbos is not None:
        ours = percentile(seq.per_node_ms, 50)
        peer = report.dbos
        print(
            f"DBOS {peer['version']} (same server, same run, 10 no-op steps, "
            f"{peer['runs']} runs): p50 {peer['p50_ms']:.2f} ms/step, p99 "
            f"{peer['p99_ms']:.2f}, {peer['cpu_ms']:.2f} CPU ms/step; "
            f"flowplane p50 ÷ DBOS p50 = {ours / peer['p50_ms']:.2f}"
        )
    if report.openworkflow is not None:
        ours, peer = percentile(seq.per_node_ms, 50), report.openworkflow
        print(
            f"openworkflow {peer['version']} (same server, same run, 10 no-op steps, "
            f"{peer['runs']} runs): p50 {peer['p50_ms']:.2f} ms/step, p99 "
            f"{peer['p99_ms']:.2f}, {peer['cpu_ms']:.2f} CPU ms/step (Node), "
            f"{peer['statements']:.1f} stmts/step, {peer['commits']:.1f} commits/step; "
            f"flowplane p50 ÷ openworkflow p50 = {ours / peer['p50_ms']:.2f}"
        )
    elif report.backend == "postgres":
        print(
            "openworkflow baseline missing (`make bench` installs it: npm ci in bench/openworkflow)"
        )


def python_speed() -> float:
    """Seconds for a fixed pure-Python loop (10 M additions): how fast this machine runs
    Python right now. Shared VMs vary (CPU steal); compare runs through it."""
    t0 = time.perf_counter()
    total = 0
    for i in range(10_000_000):
        total += i
    return time.perf_counter() - t0


def cpu_model() -> str:
    """The CPU's model name (Linux), for the record."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown CPU"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--quick", action="store_true", help="smaller counts (a smoke run)")
    parser.add_argument(
        "--backend", choices=["sqlite", "postgres", "all"], default="all", help="which database"
    )
    args = parser.parse_args()
    backends = ["sqlite", "postgres"] if args.backend == "all" else [args.backend]
    load = os.getloadavg()
    print(
        f"flowplane engine bench: {cpu_model()} x {os.cpu_count()}, load {load[0]:.2f} "
        f"{load[1]:.2f} {load[2]:.2f}, Python {sys.version.split()[0]}, "
        f"SQLAlchemy {sa.__version__}"
    )
    for backend in backends:
        # The previous backend's writes still being flushed to disk would slow this one's
        # commits (SQLite's first: PostgreSQL's fsyncs measured ~25 % slower after it).
        os.sync()
        time.sleep(1.0)
        speed = python_speed()
        report = asyncio.run(bench_backend(backend, args.quick))
        print_report(report)
        print(f"reference Python loop: {speed:.2f} s before, {python_speed():.2f} s after")


if __name__ == "__main__":
    main()
