"""Storage benchmark: bytes per finished run, per table, and what each node costs the database.

Run it with ``make bench`` or ``python bench/storage.py [--quick] [--backend sqlite|postgres]``.
It runs N 10-node sequential ``util.noop`` runs (16 at a time, in-process: RunService +
Worker, as bench/engine.py's ``concurrent``) into a fresh database, then prints:

* PostgreSQL: ``pg_total_relation_size`` (heap, indexes, TOAST) of every table ÷ runs,
  twice: after ``VACUUM ANALYZE`` (what a live database holds, dead space of the updated
  rows included) and after ``VACUUM FULL`` (the data itself, what the target is about),
  against issue 19's target of 10 kB per finished run; statements per node (counted as
  bench/engine.py counts them) and the PostgreSQL server's CPU per node (user + system time,
  from /proc, of the backends serving this process's connections while the runs ran);
* SQLite: the database file's bytes per run after ``VACUUM``, and per table (``dbstat``).

What the migrated database takes empty is measured first and left out: the figures are what
N runs added, ÷ N (``--quick``: 200 runs, the default 1,000).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import sqlite3
import sys
import tempfile
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psycopg

sys.path.insert(0, str(Path(__file__).parent))
import engine as eb  # bench/engine.py: the workload and its counters

from flowplane.connectors.registry import default_registry
from flowplane.engine.worker import Worker
from flowplane.settings import Settings
from flowplane.store.base import Store

TARGET_BYTES = 10_000
NODES = eb.SEQUENTIAL_NODES


def _cpu_seconds(pid: int) -> float:
    """User + system CPU time of process ``pid`` so far (0 when it is gone)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return 0.0
    fields = stat[stat.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _my_ports() -> set[int]:
    """Local TCP ports of this process's sockets (its connections to PostgreSQL among them)."""
    inodes = set()
    for fd in os.listdir("/proc/self/fd"):
        with contextlib.suppress(OSError):
            target = os.readlink(f"/proc/self/fd/{fd}")
            if target.startswith("socket:["):
                inodes.add(target[8:-1])
    ports = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(OSError):
            for line in Path(table).read_text().splitlines()[1:]:
                parts = line.split()
                if parts[9] in inodes:
                    ports.add(int(parts[1].rsplit(":", 1)[1], 16))
    return ports


def backend_cpu(url: str) -> dict[int, float] | None:
    """CPU seconds so far of each PostgreSQL backend serving this process (its store's
    connections, found by client port: other processes' backends on a shared server do not
    count), or None when they cannot be read (a server on another machine)."""
    ports = sorted(_my_ports())
    with psycopg.connect(url, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT pid FROM pg_stat_activity WHERE client_port = ANY(%s) AND pid <> "
            "pg_backend_pid()",
            (ports,),
        ).fetchall()
    pids = [int(pid) for (pid,) in rows]
    if not pids or not Path(f"/proc/{pids[0]}/stat").exists():
        return None
    return {pid: _cpu_seconds(pid) for pid in pids}


async def run_workload(
    url: str, schema: str, runs: int, empty: Callable[[], None]
) -> tuple[eb.Result, float | None]:
    """N runs into a fresh store; the engine bench's result and the server CPU it took.
    ``empty`` measures the migrated, empty database first."""
    store = await Store.open(url, schema=schema)
    empty()
    counters = eb.count_transactions(store)
    eb.ENDS.attach()
    settings = Settings(
        worker_concurrency=eb.CONCURRENCY,
        lease_seconds=30,
        poll_interval_seconds=1.0,
        reaper_interval_seconds=5.0,
    )
    worker = Worker(store, settings=settings, registry=default_registry())
    task = asyncio.create_task(worker.run())
    try:
        bench = eb.Bench(store, counters, eb.ENDS)
        cpu_before = backend_cpu(url) if store.dialect == "postgresql" else None
        result = await bench.concurrent(runs)
        cpu_after = backend_cpu(url) if store.dialect == "postgresql" else None
    finally:
        await worker.stop()
        await task
        await store.close()
    if cpu_before is None or cpu_after is None:
        return result, None
    # Backends that were not there before started during the runs (from zero).
    server = sum(cpu - cpu_before.get(pid, 0.0) for pid, cpu in cpu_after.items())
    return result, server


def _pg_sizes(conn: psycopg.Connection[Any], schema: str) -> list[tuple[str, int, int, int]]:
    """``(table, total bytes, heap bytes, live rows)`` of every table of ``schema``."""
    rows = conn.execute(
        """
        SELECT c.relname, pg_total_relation_size(c.oid), pg_relation_size(c.oid),
               COALESCE(s.n_live_tup, 0)
        FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        LEFT JOIN pg_stat_user_tables s ON s.relid = c.oid
        WHERE n.nspname = %s AND c.relkind = 'r' ORDER BY 2 DESC
        """,
        (schema,),
    ).fetchall()
    return [(str(a), int(b), int(c), int(d)) for a, b, c, d in rows]


def _print_sizes(
    title: str, sizes: list[tuple[str, int, int, int]], empty: dict[str, int], runs: int
) -> float:
    """Print bytes per run of every table, less what it took empty (its fixed cost)."""
    sizes = [(name, size - empty.get(name, 0), heap, rows) for name, size, heap, rows in sizes]
    total = sum(size for _name, size, _heap, _rows in sizes)
    print(
        f"  {title}: {total / runs:8.0f} B/run  (target {TARGET_BYTES} B: "
        f"{total / runs / TARGET_BYTES:.2f} of it)"
    )
    for name, size, heap, rows in sizes:
        if size / runs >= 50:
            print(
                f"    {name:18} {size / runs:7.0f} B/run  heap {heap / runs:6.0f}  "
                f"indexes+toast {(size - heap) / runs:6.0f}  rows/run {rows / runs:5.1f}"
            )
    return total / runs


async def postgres(url: str, runs: int) -> None:
    schema = f"bench_storage_{uuid.uuid4().hex[:8]}"
    print(f"PostgreSQL: {runs} runs of {NODES} no-op nodes (schema {schema})")
    empty: dict[str, int] = {}

    def measure_empty() -> None:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(f'SET search_path TO "{schema}"')
            conn.execute("VACUUM FULL")
            empty.update((name, size) for name, size, _h, _r in _pg_sizes(conn, schema))

    try:
        result, server = await run_workload(url, schema, runs, measure_empty)
        nodes = result.nodes
        print(
            f"  {result.nodes_per_s:.0f} nodes/s, {result.statements / nodes:.2f} statements/node, "
            f"{result.writes / nodes:.2f} writes/node"
            + (f", server CPU {server / nodes * 1000:.3f} ms/node" if server is not None else "")
        )
        with psycopg.connect(eb.POSTGRES_URL, autocommit=True) as conn:
            conn.execute(f'SET search_path TO "{schema}"')
            # (The store's backends have exited: their table statistics are flushed.)
            ins, upd, hot = conn.execute(
                "SELECT SUM(n_tup_ins), SUM(n_tup_upd), SUM(n_tup_hot_upd) "
                "FROM pg_stat_user_tables WHERE schemaname = %s",
                (schema,),
            ).fetchone()
            print(
                f"  rows written per node: {int(ins) / nodes:.2f} inserted, "
                f"{int(upd) / nodes:.2f} updated ({int(hot) / nodes:.2f} of them HOT)"
            )
            conn.execute("VACUUM ANALYZE")
            _print_sizes("after VACUUM ANALYZE", _pg_sizes(conn, schema), empty, runs)
            conn.execute("VACUUM FULL")
            conn.execute("ANALYZE")
            _print_sizes("after VACUUM FULL   ", _pg_sizes(conn, schema), empty, runs)
    finally:
        with psycopg.connect(eb.POSTGRES_URL, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


async def sqlite(runs: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "storage.db"
        print(f"SQLite: {runs} runs of {NODES} no-op nodes")
        empty: dict[str, int] = {}

        def measure_empty() -> None:
            with contextlib.closing(sqlite3.connect(path)) as conn:
                empty.update(_sqlite_sizes(conn))

        result, _server = await run_workload(f"sqlite:///{path}", "flowplane", runs, measure_empty)
        print(
            f"  {result.nodes_per_s:.0f} nodes/s, {result.statements / result.nodes:.2f} "
            "statements/node"
        )
        conn = sqlite3.connect(path)
        try:
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            conn.execute("VACUUM")
            sizes = _sqlite_sizes(conn)
            grown = {name: size - empty.get(name, 0) for name, size in sizes.items()}
            total = grown.pop("(file)")
            print(f"  file after VACUUM: {total / runs:8.0f} B/run (less the empty database's)")
            for name, size in sorted(grown.items(), key=lambda item: -item[1]):
                if size / runs >= 50:
                    print(f"    {name:32} {size / runs:7.0f} B/run")
        finally:
            conn.close()


def _sqlite_sizes(conn: sqlite3.Connection) -> dict[str, int]:
    """Bytes of every table and index (``dbstat``), and of the whole file (``(file)``)."""
    page_size = conn.execute("PRAGMA page_size").fetchone()[0]
    sizes = {"(file)": conn.execute("PRAGMA page_count").fetchone()[0] * page_size}
    try:
        rows = conn.execute("SELECT name, SUM(pgsize) FROM dbstat GROUP BY name").fetchall()
    except sqlite3.OperationalError:  # (built without the dbstat table)
        rows = []
    sizes.update((str(name), int(size)) for name, size in rows)
    return sizes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="200 runs instead of 1,000")
    parser.add_argument("--runs", type=int, default=None)
    parser.add_argument("--backend", choices=["sqlite", "postgres", "both"], default="both")
    args = parser.parse_args()
    runs = args.runs or (200 if args.quick else 1000)
    if args.backend in ("postgres", "both"):
        asyncio.run(postgres(eb.POSTGRES_URL, runs))
    if args.backend in ("sqlite", "both"):
        asyncio.run(sqlite(runs))


if __name__ == "__main__":
    main()
