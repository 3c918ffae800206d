"""End to end over HTTP against the in-process engine, measured in the same run.

Run it with ``make bench`` or ``python bench/e2e.py [--quick] [--backend sqlite|postgres]
[--clients 16] [--duration 8] [--rounds 2] [--profile FILE] [--flow two|both]``. On each
backend, in turn:

* ``HTTP``: a real ``flowplane serve`` subprocess, served the way ``make run`` serves it
  (the API and one embedded worker in one process, concurrency 16, uvicorn's defaults and
  access log), with the rate limits of every role raised so the limiter never refuses.
  ``--clients`` clients (16) each loop: ``POST /v1/runs`` of a stored 3-node sequential
  ``util.noop`` workflow (one keep-alive connection per client), then
  ``GET /v1/runs/{id}/events`` (SSE, a connection of its own, as a browser's
  ``EventSource``) read until ``RunFinished``. Latency runs from sending the POST to reading
  ``RunFinished``. The clients are raw asyncio sockets in this process (an HTTP library
  would cost the shared 2 cores more than the server's own work); their CPU is printed.
* ``HTTP 1-req`` (``--flow both``, the default): the same clients start and follow each run
  in one request, ``POST /v1/runs`` with ``Accept: text/event-stream`` (the answer is the
  run's stream), read to its end on the keep-alive connection. ``--flow two`` measures only
  the two-request flow (a server without start-and-follow).
* ``in-process``: the same workflow through bench/engine.py's machinery (``RunService`` +
  one ``Worker`` of concurrency 16 on one event loop, no HTTP), 16 runs in flight.

Each phase runs ``--duration`` seconds (after a warm-up) on a fresh database, alternating
``--rounds`` times; the best round of each is compared: ``ratio`` = HTTP nodes/s ÷
in-process nodes/s (issue 19's target: at least 0.7), and the one-request ratio.
``server CPU ms/run`` is the serve process's user + system time per run (``/proc``),
``client CPU ms/run`` this process's.
``--profile FILE`` records the serve process with py-spy during the HTTP phases (a flame
graph SVG, or ``.txt`` for collapsed stacks).

PostgreSQL: ``FLOWPLANE_TEST_POSTGRES_URL`` or ``postgresql://postgres@127.0.0.1:5432/test``,
a throw-away schema per phase. Absolute numbers vary with the machine: compare the ratio.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fixtures import database, free_port, start_py_spy, stop_process

NODES = 3
WORKFLOW_DOC: dict[str, Any] = {
    "name": "e2e-bench",
    "nodes": [{"id": f"n{i}", "type": "util.noop"} for i in range(NODES)],
}
RATE_LIMIT = 1_000_000_000
ROLES = ("viewer", "executor", "editor", "admin")
RUN_ENDS = (b"RunFinished", b"RunFailed", b"RunCancelled", b"RunTimedOut")


@dataclass
class Phase:
    """One measured phase."""

    kind: str  # "HTTP" or "in-process"
    runs: int
    seconds: float
    latencies_ms: list[float] = field(default_factory=list)
    server_cpu: float | None = None
    client_cpu: float | None = None
    errors: int = 0

    @property
    def runs_per_s(self) -> float:
        return self.runs / self.seconds if self.seconds else 0.0

    @property
    def nodes_per_s(self) -> float:
        return self.runs_per_s * NODES

    def percentile(self, p: float) -> float:
        if not self.latencies_ms:
            return float("nan")
        ordered = sorted(self.latencies_ms)
        return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))]


# --- a lean HTTP/1.1 client ------------------------------------------------------------------


class Connection:
    """One keep-alive HTTP/1.1 connection (answers with a Content-Length only)."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    @classmethod
    async def open(cls, port: int) -> Connection:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        return cls(reader, writer)

    async def request(self, head: bytes, body: bytes = b"") -> tuple[int, bytes]:
        self.writer.write(head + body)
        status, headers = await read_head(self.reader)
        length = int(headers.get(b"content-length", b"0"))
        return status, await self.reader.readexactly(length)

    def close(self) -> None:
        self.writer.close()


async def read_head(reader: asyncio.StreamReader) -> tuple[int, dict[bytes, bytes]]:
    """The status and headers (lower-case names) of a response."""
    raw = await reader.readuntil(b"\r\n\r\n")
    lines = raw.split(b"\r\n")
    status = int(lines[0].split(b" ", 2)[1])
    headers: dict[bytes, bytes] = {}
    for line in lines[1:]:
        if line:
            name, _, value = line.partition(b":")
            headers[name.strip().lower()] = value.strip()
    return status, headers


def request_head(method: str, path: str, key: str, body: bytes = b"", accept: str = "") -> bytes:
    lines = [f"{method} {path} HTTP/1.1", "Host: 127.0.0.1", f"Authorization: Bearer {key}"]
    if body:
        lines += ["Content-Type: application/json", f"Content-Length: {len(body)}"]
    if accept:
        lines.append(f"Accept: {accept}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


async def follow_to_end(port: int, key: str, run_id: str) -> str:
    """Read the run's SSE stream until a run-ending event; return its type."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        head = request_head("GET", f"/v1/runs/{run_id}/events", key, accept="text/event-stream")
        writer.write(head)
        status, _headers = await read_head(reader)
        if status != 200:
            return f"HTTP {status}"
        while True:
            line = await reader.readline()
            if not line:
                return "closed"
            # Smithers' framing: every event is ``event: smithers``, its type in the data.
            if line.startswith(b"data: ") and any(end in line for end in RUN_ENDS):
                kind: str = json.loads(line[6:])["type"]
                if kind.encode() in RUN_ENDS:
                    return kind
    finally:
        writer.close()


async def read_chunked_to_end(reader: asyncio.StreamReader) -> bytes:
    """The whole body of a chunked response (the stream of a start that follows its run)."""
    parts: list[bytes] = []
    while True:
        size = int((await reader.readuntil(b"\r\n")).split(b";", 1)[0], 16)
        if size == 0:
            await reader.readuntil(b"\r\n")  # no trailers: the empty line
            return b"".join(parts)
        parts.append(await reader.readexactly(size))
        await reader.readexactly(2)


def stream_end(body: bytes) -> str:
    """The type of the run-ending event of an SSE body ("closed" without one)."""
    for line in body.split(b"\n"):
        if line.startswith(b"data: ") and any(end in line for end in RUN_ENDS):
            kind: str = json.loads(line[6:])["type"]
            if kind.encode() in RUN_ENDS:
                return kind
    return "closed"


async def start_and_follow(conn: Connection, head: bytes, body: bytes) -> str:
    """One request: ``POST /v1/runs`` with ``Accept: text/event-stream``, read to the end
    of its stream on the keep-alive connection; the run-ending event's type."""
    conn.writer.write(head + body)
    status, headers = await read_head(conn.reader)
    if headers.get(b"transfer-encoding") != b"chunked":
        await conn.reader.readexactly(int(headers.get(b"content-length", b"0")))
        return f"HTTP {status}"
    answer = await read_chunked_to_end(conn.reader)
    if status != 200 or not headers.get(b"x-run-id"):
        return f"HTTP {status}"
    return stream_end(answer)


async def http_clients(
    port: int, key: str, workflow_id: str, clients: int, seconds: float, flow: str = "two"
) -> tuple[int, list[float], int, float]:
    """``clients`` loops of POST + follow (``flow`` "two": two requests, the stream on a
    connection of its own; "one": one request, the start answering with its stream) until
    ``seconds`` pass; (runs, latencies, errors, elapsed)."""
    body = json.dumps({"workflowId": workflow_id, "input": {"source": "e2e"}}).encode()
    head = request_head("POST", "/v1/runs", key, body)
    if flow == "one":
        head = request_head("POST", "/v1/runs", key, body, accept="text/event-stream")
    latencies: list[float] = []
    errors = 0
    runs = 0
    began = time.perf_counter()
    deadline = began + seconds

    async def client() -> None:
        nonlocal errors, runs
        conn = await Connection.open(port)
        try:
            while time.perf_counter() < deadline:
                t0 = time.perf_counter()
                if flow == "one":
                    if await start_and_follow(conn, head, body) != "RunFinished":
                        errors += 1
                        continue
                    latencies.append((time.perf_counter() - t0) * 1000)
                    runs += 1
                    continue
                status, answer = await conn.request(head, body)
                if status != 200:
                    errors += 1
                    continue
                end = await follow_to_end(port, key, json.loads(answer)["runId"])
                if end != "RunFinished":
                    errors += 1
                    continue
                latencies.append((time.perf_counter() - t0) * 1000)
                runs += 1
        finally:
            conn.close()

    await asyncio.gather(*(client() for _ in range(clients)))
    return runs, latencies, errors, time.perf_counter() - began


# --- the HTTP phase --------------------------------------------------------------------------


def process_cpu(pid: int) -> float:
    """User + system CPU seconds of process ``pid`` (Linux)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def http_phase(
    backend: str, args: argparse.Namespace, profile: str | None, flow: str = "two"
) -> Phase:
    import httpx

    work = Path(tempfile.mkdtemp(prefix="fp-e2e-"))
    key = f"fp_{secrets.token_hex(6)}_{secrets.token_urlsafe(32)}"
    try:
        with database(backend, work) as (url, schema):
            port = free_port()
            env = {
                **os.environ,
                "FLOWPLANE_ADMIN_KEY": key,
                "FLOWPLANE_DATA_DIR": str(work / "data"),
                "FLOWPLANE_RATE_LIMIT_PER_MINUTE": json.dumps(dict.fromkeys(ROLES, RATE_LIMIT)),
            }
            cmd = [sys.executable, "-m", "flowplane", "serve", "--port", str(port)]
            cmd += ["--database-url", url, "--database-schema", schema, "--root", str(work)]
            log = work / "serve.log"
            with log.open("w") as out:
                proc = subprocess.Popen(cmd, env=env, stdout=out, stderr=subprocess.STDOUT)
            spy: subprocess.Popen[bytes] | None = None
            try:
                base = f"http://127.0.0.1:{port}"
                deadline = time.monotonic() + 90
                while True:
                    try:
                        if httpx.get(base + "/readyz", timeout=1).status_code == 200:
                            break
                    except httpx.HTTPError:
                        pass
                    if proc.poll() is not None or time.monotonic() > deadline:
                        raise RuntimeError(f"flowplane serve did not start:\n{log.read_text()}")
                    time.sleep(0.2)
                auth = {"Authorization": f"Bearer {key}"}
                created = httpx.post(base + "/v1/workflows", json=WORKFLOW_DOC, headers=auth)
                workflow_id = created.raise_for_status().json()["id"]
                await http_clients(port, key, workflow_id, args.clients, 1.0, flow)  # warm-up
                if profile:
                    spy = start_py_spy(proc.pid, profile, args.duration)
                cpu0, client0 = process_cpu(proc.pid), time.process_time()
                runs, latencies, errors, elapsed = await http_clients(
                    port, key, workflow_id, args.clients, args.duration, flow
                )
                server_cpu = process_cpu(proc.pid) - cpu0
                client_cpu = time.process_time() - client0
                if spy is not None:
                    spy.wait(60)
                kind = "HTTP" if flow == "two" else "HTTP 1-req"
                return Phase(kind, runs, elapsed, latencies, server_cpu, client_cpu, errors=errors)
            finally:
                stop_process(proc)
    finally:
        shutil.rmtree(work, ignore_errors=True)


# --- the in-process phase --------------------------------------------------------------------


async def engine_phase(backend: str, args: argparse.Namespace) -> Phase:
    """bench/engine.py's machinery: RunService + Worker in-process, 16 runs in flight."""
    from engine import ENDS, Bench, count_transactions

    from flowplane.cli.gc_tuning import tune_for_serving
    from flowplane.connectors.registry import default_registry
    from flowplane.engine.worker import Worker
    from flowplane.settings import Settings
    from flowplane.store.base import Store

    work = Path(tempfile.mkdtemp(prefix="fp-e2e-"))
    try:
        with database(backend, work) as (url, schema):
            store = await Store.open(url, schema=schema)
            try:
                ENDS.attach()
                settings = Settings(worker_concurrency=16, lease_seconds=30)
                worker = Worker(store, settings=settings, registry=default_registry())
                task = asyncio.create_task(worker.run())
                bench = Bench(store, count_transactions(store), ENDS)
                # As `flowplane worker` and `serve` run (flowplane.cli.gc_tuning): both sides
                # of the ratio with the same collector.
                saved = gc.get_threshold()
                tune_for_serving(settings.gc_threshold)
                try:
                    await in_flight(bench, args.clients, 1.0)  # warm-up
                    cpu0 = time.process_time()
                    runs, latencies, elapsed = await in_flight(bench, args.clients, args.duration)
                    cpu = time.process_time() - cpu0
                finally:
                    gc.set_threshold(*saved)
                    gc.unfreeze()
                    await worker.stop()
                    await task
                return Phase("in-process", runs, elapsed, latencies, server_cpu=cpu)
            finally:
                await store.close()
    finally:
        shutil.rmtree(work, ignore_errors=True)


async def in_flight(bench: Any, clients: int, seconds: float) -> tuple[int, list[float], float]:
    """``clients`` loops of start + wait for the end, for ``seconds``."""
    latencies: list[float] = []
    began = time.perf_counter()
    deadline = began + seconds

    async def client() -> None:
        while time.perf_counter() < deadline:
            _dispatch, total = await bench.run_one(WORKFLOW_DOC)
            latencies.append(total * 1000)

    await asyncio.gather(*(client() for _ in range(clients)))
    return len(latencies), latencies, time.perf_counter() - began


# --- report ----------------------------------------------------------------------------------


def print_report(
    backend: str, http: list[Phase], engine: list[Phase], one: list[Phase] | None = None
) -> float:
    best_http = max(http, key=lambda p: p.nodes_per_s)
    best_engine = max(engine, key=lambda p: p.nodes_per_s)
    print(f"\n== {backend} == ({NODES}-node sequential util.noop runs, {len(http)} round(s))")
    print(
        f"{'target':12} {'runs/s':>8} {'nodes/s':>8} {'rounds nodes/s':>18} {'p50 ms':>7} "
        f"{'p99 ms':>7} {'server CPU ms/run':>18} {'client CPU ms/run':>18} {'errors':>6}"
    )
    rows = [(best_http, http), (best_engine, engine)]
    if one:
        rows.insert(1, (max(one, key=lambda p: p.nodes_per_s), one))
    for best, phases in rows:
        rounds = " / ".join(f"{p.nodes_per_s:,.0f}" for p in phases)
        server = (
            f"{best.server_cpu / best.runs * 1000:.2f}" if best.server_cpu and best.runs else "-"
        )
        client = (
            f"{best.client_cpu / best.runs * 1000:.2f}" if best.client_cpu and best.runs else "-"
        )
        print(
            f"{best.kind:12} {best.runs_per_s:8.1f} {best.nodes_per_s:8,.0f} {rounds:>18} "
            f"{best.percentile(50):7.1f} {best.percentile(99):7.1f} {server:>18} {client:>18} "
            f"{sum(p.errors for p in phases):6d}"
        )
    ratio = best_http.nodes_per_s / best_engine.nodes_per_s if best_engine.nodes_per_s else 0.0
    print(f"ratio HTTP ÷ in-process nodes/s: {ratio:.2f} (target >= 0.7; two requests per run)")
    if one and best_engine.nodes_per_s:
        best_one = max(one, key=lambda p: p.nodes_per_s)
        print(
            "one-request ratio HTTP 1-req ÷ in-process nodes/s: "
            f"{best_one.nodes_per_s / best_engine.nodes_per_s:.2f} (start and follow, one request)"
        )
    return ratio


async def bench_backend(backend: str, args: argparse.Namespace) -> None:
    http: list[Phase] = []
    one: list[Phase] = []
    engine: list[Phase] = []
    for round_no in range(args.rounds):
        profile = None
        if args.profile:
            stem, dot, ext = args.profile.rpartition(".")
            profile = f"{stem}-{backend}-{round_no}.{ext}" if dot else f"{args.profile}-{backend}"
        http.append(await http_phase(backend, args, profile))
        if args.flow == "both":
            one_profile = profile and profile.replace(f"-{backend}", f"-{backend}-one")
            one.append(await http_phase(backend, args, one_profile, "one"))
        engine.append(await engine_phase(backend, args))
    print_report(backend, http, engine, one)


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="4 s per phase, 1 round")
    parser.add_argument("--backend", choices=["sqlite", "postgres", "all"], default="all")
    parser.add_argument("--clients", type=int, default=16, help="clients (runs in flight)")
    parser.add_argument("--duration", type=float, help="seconds per phase (8)")
    parser.add_argument("--rounds", type=int, help="rounds of both phases (2)")
    parser.add_argument("--profile", help="py-spy output of the serve process (svg or txt)")
    parser.add_argument(
        "--flow",
        choices=["two", "both"],
        default="both",
        help="two: POST then GET the stream (as a browser); both: also the one-request flow "
        "(POST with Accept: text/event-stream answers with the run's stream)",
    )
    args = parser.parse_args()
    args.duration = args.duration or (4.0 if args.quick else 8.0)
    args.rounds = args.rounds or (1 if args.quick else 2)
    print(
        f"flowplane e2e bench: {os.cpu_count()} CPUs, load "
        f"{' '.join(f'{x:.2f}' for x in os.getloadavg())}, Python {sys.version.split()[0]}; "
        f"{args.clients} clients, {args.rounds} x {args.duration:.0f} s per phase"
    )
    backends = ["sqlite", "postgres"] if args.backend == "all" else [args.backend]
    for backend in backends:
        asyncio.run(bench_backend(backend, args))
    print(f"\nload at the end: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
