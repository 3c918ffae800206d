"""The engine's hot path on both backends: dispatch hand-off, batched statements, fan-out."""

from __future__ import annotations

import asyncio
from typing import Any

from engine_support import fast_settings, running

from flowplane.engine import transitions
from flowplane.errors import NotFound
from flowplane.services.caller import Caller
from flowplane.store import reads
from flowplane.store.base import Store


def chain(count: int) -> dict[str, Any]:
    return {
        "name": "hot-chain",
        "nodes": [{"id": f"n{i}", "type": "test.count"} for i in range(count)],
    }


async def test_dispatch_leases_roots_to_the_local_worker(store: Store) -> None:
    async with running(store) as rt:
        await asyncio.sleep(0.1)  # the worker is running
        started = await rt.runs.start(Caller.system(), chain(3))
        run_id = started.run.id
        run = await rt.runs.wait(Caller.system(), run_id, timeout=10)
        assert run.status == "finished"
        assert rt.probe.calls == {"n0[0]": 1, "n1[0]": 1, "n2[0]": 1}
        events = await rt.runs.events(Caller.system(), run_id)
        seqs = [e["seq"] for e in events]
        assert seqs == list(range(seqs[0], seqs[0] + len(seqs)))  # gap-free, in order
        # The dispatch transaction made n0 ready and leased it: one frame, one attempt.
        first_frame = [e for e in events if e["seq"] <= _first_frame_seq(events)]
        assert [e["type"] for e in first_frame] == [
            "RunStarted",
            "NodeReady",
            "NodeStarted",
            "FrameCommitted",
        ]
        frames = await store.read(lambda tx: reads.frames_after(tx, run_id))
        assert [f.frame_no for f in frames] == list(range(1, len(frames) + 1))
        first_change = {"nodeId": "n0", "iteration": 0, "status": "in-progress", "attempt": 1}
        assert first_change in frames[0].changes
        attempts = await store.read(lambda tx: reads.attempts_of(tx, run_id))
        assert sorted((a.node_id, a.attempt) for a in attempts) == [
            ("n0", 1),
            ("n1", 1),
            ("n2", 1),
        ]


def _first_frame_seq(events: list[dict[str, Any]]) -> int:
    return next(e["seq"] for e in events if e["type"] == "FrameCommitted")


async def test_no_hand_off_without_free_slots(store: Store) -> None:
    # A full worker leaves the roots ready for a later claim; nothing is lost.
    async with running(store, settings=fast_settings(worker_concurrency=1)) as rt:
        await asyncio.sleep(0.1)  # the worker is running
        reserved = rt.worker.reserve(1)
        assert reserved == 1
        try:
            started = await rt.runs.start(Caller.system(), chain(2))
            node = await store.read(lambda tx: tx.node_row(started.run.id, "n0", 0))
            assert node is not None and node.status == "ready"
        finally:
            rt.worker.release(reserved)
        rt.worker._wake.set()
        run = await rt.runs.wait(Caller.system(), started.run.id, timeout=10)
        assert run.status == "finished"


async def test_concurrent_runs_keep_seq_gap_free(store: Store) -> None:
    async with running(store) as rt:
        started = await asyncio.gather(
            *(rt.runs.start(Caller.system(), chain(4)) for _ in range(6))
        )
        for result in started:
            run = await rt.runs.wait(Caller.system(), result.run.id, timeout=20)
            assert run.status == "finished"
        seqs = await store.read(lambda tx: [e.seq for e in reads.events_after(tx, limit=100_000)])
        assert seqs == list(range(1, len(seqs) + 1))


async def test_reads_after_rolled_back_transactions_keep_working(store: Store) -> None:
    # PostgreSQL: a rollback makes psycopg drop every prepared statement of the session.
    async with running(store) as rt:
        run_id = (await rt.runs.start(Caller.system(), chain(1))).run.id
        await rt.runs.wait(Caller.system(), run_id, timeout=10)

        def missing(tx: Any) -> None:
            tx.get_run(run_id)
            raise NotFound("no")

        for _ in range(3):
            for _ in range(6):  # past psycopg's prepare threshold
                assert (await store.read(lambda tx: tx.get_run(run_id))) is not None
                await store.read(lambda tx: tx.node_rows(run_id))
            try:
                await store.read(missing)
            except NotFound:
                pass
            assert (await store.read(lambda tx: tx.get_run(run_id))).id == run_id


async def test_fan_out_with_max_parallel_and_a_failed_item(store: Store) -> None:
    async with running(store) as rt:
        doc = {
            "name": "hot-fan",
            "nodes": [
                {
                    "id": "fan",
                    "type": "util.fail",
                    "foreach": list(range(7)),
                    "max_parallel": 3,
                    "params": {"retryable": False},
                    "when": "{{ true }}",
                },
            ],
        }
        run_id = (await rt.runs.start(Caller.system(), doc)).run.id
        run = await rt.runs.wait(Caller.system(), run_id, timeout=20)
        assert run.status == "failed"
        level = await store.read(lambda tx: tx.node_row(run_id, "fan", -1))
        assert level is not None and level.status == "failed"
        assert level.error["code"] == "foreach_item_failed"
        assert level.error["failedIterations"] == list(range(7))
        items = await store.read(lambda tx: tx.node_states(run_id, ["fan"]))
        failed = sorted(s.iteration for s in items if s.status == "failed")
        assert failed == [-1, *range(7)]


async def test_claim_work_reports_next_due_time(store: Store) -> None:
    async with running(store, start_worker=False) as rt:
        run_id = (await rt.runs.start(Caller.system(), chain(1))).run.id
        work = await store.transact(lambda tx: transitions.claim_work(tx, "w", 4, 60_000))
        assert [r.run_id for r in work.rows] == [run_id]
        assert set(work.runs) == {run_id}
        assert work.next_due_ms is None  # nothing else claimable


async def test_hand_off_leased_with_the_completion_is_fenced(store: Store) -> None:
    # A node whose successors wait on it alone leases them in its completion's first
    # statement (PostgreSQL): only when that completion is accepted.
    async with running(store, start_worker=False) as rt:
        doc = {
            "name": "hot-fenced",
            "nodes": [
                {"id": "a", "type": "util.noop"},
                {"id": "b", "type": "util.noop", "needs": ["a"]},
                {"id": "c", "type": "util.noop", "needs": ["a"]},
            ],
        }
        run_id = (await rt.runs.start(Caller.system(), doc)).run.id
        first = await store.transact(lambda tx: transitions.claim(tx, "zombie", 1, 1))
        await asyncio.sleep(0.05)
        assert await store.transact(transitions.reap) == 1
        second = await store.transact(lambda tx: transitions.claim(tx, "live", 1, 60_000))
        ok = transitions.Outcome(kind="success", output={"by": "live"})

        late = await store.transact(
            lambda tx: transitions.complete(tx, first[0], ok, owner="zombie", handoff=2)
        )
        assert late.accepted is False and late.handoff == []
        states = await store.read(lambda tx: tx.node_states(run_id, ["b", "c"]))
        assert {s.status for s in states} == {"pending"}

        done = await store.transact(
            lambda tx: transitions.complete(tx, second[0], ok, owner="live", handoff=1)
        )
        assert done.accepted is True and done.ready == 2
        assert [(r.node_id, r.attempt, r.lease_owner) for r in done.handoff] == [("b", 1, "live")]
        rows = {r.node_id: r for r in await store.read(lambda tx: tx.node_rows(run_id))}
        assert (rows["b"].status, rows["b"].lease_owner) == ("in-progress", "live")
        assert (rows["c"].status, rows["c"].lease_owner) == ("ready", None)
        types = [
            (e["type"], e.get("nodeId")) for e in await rt.runs.events(Caller.system(), run_id)
        ]
        assert ("NodeStarted", "b") in types and ("NodeStarted", "c") not in types
        assert types.index(("NodeReady", "b")) < types.index(("NodeStarted", "b"))


async def test_no_hand_off_into_a_cancelled_run(store: Store) -> None:
    async with running(store, start_worker=False) as rt:
        run_id = (await rt.runs.start(Caller.system(), chain(2))).run.id
        claimed = await store.transact(lambda tx: transitions.claim(tx, "w", 1, 60_000))
        await rt.runs.cancel(Caller.system(), run_id)
        ok = transitions.Outcome(kind="success", output=None)
        result = await store.transact(
            lambda tx: transitions.complete(tx, claimed[0], ok, owner="w", handoff=1)
        )
        assert result.accepted is False and result.handoff == []
        n1 = await store.read(lambda tx: tx.node_row(run_id, "n1", 0))
        assert n1 is not None and n1.status != "in-progress" and n1.lease_owner is None


async def test_no_hand_off_from_a_completion_that_did_not_apply(store: Store) -> None:
    # The node run is already finished under the same epoch (a duplicate completion):
    # the lease taken ahead must not apply although status and epoch match.
    async with running(store, start_worker=False) as rt:
        run_id = (await rt.runs.start(Caller.system(), chain(2))).run.id
        claimed = await store.transact(lambda tx: transitions.claim(tx, "w", 1, 60_000))
        row = claimed[0]
        await store.transact(
            lambda tx: tx.update_node_run(row.id, status="finished", finished_at_ms=1)
        )
        ok = transitions.Outcome(kind="success", output=None)
        result = await store.transact(
            lambda tx: transitions.complete(tx, row, ok, owner="w", handoff=1)
        )
        assert result.accepted is False and result.handoff == []
        n1 = await store.read(lambda tx: tx.node_row(run_id, "n1", 0))
        assert n1 is not None and (n1.status, n1.lease_owner) == ("pending", None)


async def test_a_run_output_holds_every_leaf(store: Store) -> None:
    """A run's output is its leaves' outputs, read by one prepared statement for up to
    16 leaves and by the general one beyond (both checked)."""
    async with running(store) as rt:
        for count in (1, 3, 16, 17, 24):
            workflow = {
                "name": f"leaves-{count}",
                "nodes": [
                    {"id": "root", "type": "test.count"},
                    *(
                        {
                            "id": f"leaf{i}",
                            "type": "test.count",
                            "params": {"key": f"{count}.{i}", "value": i},
                            "needs": ["root"],
                        }
                        for i in range(count)
                    ),
                ],
            }
            started = await rt.runs.start(Caller.system(), workflow)
            run = await rt.runs.wait(Caller.system(), started.run.id, timeout=20)
            assert run.status == "finished"
            assert run.output == {
                f"leaf{i}": {"key": f"{count}.{i}", "calls": 1, "value": i} for i in range(count)
            }
