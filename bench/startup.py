"""Start-up benchmark: how long ``flowplane serve`` takes to answer, against a bare app.

On each backend, in interleaved rounds, the time from starting the process to its first
answered request:

* ``bare``: a minimal Starlette app under uvicorn (one route, no database): what any
  Python HTTP server on this machine pays to start (the interpreter, uvicorn, Starlette).
* ``serve (first)``: ``flowplane serve`` on a new, empty database (it migrates it);
* ``serve``: ``flowplane serve`` again on that database (a restart, a deploy, a test);
* ``refused``: ``flowplane serve`` with a setting it refuses, to its exit (code 2).

The table gives each one's median and its ratio to ``bare``'s median in the same run.
``python bench/startup.py [--rounds N] [--backend sqlite|postgres|all]``
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
from fixtures import database, free_port, stop_process

BARE = """
import sys, uvicorn
from starlette.applications import Starlette
from starlette.responses import JSONResponse
from starlette.routing import Route

async def health(request):
    return JSONResponse({"status": "ok"})

uvicorn.run(Starlette(routes=[Route("/health", health)]), port=int(sys.argv[1]),
            log_level="warning")
"""


def _time_to_answer(cmd: list[str], port: int, env: dict[str, str], cwd: Path) -> float:
    """Seconds from starting ``cmd`` to its first 200 on ``/health``; then it is stopped."""
    start = time.perf_counter()
    proc = subprocess.Popen(
        cmd, env=env, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        while True:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/health", timeout=2).status_code == 200:
                    return time.perf_counter() - start
            except httpx.HTTPError:
                pass
            if proc.poll() is not None:
                raise RuntimeError(f"{cmd} exited with {proc.returncode}")
            if time.perf_counter() - start > 120:
                raise RuntimeError(f"{cmd} did not answer in 120 s")
            time.sleep(0.01)
    finally:
        stop_process(proc)


def _time_to_exit(cmd: list[str], env: dict[str, str], cwd: Path) -> float:
    start = time.perf_counter()
    done = subprocess.run(cmd, env=env, cwd=cwd, capture_output=True, timeout=120, check=False)
    if done.returncode != 2:
        raise RuntimeError(f"{cmd} exited with {done.returncode}, not 2: {done.stderr!r}")
    return time.perf_counter() - start


def run_backend(backend: str, rounds: int) -> dict[str, list[float]]:
    """Each target's start-up times (seconds) over ``rounds`` interleaved rounds."""
    times: dict[str, list[float]] = {"bare": [], "serve (first)": [], "serve": [], "refused": []}
    env = {**os.environ, "FLOWPLANE_LOG_LEVEL": "warning"}
    env.pop("FLOWPLANE_ADMIN_KEY", None)
    serve = [sys.executable, "-m", "flowplane", "serve", "--workers", "1"]
    for _ in range(rounds):
        with tempfile.TemporaryDirectory() as tmp:
            work = Path(tmp)
            with database(backend, work) as (url, schema):
                db = ["--database-url", url, "--database-schema", schema]
                port = free_port()
                bare = [sys.executable, "-c", BARE, str(port)]
                times["bare"].append(_time_to_answer(bare, port, env, work))
                for name in ("serve (first)", "serve"):
                    port = free_port()
                    cmd = [*serve, "--port", str(port), *db]
                    times[name].append(_time_to_answer(cmd, port, env, work))
                refused_env = {**env, "FLOWPLANE_ALLOW_HOSTS": "exa mple.com"}
                cmd = [*serve, "--port", "0", *db]
                times["refused"].append(_time_to_exit(cmd, refused_env, work))
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--backend", choices=["sqlite", "postgres", "all"], default="all")
    args = parser.parse_args()
    backends = ["sqlite", "postgres"] if args.backend == "all" else [args.backend]
    print(f"{'backend':<10} {'target':<15} {'median s':>9} {'min s':>7} {'÷ bare':>7}")
    for backend in backends:
        times = run_backend(backend, args.rounds)
        bare = statistics.median(times["bare"])
        for name, values in times.items():
            median = statistics.median(values)
            print(
                f"{backend:<10} {name:<15} {median:>9.2f} {min(values):>7.2f} {median / bare:>7.2f}"
            )


if __name__ == "__main__":
    main()
