"""API benchmark: requests/s of two Flowplane routes over HTTP, against a bare Starlette endpoint.

Run it with ``make bench`` or ``python bench/api.py [--quick] [--backend sqlite|postgres]
[--duration 6] [--rounds 2] [--connections 16] [--client auto|wrk|python] [--target NAME]``
(``--target``: only that target besides ``bare``, repeatable). On each backend, in one
run, four targets are loaded by the same load generator with the same options:

* ``bare``: a minimal Starlette app (one route, no middleware, no database) that answers
  ``GET /v1/runs/{id}`` with the very JSON document Flowplane returns for the bench run
  (same bytes on the wire, serialised per request): the floor of an HTTP JSON endpoint in
  Python on this machine;
* ``GET /health``: Flowplane's open liveness route, through the same middleware stack and
  router but without authentication or database: what the framework costs;
* ``GET /v1/runs/{id}``: a finished run of a 5-node workflow, with an API key header. A
  settled run's rendered detail is kept in memory (``FLOWPLANE_RUN_CACHE_SECONDS``), so
  after the first read this is the authenticated, rate-limited, metered answer from memory;
* ``GET live run``: ``GET /v1/runs/{id}`` of a run that is not settled (created by a POST,
  ``ready``), never cached: the full path with the database read and rendering;
* ``GET list``: ``GET /v1/runs?limit=50`` with more than 50 runs present (the setup
  creates :data:`LIST_RUNS`): one page of run summaries;
* ``POST /v1/workflows/{id}/runs``: each request creates a run (201).

The table prints each target's rate as a fraction of the bare endpoint's (``÷ bare``), the
bare endpoint's server CPU per request as a fraction of the target's (``cpu ÷``: the same
ratio from counted work, steadier than the rate on a loaded machine) and, next to them,
the fraction issue 19 asks for on that backend (:data:`TARGETS`, judged on ``÷ bare``).

Both apps are served the same way: each in its own subprocess (this file with ``--serve``),
one uvicorn process, the same ``uvicorn.Config`` options as ``flowplane serve``
(``http``/``loop`` ``auto``: httptools and uvloop when installed) except that access logs
are off in both. The Flowplane server runs API-only (``workers=0``), so no engine competes
for the CPU and the runs created by the POST target stay ``ready``. The rate limits of every
role are raised to 10^9 per minute: the limiter still runs (and sends its headers) but never
refuses. The setup (workflow, API key, one run driven to ``finished`` by an embedded worker)
happens in this process before the servers start.

The load generator runs in another process: ``wrk`` (1 thread, ``--connections``
keep-alive connections) when installed, else a raw-socket asyncio client (``--load``, same
connections; it is slower than wrk and may cap the bare endpoint's rate). Each round loads
every target for ``--duration`` seconds (6; 2 with ``--quick``) after a short warm-up. The
table shows, per target, the best round (the machine is shared) and every round's rate; the
p50/p99 latency of that round (under saturation: mostly queueing); the server's CPU time per
request (from ``/proc``; less sensitive to other load than the rate); and the rate as a
fraction of the bare endpoint's best.

PostgreSQL: ``FLOWPLANE_TEST_POSTGRES_URL`` or ``postgresql://postgres@127.0.0.1:5432/test``,
in a throw-away schema; SQLite: a file in a temporary folder. See docs/performance.md.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
from fixtures import database, free_port, start_py_spy, stop_process

from flowplane.services.auth import LOCAL

POSTGRES_URL = os.environ.get(
    "FLOWPLANE_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"
)
NAMESPACE = "bench"
NODES = 5
WORKFLOW = "\n".join(
    [f"name: api-bench\nnamespace: {NAMESPACE}\nnodes:"]
    + [
        f"  - {{id: n{i}, type: util.noop{f', needs: [n{i - 1}]' if i else ''}}}"
        for i in range(NODES)
    ]
)
POST_BODY = json.dumps({"input": {"source": "bench"}})
LIST_RUNS = 60
"""Runs the setup creates besides the bench run, so that a page of 50 is full."""
TARGETS = {
    ("sqlite", "GET live run"): 0.5,
    ("postgres", "GET live run"): 0.3,
    ("sqlite", "GET list"): 0.3,
    ("postgres", "GET list"): 0.2,
    ("sqlite", "POST run"): 0.3,
    ("postgres", "POST run"): 0.15,
}
"""Issue 19's targets: the least fraction of the bare endpoint's rate, by backend and target."""
RATE_LIMIT = 1_000_000_000
ROLES = ("viewer", "executor", "editor", "admin")


# --- servers (subprocesses: this file with --serve) ------------------------------------------


def uvicorn_options() -> dict[str, Any]:
    """The options of ``flowplane serve``, access logs off; the same for both apps."""
    from flowplane.cli import server

    return {
        "host": "127.0.0.1",
        "timeout_keep_alive": server.KEEP_ALIVE_SECONDS,
        "h11_max_incomplete_event_size": server.MAX_INCOMPLETE_EVENT_BYTES,
        "limit_concurrency": server.MAX_CONNECTIONS,
        "server_header": False,
        "log_level": "warning",
        "access_log": False,
    }


def serve(kind: str, port: int, config: str) -> None:
    """Serve ``flowplane`` (``config``: Settings as JSON) or ``bare`` (``config``: a JSON file)."""
    import uvicorn

    app: Any
    if kind == "flowplane":
        from flowplane.api.app import create_app
        from flowplane.settings import Settings

        app = create_app(Settings(**json.loads(config)))
    else:
        from starlette.applications import Starlette
        from starlette.requests import Request as StarletteRequest
        from starlette.responses import JSONResponse
        from starlette.routing import Route

        document = json.loads(Path(config).read_text())

        async def get_run(request: StarletteRequest) -> JSONResponse:
            return JSONResponse({**document, "id": request.path_params["run_id"]})

        app = Starlette(routes=[Route("/v1/runs/{run_id}", get_run)])
    # Both servers with the collector of `flowplane serve` (flowplane.cli.gc_tuning).
    from flowplane.cli.gc_tuning import tune_for_serving
    from flowplane.settings import Settings as _Settings

    tune_for_serving(_Settings().gc_threshold)
    uvicorn.run(app, port=port, **uvicorn_options())


@dataclass
class Server:
    """A served app in a subprocess."""

    name: str
    port: int
    proc: subprocess.Popen[bytes]
    log: Path

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def cpu_seconds(self) -> float | None:
        """User + system CPU time of the server process so far (Linux), else ``None``."""
        try:
            fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            return None
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def stop(self) -> None:
        stop_process(self.proc)


def start_server(name: str, kind: str, config: str, work: Path, probe: str, key: str) -> Server:
    """Start ``kind`` on a free port and wait until ``probe`` answers 200."""
    port = free_port()
    log = work / f"{name}.log"
    with log.open("w") as out:
        cmd = [sys.executable, __file__, "--serve", kind, "--port", str(port), "--config", config]
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT)
    server = Server(name, port, proc, log)
    deadline = time.monotonic() + 60
    while True:
        try:
            headers = {"Authorization": f"Bearer {key}"}
            if httpx.get(server.base + probe, headers=headers, timeout=2).status_code == 200:
                return server
        except httpx.HTTPError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            server.stop()
            raise RuntimeError(f"{name} did not start:\n{log.read_text()}")
        time.sleep(0.2)


# --- setup -------------------------------------------------------------------------------------


@dataclass
class Fixture:
    """What the setup left in the database, and how to serve it."""

    settings: dict[str, Any]
    key: str
    workflow_id: str
    run_id: str
    document: dict[str, Any]


async def prepare(url: str, schema: str, work: Path) -> Fixture:
    """Create the workflow, an executor API key and one finished run, in-process."""
    from flowplane.api.app import create_app
    from flowplane.security.tokens import generate_api_key
    from flowplane.settings import Settings

    settings: dict[str, Any] = {
        "database_url": url,
        "database_schema": schema,
        "root": str(work / "root"),
        "data_dir": str(work / "data"),
        "workers": 0,
        "admin_key": generate_api_key().key,
        "rate_limit_per_minute": dict.fromkeys(ROLES, RATE_LIMIT),
        "log_level": "warning",
    }
    (work / "root").mkdir(parents=True, exist_ok=True)
    setup = Settings(**{**settings, "workers": 1, "poll_interval_seconds": 0.1})
    app = create_app(setup)
    async with app.router.lifespan_context(app):
        created = await app.state.services.auth.create_api_key(
            caller=LOCAL, name="api-bench", role="executor", namespaces=None
        )
        headers = {"Authorization": f"Bearer {created.secret}"}
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(
            transport=transport, base_url="http://bench", headers=headers
        ) as client:
            admin = {"Authorization": f"Bearer {settings['admin_key']}"}
            workflow = await client.post(
                "/v1/workflows",
                content=WORKFLOW,
                headers={**admin, "Content-Type": "text/yaml"},
            )
            workflow_id = workflow.raise_for_status().json()["id"]
            run = await client.post(
                f"/v1/workflows/{workflow_id}/runs",
                content=POST_BODY,
                headers={"Content-Type": "application/json"},
            )
            run_id = run.raise_for_status().json()["runId"]
            for _ in range(LIST_RUNS):
                more = await client.post(
                    f"/v1/workflows/{workflow_id}/runs",
                    content=POST_BODY,
                    headers={"Content-Type": "application/json"},
                )
                more.raise_for_status()
            deadline = time.monotonic() + 60
            while True:
                detail = (await client.get(f"/v1/runs/{run_id}")).raise_for_status().json()
                if detail["status"] == "finished" or time.monotonic() > deadline:
                    break
                await asyncio.sleep(0.1)
    if detail["status"] != "finished":
        raise RuntimeError(f"the bench run did not finish: {detail['status']}")
    return Fixture(settings, created.secret, workflow_id, run_id, detail)


# --- load generators ---------------------------------------------------------------------------


@dataclass
class Load:
    """One measurement of one target."""

    requests: int
    seconds: float
    p50_ms: float
    p99_ms: float
    bad: int  # non-2xx responses and socket errors
    cpu_seconds: float | None = None

    @property
    def rate(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0

    @property
    def cpu_us(self) -> float | None:
        """Server CPU µs per request."""
        if self.cpu_seconds is None or not self.requests:
            return None
        return 1e6 * self.cpu_seconds / self.requests


@dataclass
class Request:
    """What a load generator sends."""

    url: str
    method: str = "GET"
    headers: dict[str, str] = field(default_factory=dict)
    body: str = ""


_DURATION = re.compile(r"([\d.]+)(us|ms|s|m)\b")
_UNIT_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0}


def _ms(text: str) -> float:
    match = _DURATION.search(text)
    if match is None:
        raise ValueError(f"no duration in {text!r}")
    return float(match[1]) * _UNIT_MS[match[2]]


def run_wrk(request: Request, connections: int, seconds: float, work: Path) -> Load:
    """Load ``request`` with wrk (1 thread) and parse its report."""
    script = work / "request.lua"
    lines = [f"wrk.method = {json.dumps(request.method)}", f"wrk.body = {json.dumps(request.body)}"]
    lines += [f"wrk.headers[{json.dumps(k)}] = {json.dumps(v)}" for k, v in request.headers.items()]
    script.write_text("\n".join(lines) + "\n")
    cmd = ["wrk", "-t1", f"-c{connections}", f"-d{max(1, round(seconds))}s", "--latency"]
    cmd += ["--timeout", "10s"]
    cmd += ["-s", str(script), request.url]
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode:
        raise RuntimeError(f"wrk failed ({done.returncode}): {done.stderr or done.stdout}")
    out = done.stdout
    total = re.search(r"(\d+) requests in ([\d.]+\w+)", out)
    if total is None:
        raise RuntimeError(f"unexpected wrk output:\n{out}")
    percentiles = dict(re.findall(r"^\s+(50|99)\.000%\s+(\S+)", out, re.M))
    if not percentiles:
        percentiles = dict(re.findall(r"^\s+(50|99)%\s+(\S+)", out, re.M))
    bad = sum(int(n) for n in re.findall(r"(?:connect|read|write|timeout) (\d+)", out))
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    bad += int(non2xx[1]) if non2xx else 0
    return Load(
        int(total[1]),
        _ms(total[2]) / 1000,
        _ms(percentiles["50"]),
        _ms(percentiles["99"]),
        bad,
    )


async def _keep_alive(
    host: str, port: int, raw: bytes, stop: float, latencies: list[float], bad: list[int]
) -> None:
    reader, writer = await asyncio.open_connection(host, port)
    try:
        while time.perf_counter() < stop:
            t0 = time.perf_counter()
            writer.write(raw)
            status = await reader.readline()
            length = 0
            while (line := await reader.readline()) not in (b"\r\n", b""):
                if line[:15].lower() == b"content-length:":
                    length = int(line[15:])
            await reader.readexactly(length)
            latencies.append(time.perf_counter() - t0)
            if not status.startswith(b"HTTP/1.1 2"):
                bad[0] += 1
    finally:
        writer.close()


async def python_load(spec: dict[str, Any]) -> dict[str, Any]:
    """The fallback load generator (runs in its own process): N keep-alive raw sockets."""
    parts = urlsplit(spec["url"])
    body = spec["body"].encode()
    head = [f"{spec['method']} {parts.path} HTTP/1.1", f"Host: {parts.netloc}"]
    head += [f"{k}: {v}" for k, v in spec["headers"].items()]
    head += [f"Content-Length: {len(body)}"] if body else []
    raw = ("\r\n".join(head) + "\r\n\r\n").encode() + body
    latencies: list[float] = []
    bad = [0]
    t0 = time.perf_counter()
    stop = t0 + spec["seconds"]
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    await asyncio.gather(
        *(_keep_alive(host, port, raw, stop, latencies, bad) for _ in range(spec["connections"]))
    )
    seconds = time.perf_counter() - t0
    latencies.sort()
    pick = lambda p: 1000 * latencies[min(len(latencies) - 1, int(p * len(latencies)))]  # noqa: E731
    return {"requests": len(latencies), "seconds": seconds, "p50_ms": pick(0.5),
            "p99_ms": pick(0.99), "bad": bad[0]}  # fmt: skip


def run_python(request: Request, connections: int, seconds: float, _work: Path) -> Load:
    """Load ``request`` with the asyncio client in a subprocess."""
    spec = {**request.__dict__, "connections": connections, "seconds": seconds}
    cmd = [sys.executable, __file__, "--load", json.dumps(spec)]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    return Load(**json.loads(out))


# --- the run -----------------------------------------------------------------------------------


def measure(
    generator: Any,
    server: Server,
    request: Request,
    args: argparse.Namespace,
    work: Path,
    profile: str | None = None,
) -> Load:
    """One loaded interval of ``request``, with the server's CPU time over it (and a py-spy
    record of the server into ``profile``, when given)."""
    spy = start_py_spy(server.proc.pid, profile, args.duration) if profile else None
    c0 = server.cpu_seconds()
    load: Load = generator(request, args.connections, args.duration, work)
    c1 = server.cpu_seconds()
    if spy is not None:
        spy.wait(60)
    load.cpu_seconds = c1 - c0 if c0 is not None and c1 is not None else None
    return load


def bench_backend(
    backend: str, args: argparse.Namespace, generator: Any
) -> tuple[dict[str, list[Load]], Fixture]:
    """Set up, serve, load every target ``--rounds`` times; return the loads by target."""
    work = Path(tempfile.mkdtemp(prefix="fp-api-bench-"))
    try:
        with database(backend, work) as (url, schema):
            fixture = asyncio.run(prepare(url, schema, work))
            doc = work / "document.json"
            doc.write_text(json.dumps(fixture.document))
            probe = f"/v1/runs/{fixture.run_id}"
            servers: list[Server] = []
            try:  # the servers stop before the schema is dropped
                servers.append(start_server("bare", "bare", str(doc), work, probe, fixture.key))
                settings = json.dumps(fixture.settings)
                servers.append(
                    start_server("flowplane", "flowplane", settings, work, probe, fixture.key)
                )
                return (
                    load_targets(*servers, fixture, args, generator, work, backend),
                    fixture,
                )
            finally:
                for server in servers:
                    server.stop()
    finally:
        shutil.rmtree(work, ignore_errors=True)


def load_targets(
    bare: Server,
    flowplane: Server,
    fixture: Fixture,
    args: argparse.Namespace,
    generator: Any,
    work: Path,
    backend: str,
) -> dict[str, list[Load]]:
    """Warm every target up, then load each in turn ``--rounds`` times."""
    probe = f"/v1/runs/{fixture.run_id}"
    auth = {"Authorization": f"Bearer {fixture.key}"}
    post_headers = {**auth, "Content-Type": "application/json"}
    post_url = f"{flowplane.base}/v1/workflows/{fixture.workflow_id}/runs"
    check = httpx.post(post_url, headers=post_headers, content=POST_BODY)
    if check.status_code != 201:
        raise RuntimeError(f"POST run answered {check.status_code}: {check.text}")
    live = f"{flowplane.base}/v1/runs/{check.json()['runId']}"
    targets = {
        "bare": (bare, Request(bare.base + probe)),
        "GET health": (flowplane, Request(flowplane.base + "/health")),
        "GET run": (flowplane, Request(flowplane.base + probe, headers=auth)),
        "GET live run": (flowplane, Request(live, headers=auth)),
        "GET list": (flowplane, Request(flowplane.base + "/v1/runs?limit=50", headers=auth)),
        "POST run": (flowplane, Request(post_url, "POST", post_headers, POST_BODY)),
    }
    if args.target:  # the bare endpoint always, as the baseline
        targets = {k: v for k, v in targets.items() if k == "bare" or k in args.target}
    warm = argparse.Namespace(**{**vars(args), "duration": 1})
    for server, request in targets.values():
        measure(generator, server, request, warm, work)
    loads: dict[str, list[Load]] = {name: [] for name in targets}
    for round_ in range(args.rounds):
        for name, (server, request) in targets.items():
            profile = None
            if args.profile and round_ == 0 and name != "bare":
                profile = profile_path(args.profile, f"{backend}-{name}")
            loads[name].append(measure(generator, server, request, args, work, profile))
    return loads


def profile_path(pattern: str, label: str) -> str:
    """``pattern`` (``FILE.svg`` or ``FILE.txt``) with ``label`` before its suffix."""
    stem, dot, suffix = pattern.rpartition(".")
    slug = re.sub(r"[^A-Za-z0-9]+", "-", label).strip("-").lower()
    return f"{stem}-{slug}.{suffix}" if dot else f"{pattern}-{slug}"


def print_report(backend: str, loads: dict[str, list[Load]], fixture: Fixture) -> None:
    """One table per backend: best round per target, and its ratio to the bare endpoint."""
    size = len(json.dumps(fixture.document, separators=(",", ":")))
    print(f"\n== {backend} == (GET run body ~{size:,} bytes, {NODES} nodes)")
    header = (
        f"{'target':<14}{'req/s':>9}{'rounds':>16}{'p50 ms':>9}{'p99 ms':>9}"
        f"{'cpu µs/req':>12}{'errors':>8}{'÷ bare':>8}{'cpu ÷':>7}{'target':>10}"
    )
    print(header)
    print("-" * len(header))
    floor = max(load.rate for load in loads["bare"])
    bare_cpu = max(loads["bare"], key=lambda load: load.rate).cpu_us
    for name, rounds in loads.items():
        best = max(rounds, key=lambda load: load.rate)
        cpu = f"{best.cpu_us:.0f}" if best.cpu_us is not None else "-"
        every = "/".join(f"{load.rate:.0f}" for load in rounds)
        print(
            f"{name:<14}{best.rate:>9.0f}{every:>16}{best.p50_ms:>9.2f}{best.p99_ms:>9.2f}"
            f"{cpu:>12}{sum(load.bad for load in rounds):>8}{best.rate / floor:>8.2f}"
            f"{_cpu_ratio(bare_cpu, best.cpu_us):>7}"
            f"{_target(backend, name, best.rate / floor):>10}"
        )


def _cpu_ratio(bare: float | None, cpu: float | None) -> str:
    """The bare endpoint's server CPU per request ÷ this target's: the rate ratio the
    server's own work allows, less sensitive than the rate to other load on the machine."""
    return f"{bare / cpu:.2f}" if bare and cpu else "-"


def _target(backend: str, name: str, ratio: float) -> str:
    """Issue 19's target for this row (``≥0.50 ok`` / ``≥0.50 no``), or empty."""
    wanted = TARGETS.get((backend, name))
    if wanted is None:
        return ""
    return f"≥{wanted:.2f} {'ok' if ratio >= wanted else 'no'}"


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="2 s per target, 1 round")
    parser.add_argument("--backend", choices=["sqlite", "postgres", "all"], default="all")
    parser.add_argument("--duration", type=int, help="seconds per target per round (6)")
    parser.add_argument("--rounds", type=int, help="rounds over the targets (2)")
    parser.add_argument("--connections", type=int, default=16, help="keep-alive connections")
    parser.add_argument("--client", choices=["auto", "wrk", "python"], default="auto")
    parser.add_argument(
        "--target",
        action="append",
        help='only this target besides bare (repeatable), e.g. --target "POST run"',
    )
    parser.add_argument(
        "--profile",
        help="py-spy records of the Flowplane server, one per target in the first round "
        "(FILE.svg flame graphs or FILE.txt collapsed stacks, the target's name added)",
    )
    parser.add_argument("--serve", choices=["flowplane", "bare"], help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--config", help=argparse.SUPPRESS)
    parser.add_argument("--load", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args.serve, args.port, args.config)
        return
    if args.load:
        print(json.dumps(asyncio.run(python_load(json.loads(args.load)))))
        return
    args.duration = args.duration or (2 if args.quick else 6)
    args.rounds = args.rounds or (1 if args.quick else 2)
    client = args.client
    if client == "auto":
        client = "wrk" if shutil.which("wrk") else "python"
    generator = run_wrk if client == "wrk" else run_python
    load = os.getloadavg()
    print(
        f"flowplane API bench: {os.cpu_count()} CPUs, load {load[0]:.2f} {load[1]:.2f} "
        f"{load[2]:.2f}, Python {sys.version.split()[0]}; {client}, {args.connections} "
        f"connections, {args.rounds} x {args.duration:g} s per target"
    )
    backends = ["sqlite", "postgres"] if args.backend == "all" else [args.backend]
    for backend in backends:
        loads, fixture = bench_backend(backend, args, generator)
        print_report(backend, loads, fixture)
    load = os.getloadavg()
    print(f"\nload at the end: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")


if __name__ == "__main__":
    main()
