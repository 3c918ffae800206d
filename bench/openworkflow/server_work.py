"""Server work per step on a private PostgreSQL: Flowplane, openworkflow and DBOS, counted.

    python bench/openworkflow/server_work.py --url postgresql://postgres@127.0.0.1:55433/test \\
        --pgdata /path/to/data [--runs 20 120] [--rounds 2]

The server must serve nothing else while this runs: WAL bytes, commits, rows written and
the server's CPU time are read server-wide (``pg_current_wal_lsn()``, ``pg_stat_database``,
and ``/proc`` for the postmaster and its children: a backend's CPU lands in the
postmaster's ``cutime``/``cstime`` when it exits). Each engine's ``sequential`` workload
(10 no-op steps, one run at a time: bench/engine.py's, bench/openworkflow/baseline.mjs,
bench/dbos_baseline.py) is run as a subprocess twice, with the smaller and the larger run
count; the difference of the two deltas divided by the difference in steps is the cost per
step, with set-up, warm-up, schema creation and teardown cancelled out. Not part of
``make bench`` (it needs a server of its own); it is how docs/performance.md's "openworkflow
as a baseline" counts were taken.

``--flowplane-sequential URL N`` is the Flowplane side, run in its own process (the
``sequential`` workload of bench/engine.py alone).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent.parent
ROOT = BENCH.parent
TICK = os.sysconf("SC_CLK_TCK")


@dataclass
class Snapshot:
    wal: int
    commits: int
    rows: int
    cpu_s: float


def server_cpu_seconds(pgdata: Path) -> float:
    """CPU seconds of the postmaster, its reaped children and its live children."""
    postmaster = int((pgdata / "postmaster.pid").read_text().split()[0])
    total = 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        pid, ppid = int(stat.parent.name), int(fields[1])
        utime, stime, cutime, cstime = (int(f) for f in fields[11:15])
        if pid == postmaster:
            total += utime + stime + cutime + cstime
        elif ppid == postmaster:
            total += utime + stime
    return total / TICK


def snapshot(url: str, pgdata: Path) -> Snapshot:
    import psycopg

    time.sleep(0.5)  # let the postmaster reap the engine's backends
    with psycopg.connect(url, autocommit=True) as conn:
        lsn, commits, rows = conn.execute(
            "SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), '0/0')::bigint,"
            " sum(xact_commit)::bigint,"
            " sum(tup_inserted + tup_updated + tup_deleted)::bigint FROM pg_stat_database"
        ).fetchone()  # type: ignore[misc]
    return Snapshot(int(lsn), int(commits), int(rows), server_cpu_seconds(pgdata))


def commands(url: str, runs: int) -> dict[str, list[str]]:
    """The engines that are installed, each as the command running ``runs`` runs."""
    found: dict[str, list[str]] = {
        "flowplane": [sys.executable, __file__, "--flowplane-sequential", url, str(runs)]
    }
    node = shutil.which(os.environ.get("FLOWPLANE_BENCH_NODE") or "node")
    if node and (BENCH / "openworkflow" / "node_modules" / "openworkflow").is_dir():
        found["openworkflow"] = [node, str(BENCH / "openworkflow" / "baseline.mjs"), url, str(runs)]
    dbos = os.environ.get("FLOWPLANE_BENCH_DBOS_PYTHON") or str(ROOT / ".venv-dbos/bin/python")
    if Path(dbos).exists():
        found["dbos"] = [dbos, str(BENCH / "dbos_baseline.py"), url, str(runs)]
    return found


def measure(url: str, pgdata: Path, name: str, runs: int) -> tuple[Snapshot, dict[str, Any]]:
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    before = snapshot(url, pgdata)
    done = subprocess.run(
        commands(url, runs)[name], capture_output=True, text=True, env=env, check=True
    )
    after = snapshot(url, pgdata)
    delta = Snapshot(
        after.wal - before.wal,
        after.commits - before.commits,
        after.rows - before.rows,
        after.cpu_s - before.cpu_s,
    )
    return delta, json.loads(done.stdout.strip().splitlines()[-1])


async def flowplane_sequential(url: str, runs: int) -> None:
    sys.path.insert(0, str(BENCH))
    import resource

    import engine  # bench/engine.py

    from flowplane.connectors.registry import default_registry
    from flowplane.engine.worker import Worker
    from flowplane.settings import Settings
    from flowplane.store.base import Store

    schema = f"bench_{uuid.uuid4().hex[:10]}"
    store = await Store.open(url, schema=schema)
    try:
        counters = engine.count_transactions(store)
        engine.ENDS.attach()
        settings = Settings(
            worker_concurrency=engine.CONCURRENCY,
            lease_seconds=30,
            poll_interval_seconds=1.0,
            reaper_interval_seconds=5.0,
        )
        worker = Worker(store, settings=settings, registry=default_registry())
        task = asyncio.create_task(worker.run())
        try:
            usage0 = resource.getrusage(resource.RUSAGE_SELF)
            result = await engine.Bench(store, counters, engine.ENDS).sequential(runs)
            usage = resource.getrusage(resource.RUSAGE_SELF)
        finally:
            await worker.stop()
            await task
    finally:
        await store.close()
        import psycopg

        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
    steps = result.nodes
    print(
        json.dumps(
            {
                "runs": runs,
                "p50_ms": engine.percentile(result.per_node_ms, 50),
                "cpu_ms": 1000 * result.cpu_seconds / steps,
                "statements": result.statements / steps,
                "commits": result.writes / steps,
                # all threads, the warm-up run included (1 run in runs + 1)
                "switches": (usage.ru_nvcsw - usage0.ru_nvcsw + usage.ru_nivcsw - usage0.ru_nivcsw)
                / (steps + 10),
            }
        )
    )


def main() -> None:
    if len(sys.argv) == 4 and sys.argv[1] == "--flowplane-sequential":
        asyncio.run(flowplane_sequential(sys.argv[2], int(sys.argv[3])))
        return
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--url", required=True, help="a private server's database URL")
    parser.add_argument("--pgdata", required=True, type=Path, help="its data directory")
    parser.add_argument("--runs", nargs=2, type=int, default=[20, 120], metavar=("FEW", "MANY"))
    parser.add_argument("--rounds", type=int, default=2, help="interleaved rounds")
    args = parser.parse_args()
    few, many = args.runs
    steps = (many - few) * 10
    names = list(commands(args.url, 1))
    print(
        f"{'engine':<14}{'WAL B/step':>11}{'commits/step':>14}{'rows/step':>11}"
        f"{'server CPU ms/step':>20}{'client stmts/step':>19}{'client CPU ms/step':>20}"
        f"{'p50 ms/step':>13}{'ctx switches/step':>19}"
    )
    for _ in range(args.rounds):
        for name in names:
            small, _ = measure(args.url, args.pgdata, name, few)
            large, out = measure(args.url, args.pgdata, name, many)
            stmts, switches = out.get("statements"), out.get("switches")
            # DBOS's throw-away database is dropped, and its pg_stat_database row with it.
            commits = "-" if name == "dbos" else f"{(large.commits - small.commits) / steps:.2f}"
            rows = "-" if name == "dbos" else f"{(large.rows - small.rows) / steps:.2f}"
            print(
                f"{name:<14}{(large.wal - small.wal) / steps:>11.0f}{commits:>14}{rows:>11}"
                f"{1000 * (large.cpu_s - small.cpu_s) / steps:>20.3f}"
                f"{'-' if stmts is None else f'{stmts:.1f}':>19}"
                f"{out['cpu_ms']:>20.3f}{out['p50_ms']:>13.2f}"
                f"{'-' if switches is None else f'{switches:.1f}':>19}",
                flush=True,
            )


if __name__ == "__main__":
    main()
