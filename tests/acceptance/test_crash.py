"""Crash tests with real worker processes and real ``kill -9``, on SQLite and PostgreSQL.

Each scenario starts five 4-node runs (``a -> b -> c -> d``, every node an external side
effect counted in a file), kills the worker at one point, starts a fresh worker and checks:

* every run finishes, with the right output;
* each node run has exactly one ``finished`` attempt and one ``NodeFinished`` event, the
  database refuses a second, and event ``seq`` stays gap-free;
* only the node runs that were in flight at the kill ran their side effect again (and only
  if the kill came after the side effect); every other node ran it exactly once;
* a node run in flight at the kill has a ``lost`` attempt then a ``finished`` one; every
  other node run has a single attempt.
"""

from __future__ import annotations

import collections
import signal
from pathlib import Path
from typing import Any

import pytest
from crash_support import (
    Files,
    NodeKey,
    WorkerProcess,
    all_events,
    assert_second_success_refused,
    attempts_by_node,
    check_invariants,
    in_progress,
    node_runs,
    run_rows,
    sequential_workflow,
    until,
    wait_terminal,
)

from flowplane.connectors.registry import Registry, load_builtins, register_module
from flowplane.services.caller import Caller
from flowplane.services.runs import RunService
from flowplane.store.base import Store

RUNS = 5
NODES = ("a", "b", "c", "d")


@pytest.fixture
async def store(db: tuple[str, str]) -> Any:
    """The test's own connection to the database the workers share."""
    s = await Store.open(db[0], schema=db[1])
    try:
        yield s
    finally:
        await s.close()


@pytest.fixture
def runs(store: Store) -> RunService:
    """A run service that knows the crash connectors (to validate documents)."""
    import crash_plugin

    registry = Registry()
    load_builtins(registry)
    register_module(registry, crash_plugin)
    return RunService(store, registry)


@pytest.fixture
def files(tmp_path: Path) -> Files:
    """The external counter and markers."""
    folder = tmp_path / "crash"
    folder.mkdir()
    return Files(folder)


@pytest.fixture
async def workers() -> Any:
    """Collects worker processes; whatever is still alive at the end is stopped."""
    started: list[WorkerProcess] = []
    yield started
    for worker in started:
        await worker.stop()


async def start_runs(runs: RunService, first: int, count: int = RUNS) -> dict[str, int]:
    """Start ``count`` chain runs; return ``{run id: n}``."""
    doc = sequential_workflow(len(NODES))
    started = {}
    for n in range(first, first + count):
        result = await runs.start(Caller.system(), doc, {"n": n})
        started[result.run.id] = n
    return started


def spawn(
    workers: list[WorkerProcess],
    name: str,
    db: tuple[str, str],
    files: Files,
    **env: str,
) -> WorkerProcess:
    worker = WorkerProcess(name, db, files, env)
    workers.append(worker)
    return worker


SCENARIOS = {
    # SIGKILL inside the claim transaction, before it commits (2nd claim: a later batch).
    "claim": {"FLOWPLANE_CRASH_AT": "claim:2"},
    # kill -9 while node c's connector runs, before its side effect.
    "connector": {"CRASH_HOLD_NODE": "c", "CRASH_HOLD": "before"},
    # kill -9 after node c's side effect, before its completion is attempted.
    "after-effect": {"CRASH_HOLD_NODE": "c", "CRASH_HOLD": "after"},
    # SIGKILL inside the 8th completion transaction, before it commits.
    "complete": {"FLOWPLANE_CRASH_AT": "complete:8"},
    # SIGKILL right after the 8th completion committed.
    "after-complete": {"FLOWPLANE_CRASH_AT": "after-complete:8"},
}


@pytest.mark.parametrize("scenario", list(SCENARIOS))
async def test_kill_9_then_restart_recovers_every_run_exactly_once(
    scenario: str,
    db: tuple[str, str],
    store: Store,
    runs: RunService,
    files: Files,
    workers: list[WorkerProcess],
) -> None:
    started = await start_runs(runs, first=100)
    first = spawn(workers, "A", db, files, **SCENARIOS[scenario])

    if scenario == "claim":
        # The first claim takes every root; successors are handed off without a claim
        # query, so the 2nd claim is the one for the second batch.
        await wait_terminal(store, list(started), timeout=30)
        batch = await start_runs(runs, first=200)
        assert await first.wait_exit(20) == -signal.SIGKILL, first.stderr()
        started.update(batch)
    elif scenario in ("connector", "after-effect"):

        async def all_holding() -> bool:
            assert first.alive(), first.stderr()
            return len(files.marker_lines()) == RUNS

        await until(all_holding, 30, "node c did not start in every run")
        await first.kill9()
    else:
        assert await first.wait_exit(30) == -signal.SIGKILL, first.stderr()

    in_flight = await in_progress(store)
    before = await node_runs(store)
    if scenario == "claim":
        # The claim never committed: the second batch is untouched.
        assert in_flight == set()
        for key, row in before.items():
            if key[0] in batch and key[1] == "a":
                assert (row["status"], row["attempt"], row["lease_epoch"]) == ("ready", 0, 0)
        assert not any(k[0] in batch for k in files.effect_counts())
    elif scenario in ("connector", "after-effect"):
        assert in_flight == {(run_id, "c", 0) for run_id in started}
    else:
        assert in_flight, "the kill should leave node runs in flight"

    second = spawn(workers, "B", db, files)
    await wait_terminal(store, list(started))
    await second.stop()

    rows = await run_rows(store, list(started))
    for run_id, n in started.items():
        assert rows[run_id]["status"] == "finished", rows[run_id]
        assert rows[run_id]["output"]["d"]["value"] == n + len(NODES) - 1
    await check_invariants(store, list(started))
    check_side_effects(scenario, files, started, in_flight)
    attempts = await attempts_by_node(store)
    for key in (k for k in before if k[0] in started):
        statuses = [a["status"] for a in attempts[key]]
        assert statuses == (["lost", "finished"] if key in in_flight else ["finished"]), (
            key,
            attempts[key],
        )


def check_side_effects(
    scenario: str, files: Files, started: dict[str, int], in_flight: set[NodeKey]
) -> None:
    """Only node runs in flight at the kill may have run their side effect twice."""
    counts = files.effect_counts()
    keys = {(run_id, node, 0) for run_id in started for node in NODES}
    assert set(counts) == keys
    repeated = {k for k, n in counts.items() if n > 1}
    assert all(n <= 2 for n in counts.values()), counts
    assert repeated <= in_flight, repeated - in_flight
    if scenario == "connector":
        assert repeated == set()
    elif scenario == "after-effect":
        assert repeated == in_flight
    elif scenario == "complete":
        # The node whose completion was killed had done its side effect.
        assert repeated


async def test_zombie_completion_is_fenced_off(
    db: tuple[str, str],
    store: Store,
    runs: RunService,
    files: Files,
    workers: list[WorkerProcess],
) -> None:
    """A paused worker that wakes after its lease was taken over cannot complete the node.

    Worker A runs ``work`` and gets stuck (its event loop blocked, then SIGSTOP): no
    heartbeats. Worker B reaps the expired lease and completes ``work``. A resumes, its
    connector returns and A tries to complete: the epoch fence rejects it. The run waits on
    a signal meanwhile, so the rejection is the fence, not the run having ended.
    """
    doc = {
        "name": "zombie",
        "nodes": [
            {"id": "work", "type": "crash.effect", "params": {"value": 1}},
            {"id": "gate", "type": "wait.signal", "params": {"name": "go"}},
            {
                "id": "end",
                "type": "util.set",
                "needs": ["work", "gate"],
                "params": {"value": "{{ nodes.work.output }}"},
            },
        ],
    }
    run_id = (await runs.start(Caller.system(), doc)).run.id
    work: NodeKey = (run_id, "work", 0)
    a = spawn(workers, "A", db, files, CRASH_BLOCK_NODE="work", FLOWPLANE_LEASE_SECONDS="1")

    def markers() -> list[str]:
        return [m["kind"] for m in files.marker_lines()]

    async def a_in_work() -> bool:
        assert a.alive(), a.stderr()
        gate = (await node_runs(store))[(run_id, "gate", 0)]
        return markers() == ["entered"] and gate["status"] == "waiting-event"

    await until(a_in_work, 30, "worker A did not reach the node")
    files.block.touch()

    async def a_stuck() -> bool:
        return markers() == ["entered", "blocking"]

    await until(a_stuck, 10, "worker A did not block")
    a.signal(signal.SIGSTOP)
    b = spawn(workers, "B", db, files)

    async def b_completed_work() -> bool:
        return bool((await node_runs(store))[work]["status"] == "finished")

    await until(b_completed_work, 30, f"worker B did not take over:\n{b.stderr()}")
    files.release.touch()
    a.signal(signal.SIGCONT)

    def a_completions() -> list[dict[str, Any]]:
        return [r for r in files.trace_lines() if r["worker"] == "A" and r["node"] == "work"]

    async def a_tried() -> bool:
        return bool(a_completions())

    await until(a_tried, 20, f"worker A never tried to complete:\n{a.stderr()}")
    assert [r["accepted"] for r in a_completions()] == [False]
    b_done = [r for r in files.trace_lines() if r["worker"] == "B" and r["node"] == "work"]
    assert [r["accepted"] for r in b_done] == [True]
    assert b_done[0]["epoch"] > a_completions()[0]["epoch"]

    await runs.signal(Caller.system(), run_id, "go")
    await wait_terminal(store, [run_id])
    run = (await run_rows(store, [run_id]))[run_id]
    assert run["status"] == "finished"
    assert run["output"] == {"end": {"value": 1, "worker": "B"}}
    attempts = (await attempts_by_node(store))[work]
    # Worker ids are "host:pid:suffix".
    assert [(x["status"], int(x["worker"].split(":")[1])) for x in attempts] == [
        ("lost", a.pid),
        ("finished", b.pid),
    ]
    await check_invariants(store, [run_id])
    # At least once: both workers performed the side effect; only B's output was recorded.
    assert files.effect_counts()[work] == 2


FAN_ITEMS = 40


async def test_kill_9_inside_a_group_of_foreach_items_recovers_each_item_once(
    db: tuple[str, str],
    store: Store,
    runs: RunService,
    files: Files,
    workers: list[WorkerProcess],
) -> None:
    """SIGKILL inside the transaction recording a group of a foreach's items (the 3rd
    completion: the expansion, the first item alone, then the items that completed
    meanwhile, together): none of that group is recorded, every item is recovered and
    recorded exactly once, and only items in flight at the kill ran again."""
    doc = {
        "name": "crash-fan",
        "nodes": [
            {
                "id": "fan",
                "type": "crash.effect",
                "foreach": list(range(FAN_ITEMS)),
                "params": {"value": "{{ item }}"},
            },
            {"id": "join", "type": "crash.effect", "needs": ["fan"], "params": {"value": 1}},
        ],
    }
    run_id = (await runs.start(Caller.system(), doc)).run.id
    first = spawn(workers, "A", db, files, FLOWPLANE_CRASH_AT="complete:3")
    assert await first.wait_exit(30) == -signal.SIGKILL, first.stderr()

    in_flight = await in_progress(store)
    effects = files.effect_counts()
    # Items whose side effect happened but whose success the kill lost: the killed group
    # (and any item queued behind it). More than one: the group held several items.
    lost = {k for k in in_flight if effects.get(k) and k[2] >= 0}
    assert len(lost) > 1, (in_flight, effects)

    second = spawn(workers, "B", db, files)
    await wait_terminal(store, [run_id])
    await second.stop()

    rows = await run_rows(store, [run_id])
    assert rows[run_id]["status"] == "finished", rows[run_id]
    # check_invariants' checks, but a foreach's node-level row has no attempt of its own.
    events = await all_events(store)
    finished = collections.Counter(
        (e["run_id"], e["node_id"], e["payload"]["iteration"])
        for e in events
        if e["type"] == "NodeFinished"
    )
    assert finished == collections.Counter({k: 1 for k in (await node_runs(store))})
    seqs = [e["seq"] for e in events]
    assert seqs == list(range(1, len(seqs) + 1)), "event seq has gaps or is out of order"
    await assert_second_success_refused(store, (run_id, "fan", 0))
    counts = files.effect_counts()
    keys = {(run_id, "fan", i) for i in range(FAN_ITEMS)} | {(run_id, "join", 0)}
    assert set(counts) == keys
    repeated = {k for k, n in counts.items() if n > 1}
    assert all(n <= 2 for n in counts.values()), counts
    assert lost <= repeated <= in_flight, (lost, repeated, in_flight)
    attempts = await attempts_by_node(store)
    for key in keys:
        statuses = [a["status"] for a in attempts[key]]
        assert statuses == (["lost", "finished"] if key in in_flight else ["finished"]), (
            key,
            attempts[key],
        )
    level = (await node_runs(store))[(run_id, "fan", -1)]
    assert level["status"] == "finished"
