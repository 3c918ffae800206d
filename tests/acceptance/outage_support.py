"""Helpers of the database-outage and heartbeat tests: real ``flowplane worker`` processes
with the ``outage_plugin`` connectors, and the side effects they report."""

from __future__ import annotations

import collections
import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from flowplane.connectors.registry import Registry, load_builtins, register_module

HERE = Path(__file__).resolve().parent
WORKER_COMMAND = (sys.executable, "-m", "flowplane", "worker")
# Long enough that work in flight outlives a restart without its lease expiring.
LEASE_SECONDS = 10.0


def registry() -> Registry:
    """Built-ins and the outage connectors (to validate documents)."""
    import outage_plugin

    reg = Registry()
    load_builtins(reg)
    register_module(reg, outage_plugin)
    return reg


class WorkerProcess:
    """A real ``flowplane worker --plugin outage_plugin`` process."""

    def __init__(
        self, name: str, db: tuple[str, str], folder: Path, lease_seconds: float, **env: str
    ) -> None:
        self.name = name
        variables = {k: v for k, v in os.environ.items() if not k.startswith("FLOWPLANE_")}
        variables.update(
            {
                "FLOWPLANE_DATABASE_URL": db[0],
                "FLOWPLANE_DATABASE_SCHEMA": db[1],
                "FLOWPLANE_LEASE_SECONDS": str(lease_seconds),
                "FLOWPLANE_REAPER_INTERVAL_SECONDS": "0.25",
                "FLOWPLANE_POLL_INTERVAL_SECONDS": "0.2",
                "FLOWPLANE_WORKER_CONCURRENCY": "16",
                "FLOWPLANE_LOG_LEVEL": "info",
                "OUTAGE_EFFECTS": str(folder / "effects.jsonl"),
                "PYTHONPATH": os.pathsep.join(
                    [str(HERE), *filter(None, [os.environ.get("PYTHONPATH")])]
                ),
            }
        )
        variables.update(env)
        self.err = folder / f"worker-{name}.err"
        with (folder / f"worker-{name}.out").open("wb") as out, self.err.open("wb") as err:
            self.proc = subprocess.Popen(
                [*WORKER_COMMAND, "--plugin", "outage_plugin", "--grace-seconds", "2"],
                env=variables,
                stdout=out,
                stderr=err,
                cwd=folder,
            )

    def alive(self) -> bool:
        """Whether the process still runs."""
        return self.proc.poll() is None

    def log(self) -> str:
        """The process's log so far."""
        return self.err.read_text(errors="replace")

    def stop(self) -> None:
        """SIGTERM, then SIGKILL if it does not stop in time."""
        if not self.alive():
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)


@pytest.fixture(name="spawn")
def spawn_fixture(tmp_path: Path) -> Iterator[Any]:
    """``spawn(name, db, lease_seconds, **env)`` starts a worker; all are stopped at the end."""
    started: list[WorkerProcess] = []

    def start(
        name: str, db: tuple[str, str], lease_seconds: float = LEASE_SECONDS, **env: str
    ) -> WorkerProcess:
        worker = WorkerProcess(name, db, tmp_path, lease_seconds, **env)
        started.append(worker)
        return worker

    yield start
    for worker in started:
        worker.stop()


def effect_counts(folder: Path) -> collections.Counter[tuple[str, str, int]]:
    """How many times each node run's side effect happened."""
    path = folder / "effects.jsonl"
    lines = path.read_text().splitlines() if path.exists() else []
    return collections.Counter(
        (r["run"], r["node"], r["iteration"]) for r in map(json.loads, filter(None, lines))
    )
