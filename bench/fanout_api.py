"""Fan-out benchmark: the API's latency for other users while one run expands a huge foreach.

Run it with ``make bench`` or ``python bench/fanout_api.py [--quick] [--backend
sqlite|postgres|all] [--items 10000] [--idle 5] [--timeout 600]``. On each backend, in one
run:

1. a Flowplane server starts in a subprocess (this file with ``--serve``), as ``flowplane
   serve`` runs it: the API and one embedded worker in one process, on one event loop;
2. *idle*: two probes, each one request at a time with a 20 ms pause, measure ``GET
   /health`` (no database) and ``GET /v1/runs?limit=10`` (a small authenticated read) for
   ``--idle`` seconds;
3. *fan-out*: a run of ``foreach: "{{ range(N)|list }}"`` over ``util.noop`` starts, and the
   same probes run until it is terminal (the probe of ``/v1/runs`` reads its status).

The report gives, per probe and phase, the number of requests, p50, p99 and max latency in
ms, and the ratio of the fan-out p99 to the idle p99 (measured in the same run, on the same
machine, so the ratio is what to compare across commits); and how long the run took. The
rate limits are raised so that the probes are never refused.

PostgreSQL: ``FLOWPLANE_TEST_POSTGRES_URL`` or ``postgresql://postgres@127.0.0.1:5432/test``,
in a throw-away schema; SQLite: a file in a temporary folder. See docs/performance.md.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from fixtures import database, free_port, stop_process

POSTGRES_URL = os.environ.get(
    "FLOWPLANE_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"
)
RATE_LIMIT = 1_000_000_000
ROLES = ("viewer", "executor", "editor", "admin")
PAUSE_SECONDS = 0.02
ADMIN_KEY = "fp_bench_" + uuid.uuid4().hex


def workflow(items: int) -> str:
    """A workflow whose one node expands to ``items`` no-op items."""
    return (
        "name: fanout-bench\n"
        "nodes:\n"
        f'  - {{id: each, type: util.noop, foreach: "{{{{ range({items})|list }}}}"}}\n'
    )


def serve(port: int, config: str) -> None:
    """Serve Flowplane with its embedded worker (``config``: Settings as JSON)."""
    import uvicorn

    from flowplane.api.app import create_app
    from flowplane.settings import Settings

    app = create_app(Settings(**json.loads(config)))
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)


@contextlib.contextmanager
def server(url: str, schema: str, work: Path, items: int) -> Iterator[str]:
    """The server subprocess; yields its base URL once ``/health`` answers."""
    settings = {
        "database_url": url,
        "database_schema": schema,
        "root": str(work / "root"),
        "data_dir": str(work / "data"),
        "workers": 1,
        "admin_key": ADMIN_KEY,
        "rate_limit_per_minute": dict.fromkeys(ROLES, RATE_LIMIT),
        "max_foreach_items": max(items, 1),
        "log_level": "warning",
    }
    (work / "root").mkdir(parents=True, exist_ok=True)
    port = free_port()
    log = work / "server.log"
    with log.open("w") as out:
        cmd = [sys.executable, __file__, "--serve", "--port", str(port)]
        cmd += ["--config", json.dumps(settings)]
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(base + "/health", timeout=2).status_code == 200:
                    break
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the server did not start:\n{log.read_text()}")
            time.sleep(0.2)
        yield base
    finally:
        stop_process(proc)


@dataclass
class Probe:
    """Latencies of one route, one request at a time."""

    path: str
    latencies_ms: list[float] = field(default_factory=list)
    errors: int = 0
    last: Any = None

    def percentile(self, q: float) -> float:
        """The ``q`` quantile (nearest rank) of the latencies, in ms."""
        if not self.latencies_ms:
            return float("nan")
        ordered = sorted(self.latencies_ms)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def probe(client: httpx.AsyncClient, target: Probe, stop: asyncio.Event) -> None:
    """Request ``target.path`` one at a time until ``stop`` is set."""
    while not stop.is_set():
        start = time.perf_counter()
        try:
            response = await client.get(target.path)
        except httpx.HTTPError:
            target.errors += 1
        else:
            target.latencies_ms.append((time.perf_counter() - start) * 1000)
            if response.status_code != 200:
                target.errors += 1
            elif target.path.startswith("/v1/runs"):
                target.last = response.json()
        await asyncio.sleep(PAUSE_SECONDS)


PATHS = ("/health", "/v1/runs?limit=10")


async def phase(client: httpx.AsyncClient, until: Any) -> dict[str, Probe]:
    """Probe every path until ``until(probes)`` is true (checked every 100 ms)."""
    probes = {path: Probe(path) for path in PATHS}
    stop = asyncio.Event()
    tasks = [asyncio.create_task(probe(client, p, stop)) for p in probes.values()]
    while not until(probes):
        await asyncio.sleep(0.1)
    stop.set()
    await asyncio.gather(*tasks)
    return probes


@dataclass
class Result:
    """What one backend measured."""

    idle: dict[str, Probe]
    busy: dict[str, Probe]
    run_seconds: float
    run_status: str
    items: int


async def bench(base: str, args: argparse.Namespace) -> Result:
    """The idle phase, then the fan-out phase."""
    headers = {"Authorization": f"Bearer {ADMIN_KEY}"}
    timeout = httpx.Timeout(120.0)
    async with httpx.AsyncClient(base_url=base, headers=headers, timeout=timeout) as client:
        created = await client.post(
            "/v1/workflows",
            content=workflow(args.items),
            headers={"Content-Type": "text/yaml"},
        )
        workflow_id = created.raise_for_status().json()["id"]
        for path in PATHS:  # warm up
            (await client.get(path)).raise_for_status()
        t0 = time.monotonic()
        idle = await phase(client, lambda _p: time.monotonic() - t0 >= args.idle)
        started = await client.post(f"/v1/workflows/{workflow_id}/runs", json={"input": {}})
        run_id = started.raise_for_status().json()["runId"]
        t1 = time.monotonic()
        status = "?"

        def done(probes: dict[str, Probe]) -> bool:
            nonlocal status
            runs = probes["/v1/runs?limit=10"].last or []
            for run in runs:
                if run["runId"] == run_id:
                    status = run["status"]
            return status in ("finished", "failed", "cancelled", "timed-out") or (
                time.monotonic() - t1 > args.timeout
            )

        busy = await phase(client, done)
        return Result(idle, busy, time.monotonic() - t1, status, args.items)


def print_report(backend: str, result: Result) -> None:
    """One table per backend: each probe idle and during the fan-out, and the p99 ratio."""
    print(
        f"\n== {backend} == foreach of {result.items:,} items: {result.run_status} "
        f"in {result.run_seconds:.1f} s"
    )
    header = (
        f"{'probe':<20}{'phase':<9}{'requests':>9}{'p50 ms':>9}{'p99 ms':>9}{'max ms':>9}"
        f"{'errors':>8}{'p99 ÷ idle':>12}"
    )
    print(header)
    print("-" * len(header))
    for path in PATHS:
        idle_p99 = result.idle[path].percentile(0.99)
        for name, probes in (("idle", result.idle), ("fan-out", result.busy)):
            p = probes[path]
            ratio = p.percentile(0.99) / idle_p99 if idle_p99 else float("nan")
            print(
                f"{path:<20}{name:<9}{len(p.latencies_ms):>9}{p.percentile(0.5):>9.1f}"
                f"{p.percentile(0.99):>9.1f}{max(p.latencies_ms, default=0):>9.1f}"
                f"{p.errors:>8}{ratio:>12.1f}"
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="1,000 items, 2 s idle")
    parser.add_argument("--backend", choices=["sqlite", "postgres", "all"], default="all")
    parser.add_argument("--items", type=int, help="foreach items (10,000)")
    parser.add_argument("--idle", type=float, help="seconds of the idle phase (5)")
    parser.add_argument("--timeout", type=float, default=600.0, help="longest fan-out phase")
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--config", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args.port, args.config)
        return
    args.items = args.items or (1_000 if args.quick else 10_000)
    args.idle = args.idle or (2.0 if args.quick else 5.0)
    load = os.getloadavg()
    print(
        f"flowplane fan-out API bench: {os.cpu_count()} CPUs, load {load[0]:.2f} {load[1]:.2f} "
        f"{load[2]:.2f}, Python {sys.version.split()[0]}; {args.items:,} items, "
        f"{args.idle:g} s idle"
    )
    backends = ["sqlite", "postgres"] if args.backend == "all" else [args.backend]
    for backend in backends:
        work = Path(tempfile.mkdtemp(prefix="fp-fanout-bench-"))
        try:
            with (
                database(backend, work) as (url, schema),
                server(url, schema, work, args.items) as base,
            ):
                result = asyncio.run(bench(base, args))
            print_report(backend, result)
        finally:
            shutil.rmtree(work, ignore_errors=True)
    load = os.getloadavg()
    print(f"\nload at the end: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")


if __name__ == "__main__":
    main()
