"""Helpers for crash tests: real worker processes, the external counter, database invariants."""

from __future__ import annotations

import asyncio
import collections
import itertools
import json
import os
import signal
import subprocess
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from flowplane.store import reads
from flowplane.store import schema as t
from flowplane.store.base import Store
from flowplane.store.tx import TERMINAL_RUN, Tx

HERE = Path(__file__).resolve().parent
NodeKey = tuple[str, str, int]

WORKER_COMMAND = (sys.executable, "-m", "flowplane", "worker")
LEASE_SECONDS = 2.0
"""Short leases make recovery after a kill quick; heartbeats every third of it keep them."""


def sequential_workflow(length: int = 4) -> dict[str, Any]:
    """``a -> b -> c -> d``, each a side effect whose value is the previous one plus one."""
    ids = [chr(ord("a") + i) for i in range(length)]
    nodes: list[dict[str, Any]] = [
        {"id": ids[0], "type": "crash.effect", "params": {"value": "{{ input.n }}"}}
    ]
    for prev, node_id in itertools.pairwise(ids):
        nodes.append(
            {
                "id": node_id,
                "type": "crash.effect",
                "needs": [prev],
                "params": {"value": f"{{{{ nodes.{prev}.output.value + 1 }}}}"},
            }
        )
    return {
        "name": "crash-chain",
        "inputs": {"n": {"type": "integer"}},
        "nodes": nodes,
    }


class Files:
    """The files a worker process reports into (they outlive a ``kill -9``)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.effects = folder / "side-effects.jsonl"
        self.markers = folder / "markers.jsonl"
        self.trace = folder / "completions.jsonl"
        self.block = folder / "block"
        self.release = folder / "release"

    @staticmethod
    def _lines(path: Path) -> list[dict[str, Any]]:
        if not path.exists():
            return []
        return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]

    def effect_counts(self) -> collections.Counter[NodeKey]:
        """How many times each node run's side effect happened."""
        return collections.Counter(
            (r["run"], r["node"], r["iteration"]) for r in self._lines(self.effects)
        )

    def marker_lines(self) -> list[dict[str, Any]]:
        """The ``hold``/``block`` markers written so far."""
        return self._lines(self.markers)

    def trace_lines(self) -> list[dict[str, Any]]:
        """Every completion attempt the workers traced."""
        return self._lines(self.trace)


class WorkerProcess:
    """One ``flowplane worker --plugin crash_plugin`` process."""

    def __init__(
        self, name: str, db: tuple[str, str], files: Files, extra_env: dict[str, str] | None = None
    ) -> None:
        self.name = name
        self.files = files
        env = {k: v for k, v in os.environ.items() if not k.startswith(("FLOWPLANE_", "CRASH_"))}
        env.update(
            {
                "FLOWPLANE_DATABASE_URL": db[0],
                "FLOWPLANE_DATABASE_SCHEMA": db[1],
                "FLOWPLANE_LEASE_SECONDS": str(LEASE_SECONDS),
                "FLOWPLANE_REAPER_INTERVAL_SECONDS": "0.25",
                "FLOWPLANE_POLL_INTERVAL_SECONDS": "0.1",
                "FLOWPLANE_WORKER_CONCURRENCY": "16",
                "FLOWPLANE_LOG_LEVEL": "info",
                "PYTHONPATH": os.pathsep.join(
                    [str(HERE), *filter(None, [os.environ.get("PYTHONPATH")])]
                ),
                "CRASH_WORKER_NAME": name,
                "CRASH_SIDE_EFFECTS": str(files.effects),
                "CRASH_MARKERS": str(files.markers),
                "CRASH_TRACE": str(files.trace),
                "CRASH_BLOCK": str(files.block),
                "CRASH_RELEASE": str(files.release),
            }
        )
        env.update(extra_env or {})
        self.out = files.folder / f"worker-{name}.out"
        self.err = files.folder / f"worker-{name}.err"
        with self.out.open("wb") as out, self.err.open("wb") as err:
            # `flowplane worker`, configured by FLOWPLANE_* variables like any deployment.
            self.proc = subprocess.Popen(
                [*WORKER_COMMAND, "--plugin", "crash_plugin", "--grace-seconds", "2"],
                env=env,
                stdout=out,
                stderr=err,
                cwd=files.folder,
            )

    @property
    def pid(self) -> int:
        """The process id."""
        return self.proc.pid

    def signal(self, sig: signal.Signals) -> None:
        """Send ``sig`` to the process."""
        self.proc.send_signal(sig)

    def alive(self) -> bool:
        """Whether the process is still running."""
        return self.proc.poll() is None

    async def wait_exit(self, timeout: float = 30) -> int:
        """Wait for the process to end; return its exit code."""
        await until(_const(lambda: not self.alive()), timeout, f"worker {self.name} still alive")
        return int(self.proc.returncode)

    async def kill9(self) -> None:
        """``kill -9`` the process and reap it."""
        self.signal(signal.SIGKILL)
        code = await self.wait_exit(10)
        assert code == -signal.SIGKILL, code

    async def stop(self) -> None:
        """Stop gracefully (SIGTERM), or kill it if it does not stop in time."""
        if not self.alive():
            return
        self.signal(signal.SIGCONT)
        self.signal(signal.SIGTERM)
        try:
            await self.wait_exit(15)
        except AssertionError:
            self.signal(signal.SIGKILL)
            await self.wait_exit(5)

    def stderr(self) -> str:
        """The process's log output so far (the tail)."""
        return self.err.read_text(errors="replace")[-4000:]


def _const(fn: Callable[[], bool]) -> Callable[[], Awaitable[bool]]:
    async def check() -> bool:
        return fn()

    return check


async def until(
    predicate: Callable[[], Awaitable[bool]], timeout: float, message: str, interval: float = 0.05
) -> None:
    """Poll ``predicate`` until it holds, or fail with ``message``."""
    deadline = asyncio.get_running_loop().time() + timeout
    while not await predicate():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(message)
        await asyncio.sleep(interval)


# --- database views ---------------------------------------------------------------------


async def node_runs(store: Store) -> dict[NodeKey, dict[str, Any]]:
    """Every node run, keyed ``(run, node, iteration)``."""

    def read(tx: Tx) -> dict[NodeKey, dict[str, Any]]:
        c = t.node_runs.c
        rows = tx.conn.execute(
            sa.select(c.run_id, c.node_id, c.iteration, c.status, c.attempt, c.lease_epoch)
        )
        return {(r.run_id, r.node_id, r.iteration): dict(r._mapping) for r in rows}

    return await store.read(read)


async def in_progress(store: Store) -> set[NodeKey]:
    """Node runs leased to a worker right now."""
    return {k for k, r in (await node_runs(store)).items() if r["status"] == "in-progress"}


async def run_rows(store: Store, run_ids: list[str]) -> dict[str, dict[str, Any]]:
    """The runs (status, output)."""

    def read(tx: Tx) -> dict[str, dict[str, Any]]:
        c = t.runs.c
        rows = tx.conn.execute(
            sa.select(c.id, c.status, c.output, c.error).where(c.id.in_(run_ids))
        )
        return {r.id: dict(r._mapping) for r in rows}

    return await store.read(read)


async def wait_terminal(store: Store, run_ids: list[str], timeout: float = 40) -> None:
    """Wait until every run is terminal."""

    async def done() -> bool:
        rows = await run_rows(store, run_ids)
        return all(r["status"] in TERMINAL_RUN for r in rows.values())

    await until(done, timeout, "runs did not reach a terminal state", interval=0.1)


async def attempts_by_node(store: Store) -> dict[NodeKey, list[dict[str, Any]]]:
    """Attempts of every node run, in attempt order."""

    def read(tx: Tx) -> dict[NodeKey, list[dict[str, Any]]]:
        # The attempts rows, and the successful attempts kept on their node runs.
        c, n = t.attempts.c, t.node_runs.c
        result: dict[NodeKey, list[dict[str, Any]]] = collections.defaultdict(list)
        query = sa.union_all(
            sa.select(c.run_id, c.node_id, c.iteration, c.attempt, c.status, c.worker),
            sa.select(
                n.run_id,
                n.node_id,
                n.iteration,
                n.attempt,
                sa.literal("finished").label("status"),
                sa.func.nullif(n.worker, "").label("worker"),
            ).where(n.worker.is_not(None)),
        ).subquery()
        for r in tx.conn.execute(sa.select(query).order_by(query.c.attempt)):
            result[(r.run_id, r.node_id, r.iteration)].append(dict(r._mapping))
        return dict(result)

    return await store.read(read)


async def all_events(store: Store) -> list[dict[str, Any]]:
    """Every event row in ``seq`` order."""

    def read(tx: Tx) -> list[dict[str, Any]]:
        return [
            {
                "seq": e.seq,
                "run_id": e.run_id,
                "type": e.type,
                "node_id": e.node_id,
                "payload": e.payload,
            }
            for e in reads.events_after(tx, limit=10_000_000)
        ]

    return await store.read(read)


async def check_invariants(store: Store, run_ids: list[str]) -> None:
    """What must hold after any crash, once every run is terminal.

    * each node run that finished has exactly one ``finished`` attempt and exactly one
      ``NodeFinished`` event, and the database refuses a second success of a node run;
    * event ``seq`` is gap-free and increasing; each run's events start with ``RunStarted``
      and end with its terminal event.
    """
    nodes = await node_runs(store)
    attempts = await attempts_by_node(store)
    events = await all_events(store)
    for key, row in nodes.items():
        finished = [a for a in attempts.get(key, []) if a["status"] == "finished"]
        expected = 1 if row["status"] == "finished" else 0
        assert len(finished) == expected, (key, row, attempts.get(key))
    node_finished = collections.Counter(
        (e["run_id"], e["node_id"], e["payload"]["iteration"])
        for e in events
        if e["type"] == "NodeFinished"
    )
    assert node_finished == collections.Counter(
        {k: 1 for k, r in nodes.items() if r["status"] == "finished"}
    )
    seqs = [e["seq"] for e in events]
    assert seqs == list(range(1, len(seqs) + 1)), "event seq has gaps or is out of order"
    assert all(e["payload"]["seq"] == e["seq"] for e in events)
    for run_id in run_ids:
        types = [
            e["type"] for e in events if e["run_id"] == run_id and e["type"] != "FrameCommitted"
        ]
        assert types[0] == "RunStarted", types
        assert types[-1] in ("RunFinished", "RunFailed", "RunCancelled", "RunTimedOut"), types
        assert sum(ty.startswith("Run") and ty != "RunStatusChanged" for ty in types) == 2, types
    await assert_second_success_refused(
        store, next(k for k, r in nodes.items() if r["status"] == "finished")
    )


async def assert_second_success_refused(store: Store, key: NodeKey) -> None:
    """The database holds one success per node run: a node run's successful attempt and its
    output are columns of its one row (unique key ``ux_node_runs_key``; a second row for
    it is refused) and no ``attempts`` row says ``finished`` (it could not be a second)."""

    def insert() -> tuple[str, int]:
        with store.engine.connect() as conn, conn.begin() as transaction:
            finished_rows = conn.execute(
                sa.select(sa.func.count())
                .select_from(t.attempts)
                .where(t.attempts.c.status == "finished")
            ).scalar_one()
            try:
                conn.execute(
                    t.node_runs.insert().values(
                        run_id=key[0],
                        node_id=key[1],
                        iteration=key[2],
                        status="finished",
                        attempt=999,
                        worker="zombie",
                        finished_at_ms=0,
                    )
                )
            except sa.exc.IntegrityError as exc:
                transaction.rollback()
                return str(exc.orig), finished_rows
            transaction.rollback()
            return "", finished_rows

    message, finished_rows = await asyncio.get_running_loop().run_in_executor(None, insert)
    assert message, "a second finished node run was accepted"
    assert "ux_node_runs_key" in message or "UNIQUE" in message, message
    assert finished_rows == 0, "a successful attempt was recorded apart from its node run"
