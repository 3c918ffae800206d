"""Live-stream benchmark: events delivered to 100 SSE subscribers, and commit-to-client latency.

Run it with ``python bench/events.py [--subscribers 100] [--events 2000] [--batch 10]``.
In one run it measures three targets with the same clients and the same load:

* ``run stream``: ``GET /v1/runs/{id}/events`` of a real ``flowplane serve`` process;
* ``namespace stream``: ``GET /v1/events?namespace=bench`` of the same process;
* ``bare starlette``: a minimal Starlette app in its own uvicorn process that fans the same
  number of messages out of in-memory queues (no database): the floor of SSE in Python.

The Flowplane server runs with ``--workers 0`` on PostgreSQL (``FLOWPLANE_TEST_POSTGRES_URL``
or ``postgresql://postgres@127.0.0.1:5432/test``, in a throw-away schema). This process is
the producer: it commits ``--events`` events to one run, ``--batch`` per transaction, as fast
as it can, through its own store; the server learns of them by LISTEN/NOTIFY, exactly as an
API node learns of a remote worker's events. Each event's latency is the time from just
before its transaction started to the moment a client has read it from its socket (same
machine clock); ``delivered/s`` is subscribers x events over the time from the first commit
to the last delivery. Clients are raw asyncio sockets that only parse ``id:`` lines, so they
cost the benchmark as little as possible; all processes share the machine's cores.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import psycopg

POSTGRES_URL = os.environ.get(
    "FLOWPLANE_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"
)
NAMESPACE = "bench"
WORKFLOW = f"""
name: event-bench
namespace: {NAMESPACE}
nodes:
  - {{id: wait, type: wait.signal, params: {{name: never}}}}
"""


def free_port() -> int:
    """A free TCP port on localhost."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


# --- the bare Starlette baseline (run as a subprocess: --baseline-server PORT) ---------------


def baseline_server(port: int) -> None:
    """Serve ``/sse`` (subscribe), ``/publish`` (fan out N messages) and ``/times``."""
    import uvicorn
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse, StreamingResponse
    from starlette.routing import Route

    queues: set[asyncio.Queue[bytes]] = set()
    sent: dict[int, float] = {}

    async def sse(_request: Request) -> StreamingResponse:
        queue: asyncio.Queue[bytes] = asyncio.Queue(maxsize=1024)
        queues.add(queue)

        async def body() -> AsyncIterator[bytes]:
            try:
                yield b"retry: 1000\n\n"
                while True:
                    yield await queue.get()
            finally:
                queues.discard(queue)

        return StreamingResponse(body(), media_type="text/event-stream")

    async def publish(request: Request) -> JSONResponse:
        count = int(request.query_params["count"])
        batch = int(request.query_params["batch"])
        for start in range(1, count + 1, batch):
            now = time.time()
            for seq in range(start, min(start + batch, count + 1)):
                sent[seq] = now
                data = json.dumps({"type": "NodeLog", "seq": seq, "message": f"m{seq}"})
                message = f"id: {seq}\nevent: NodeLog\ndata: {data}\n\n".encode()
                for queue in list(queues):
                    await queue.put(message)
            await asyncio.sleep(0)  # a commit's worth of yielding between batches
        return JSONResponse({"published": count})

    async def times(_request: Request) -> JSONResponse:
        return JSONResponse(sent)

    routes = [Route("/sse", sse), Route("/publish", publish, methods=["POST"]), Route("/times", times)]
    uvicorn.run(Starlette(routes=routes), host="127.0.0.1", port=port, log_level="warning")


# --- clients --------------------------------------------------------------------------------


@dataclass
class Subscriber:
    """One raw-socket SSE client: ``(seq, receive time)`` of every event it read."""

    got: list[tuple[int, float]]
    ready: asyncio.Event
    task: asyncio.Task[None] | None = None


async def subscribe(port: int, path: str, headers: dict[str, str], sub: Subscriber) -> None:
    """Read an SSE stream, recording each ``id:`` line with the time it was read."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    lines = [f"GET {path} HTTP/1.1", "Host: 127.0.0.1", "Accept: text/event-stream"]
    lines += [f"{k}: {v}" for k, v in headers.items()]
    writer.write(("\r\n".join(lines) + "\r\n\r\n").encode())
    await writer.drain()
    try:
        status = await reader.readline()
        if b" 200 " not in status:
            raise RuntimeError(f"{path}: {status!r}")
        async for line in reader:
            if line.startswith(b"retry:"):
                sub.ready.set()
            elif line.startswith(b"id: "):
                sub.got.append((int(line[4:]), time.time()))
    finally:
        writer.close()


@dataclass
class Result:
    """One target's numbers."""

    name: str
    subscribers: int
    events: int
    delivered: int
    seconds: float
    p50_ms: float
    p99_ms: float
    max_ms: float

    @property
    def per_second(self) -> float:
        return self.delivered / self.seconds if self.seconds else 0.0


async def measure(
    name: str,
    port: int,
    path: str,
    headers: dict[str, str],
    subscribers: int,
    events: int,
    produce: Any,
) -> Result:
    """Connect the subscribers, run ``produce()``, wait for every delivery, and summarise."""
    subs = [Subscriber([], asyncio.Event()) for _ in range(subscribers)]
    for sub in subs:
        sub.task = asyncio.create_task(subscribe(port, path, headers, sub))
    await asyncio.wait_for(asyncio.gather(*(s.ready.wait() for s in subs)), 60)
    await asyncio.sleep(0.5)  # every subscriber is past its replay and waiting live
    started = time.time()
    sent: dict[int, float] = await produce()
    deadline = time.monotonic() + 120
    while any(len(s.got) < events for s in subs) and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    for sub in subs:
        assert sub.task is not None
        sub.task.cancel()
    await asyncio.gather(*(s.task for s in subs if s.task), return_exceptions=True)
    latencies = sorted(
        (received - sent[seq]) * 1000 for s in subs for seq, received in s.got if seq in sent
    )
    delivered = len(latencies)
    last = max((received for s in subs for _, received in s.got), default=started)
    q = statistics.quantiles(latencies, n=100) if len(latencies) > 1 else [0.0] * 99
    return Result(name, subscribers, events, delivered, last - started, q[49], q[98], latencies[-1])


# --- Flowplane ------------------------------------------------------------------------------


async def prepare(schema: str, key: str) -> None:
    """Migrate a fresh schema and create the admin key (what a first start does)."""
    from flowplane.services.auth import AuthService
    from flowplane.settings import Settings
    from flowplane.store.base import Store

    store = await Store.open(POSTGRES_URL, schema=schema)
    try:
        auth = AuthService(store, Settings(database_url=POSTGRES_URL, database_schema=schema))
        await auth.jwt_secret()
        await auth.bootstrap(key)
    finally:
        await store.close()


def wait_ready(url: str, proc: subprocess.Popen[bytes], log: Path) -> None:
    """Wait until ``url`` answers (or the process dies)."""
    deadline = time.monotonic() + 90
    while True:
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(log.read_text() if log.exists() else "server did not start")
        time.sleep(0.2)


async def run_bench(args: argparse.Namespace) -> list[Result]:
    """Start the servers, measure the three targets, stop everything."""
    from flowplane.store import reads
    from flowplane.store.base import Store

    schema = f"bench_{uuid.uuid4().hex[:10]}"
    key = f"fp_{secrets.token_hex(6)}_{secrets.token_urlsafe(32)}"
    await prepare(schema, key)
    work = Path(tempfile.mkdtemp(prefix="fp-events-bench-"))
    port, base_port = free_port(), free_port()
    env = {**os.environ, "FLOWPLANE_ADMIN_KEY": key, "FLOWPLANE_DATA_DIR": str(work / "data")}
    cmd = [sys.executable, "-m", "flowplane", "serve", "--port", str(port), "--workers", "0"]
    cmd += ["--database-url", POSTGRES_URL, "--database-schema", schema, "--root", str(work)]
    log = work / "serve.log"
    with log.open("w") as out:
        server = subprocess.Popen(cmd, env=env, stdout=out, stderr=subprocess.STDOUT)
    baseline = subprocess.Popen([sys.executable, __file__, "--baseline-server", str(base_port)])
    store = await Store.open(POSTGRES_URL, schema=schema, migrate=False)
    results: list[Result] = []
    try:
        wait_ready(f"http://127.0.0.1:{port}/readyz", server, log)
        wait_ready(f"http://127.0.0.1:{base_port}/times", baseline, log)
        auth = {"Authorization": f"Bearer {key}"}
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", headers=auth) as c:
            created = await c.post(
                "/v1/workflows", content=WORKFLOW, headers={"Content-Type": "text/yaml"}
            )
            run = await c.post(
                "/v1/runs", json={"workflowId": created.raise_for_status().json()["id"]}
            )
            run_id = run.raise_for_status().json()["runId"]

            # Only this process writes events now, and seqs are gap-free: a batch committed
            # after ``last`` holds ``last + 1 .. last + count``.
            last = await store.read(reads.last_seq)

            async def commit_events() -> dict[int, float]:
                nonlocal last
                sent: dict[int, float] = {}
                for start in range(0, args.events, args.batch):
                    count = min(args.batch, args.events - start)
                    before = time.time()

                    def append(tx: Any, count: int = count) -> None:
                        for i in range(count):
                            tx.event(run_id, NAMESPACE, "NodeLog", None, message=f"m{i}")

                    await store.transact(append)
                    for seq in range(last + 1, last + count + 1):
                        sent[seq] = before
                    last += count
                return sent

            for name, path in (
                ("run stream", f"/v1/runs/{run_id}/events"),
                ("namespace stream", f"/v1/events?namespace={NAMESPACE}"),
            ):
                sep = "&" if "?" in path else "?"
                result = await measure(
                    name,
                    port,
                    f"{path}{sep}afterSeq={last}",
                    auth,
                    args.subscribers,
                    args.events,
                    commit_events,
                )
                results.append(result)
            assert await store.read(reads.last_seq) == last, "another writer interfered"

        async def publish() -> dict[int, float]:
            async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{base_port}") as b:
                query = {"count": args.events, "batch": args.batch}
                (await b.post("/publish", params=query, timeout=120)).raise_for_status()
                times = (await b.get("/times")).json()
                return {int(seq): float(t) for seq, t in times.items()}

        results.append(
            await measure(
                "bare starlette", base_port, "/sse", {}, args.subscribers, args.events, publish
            )
        )
    finally:
        await store.close()
        for proc in (server, baseline):
            proc.terminate()
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
        with psycopg.connect(POSTGRES_URL, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
    return results


def main() -> None:
    """Parse arguments, run, print a table (and JSON with ``--json``)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--subscribers", type=int, default=100)
    parser.add_argument("--events", type=int, default=2000)
    parser.add_argument("--batch", type=int, default=10, help="events per transaction")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--baseline-server", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.baseline_server:
        baseline_server(args.baseline_server)
        return
    results = asyncio.run(run_bench(args))
    print(
        f"{args.subscribers} SSE subscribers, {args.events} events, "
        f"{args.batch} per commit (PostgreSQL, LISTEN/NOTIFY)"
    )
    print(
        f"{'target':<18}{'delivered':>11}{'seconds':>9}{'events/s':>11}{'p50 ms':>9}"
        f"{'p99 ms':>9}{'max ms':>9}"
    )
    for r in results:
        print(
            f"{r.name:<18}{r.delivered:>11}{r.seconds:>9.2f}{r.per_second:>11.0f}"
            f"{r.p50_ms:>9.1f}{r.p99_ms:>9.1f}{r.max_ms:>9.1f}"
        )
    if args.json:
        print(json.dumps([{**r.__dict__, "per_second": r.per_second} for r in results]))


if __name__ == "__main__":
    main()
