"""DBOS Transact's cost per step on the same PostgreSQL: the peer baseline of bench/engine.py.

Runs in a virtualenv of its own (``make bench`` creates ``.venv-dbos`` with DBOS pinned),
because DBOS brings its own dependency set. ``bench/engine.py`` starts it as a subprocess
right after its own PostgreSQL ``sequential`` workload, so both are measured in the same
run on the same database server; it prints one JSON line:

    {"version": ..., "runs": N, "p50_ms": ..., "p99_ms": ..., "cpu_ms": ...}

The workload mirrors ``sequential``: a workflow of 10 no-op steps, one run at a time,
latency per step = workflow latency / 10 (workflow start included), DBOS's default
configuration, a throw-away database.
"""

from __future__ import annotations

import json
import logging
import math
import sys
import time
import uuid
from importlib.metadata import version

import psycopg
from dbos import DBOS

STEPS = 10


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)]


def main() -> None:
    server_url, runs = sys.argv[1], int(sys.argv[2])
    logging.getLogger("dbos").setLevel(logging.WARNING)
    database = f"dbos_bench_{uuid.uuid4().hex[:8]}"
    base = server_url.rsplit("/", 1)[0]
    DBOS(
        config={
            "name": "flowplane-bench",
            "system_database_url": f"{base}/{database}",
            "run_admin_server": False,
            "log_level": "WARNING",
        }
    )

    @DBOS.step()
    def noop() -> None:
        return None

    @DBOS.workflow()
    def sequential() -> None:
        for _ in range(STEPS):
            noop()

    DBOS.launch()
    try:
        sequential()  # warm up
        per_step: list[float] = []
        c0 = time.process_time()
        for _ in range(runs):
            t0 = time.perf_counter()
            sequential()
            per_step.append((time.perf_counter() - t0) / STEPS * 1000)
        cpu = time.process_time() - c0
    finally:
        DBOS.destroy()
        with psycopg.connect(server_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
    print(
        json.dumps(
            {
                "version": version("dbos"),
                "runs": runs,
                "p50_ms": percentile(per_step, 50),
                "p99_ms": percentile(per_step, 99),
                "cpu_ms": cpu * 1000 / (runs * STEPS),
            }
        )
    )


if __name__ == "__main__":
    main()
