"""The fan-out against independent runs, with what their PostgreSQL backends wait on.

``python bench/foreach_waits.py [--backend postgres|sqlite] [--width 1000] [--rounds 2]``
runs ``bench/engine.py``'s ``fan-out`` and ``singles`` workloads (alternately, ``rounds``
times) and, on PostgreSQL, samples ``pg_stat_activity`` every 5 ms for the bench process's
own backends (matched by client port: other sessions on the server are left out): how many
are in a transaction, per sample, by wait event, with the table of the row a lock wait is
for when the server says (``Lock/tuple(runs)``: queued on a run row). docs/performance.md,
"Foreach on PostgreSQL (issue 19)", was measured with it.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import os
import tempfile
import threading
import time
import uuid
from pathlib import Path

import engine as bench
import psycopg

from flowplane.connectors.registry import default_registry
from flowplane.engine.worker import Worker
from flowplane.settings import Settings
from flowplane.store.base import Store

_WAITS = """
SELECT a.wait_event_type, a.wait_event,
       (SELECT string_agg(DISTINCT coalesce(c.relname, l.locktype), ',')
          FROM pg_locks l LEFT JOIN pg_class c ON c.oid = l.relation
         WHERE l.pid = a.pid AND NOT l.granted)
  FROM pg_stat_activity a
 WHERE a.client_port = ANY(%s) AND a.state <> 'idle' AND a.pid <> pg_backend_pid()
"""


def own_ports() -> list[int]:
    """Local TCP ports of this process's sockets (its database connections among them)."""
    inodes = set()
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    ports = []
    for name in ("/proc/net/tcp", "/proc/net/tcp6"):
        with open(name) as table:
            for line in table.readlines()[1:]:
                parts = line.split()
                if parts[9] in inodes:
                    ports.append(int(parts[1].split(":")[1], 16))
    return ports


def sample(stop: threading.Event, counts: collections.Counter[str]) -> None:
    with psycopg.connect(bench.POSTGRES_URL, autocommit=True) as conn:
        ports: list[int] = []
        n = 0
        while not stop.is_set():
            if n % 50 == 0:
                ports = own_ports()
            n += 1
            for kind, event, table in conn.execute(_WAITS, (ports,)).fetchall():
                label = f"{kind}/{event}" if kind else "running"
                counts[f"{label}({table})" if table else label] += 1
            counts["_samples"] += 1
            time.sleep(0.005)


async def main(backend: str, width: int, rounds: int) -> None:
    if backend == "sqlite":
        url, schema = f"sqlite:///{Path(tempfile.mkdtemp()) / 'bench.db'}", "flowplane"
    else:
        url, schema = bench.POSTGRES_URL, f"bench_{uuid.uuid4().hex[:10]}"
    store = await Store.open(url, schema=schema)
    counters = bench.count_transactions(store)
    bench.ENDS.attach()
    settings = Settings(
        worker_concurrency=bench.CONCURRENCY,
        lease_seconds=30,
        poll_interval_seconds=1.0,
        reaper_interval_seconds=5.0,
    )
    worker = Worker(store, settings=settings, registry=default_registry())
    task = asyncio.create_task(worker.run())
    runner = bench.Bench(store, counters, bench.ENDS)
    try:
        await runner.singles(50)  # warm up
        for _ in range(rounds):
            for kind in ("fan-out", "singles"):
                counts: collections.Counter[str] = collections.Counter()
                stop = threading.Event()
                sampler = threading.Thread(target=sample, args=(stop, counts))
                if backend == "postgres":
                    sampler.start()
                workload = runner.fan_out if kind == "fan-out" else runner.singles
                r = await workload(width)
                stop.set()
                if sampler.is_alive():
                    sampler.join()
                print(
                    f"{kind:8} {width / r.seconds:7.0f}/s  writes/node {r.writes / r.nodes:.2f}"
                    f"  stmts/node {r.statements / r.nodes:.1f}"
                    f"  cpu ms/node {1000 * r.cpu_seconds / r.nodes:.2f}",
                    flush=True,
                )
                samples = counts.pop("_samples", 0)
                if samples:
                    top = ", ".join(f"{k}: {v / samples:.2f}" for k, v in counts.most_common(6))
                    print(f"  backends in a transaction per sample: {top}", flush=True)
    finally:
        await worker.stop()
        await task
        await store.close()
        if backend == "postgres":
            with psycopg.connect(bench.POSTGRES_URL, autocommit=True) as conn:
                conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--backend", choices=["sqlite", "postgres"], default="postgres")
    parser.add_argument("--width", type=int, default=bench.FAN_OUT_WIDTH)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    asyncio.run(main(args.backend, args.width, args.rounds))
