"""Foreach items' successes recorded in groups (one transaction per group), on both backends.

A worker records the successes of a run's items that complete while the run's previous
completion transaction is in flight together (:func:`transitions.complete_items`): each
item fenced on its own lease, one run-row lock and one frame per group. What must hold is
what one-by-one completions give: exactly one attempt and one ``NodeFinished`` per item,
nothing for an item whose lease was taken over or whose run ended, gap-free ``seq``,
frames that fold into the right states.
"""

from __future__ import annotations

import asyncio
from typing import Any

from engine_support import fast_settings, running

from flowplane.engine import transitions
from flowplane.services.caller import Caller
from flowplane.store import reads
from flowplane.store.base import Store
from flowplane.store.records import NodeRunRecord
from flowplane.store.tx import Tx

OWNER = "w-test"
ITEMS = 4


def fan_doc(items: int) -> dict[str, Any]:
    return {
        "name": "group-fan",
        "nodes": [
            {"id": "fan", "type": "test.count", "foreach": list(range(items))},
            {"id": "join", "type": "test.count", "needs": ["fan"]},
        ],
    }


def success(row: NodeRunRecord) -> transitions.Outcome:
    return transitions.Outcome(kind="success", output={"item": row.iteration})


async def expanded(store: Store, run_id: str) -> list[NodeRunRecord]:
    """Claim and expand the foreach node, then claim its items (by iteration)."""
    level = await store.transact(lambda tx: transitions.claim(tx, OWNER, 1, 60_000))
    assert [r.node_id for r in level] == ["fan"]
    expand = transitions.Outcome(kind="expand", items=list(range(ITEMS)))
    done = await store.transact(
        lambda tx: transitions.complete(tx, level[0], expand, owner=OWNER, lease_ms=60_000)
    )
    assert done.accepted
    items = await store.transact(lambda tx: transitions.claim(tx, OWNER, ITEMS, 60_000))
    assert sorted(r.iteration for r in items) == list(range(ITEMS))
    assert {r.run_id for r in items} == {run_id}
    return sorted(items, key=lambda r: r.iteration)


def group(
    rows: list[NodeRunRecord], handoff: int = 0
) -> Any:  # (a function of a transaction, for Store.transact)
    def record(tx: Tx) -> transitions.GroupCompletion:
        entries = [(row, success(row)) for row in rows]
        return transitions.complete_items(
            tx, entries, owner=OWNER, handoff=handoff, lease_ms=60_000
        )

    return record


async def test_a_group_fences_each_item_on_its_own_lease(store: Store) -> None:
    async with running(store, start_worker=False) as rt:
        run_id = (await rt.runs.start(Caller.system(), fan_doc(ITEMS))).run.id
        items = await expanded(store, run_id)
        # Item 2's lease was taken over (reaped and claimed again elsewhere): epoch + 1.
        stolen = items[2]
        await store.transact(
            lambda tx: tx.update_node_run(stolen.id, lease_epoch=stolen.lease_epoch + 1)
        )
        frame_before = (await store.read(lambda tx: tx.get_run(run_id))).frame_no

        done = await store.transact(group(items))
        assert done.accepted == [True, True, False, True]
        assert done.handoff == []

        states = await store.read(lambda tx: tx.node_states(run_id))
        assert {(s.node_id, s.iteration): s.status for s in states} == {
            ("fan", -1): "in-progress",
            ("fan", 0): "finished",
            ("fan", 1): "finished",
            ("fan", 2): "in-progress",
            ("fan", 3): "finished",
            ("join", 0): "pending",
        }
        attempts = await store.read(lambda tx: reads.attempts_of(tx, run_id))
        finished = sorted(
            a.iteration for a in attempts if a.node_id == "fan" and a.status == "finished"
        )
        assert finished == [0, 1, 3]
        # One frame for the group, with the three items' changes; it folds into the states.
        frames = await store.read(
            lambda tx: reads.frames_after(tx, run_id, after_frame_no=frame_before)
        )
        assert len(frames) == 1
        assert sorted((c["iteration"], c["status"]) for c in frames[0].changes) == [
            (0, "finished"),
            (1, "finished"),
            (3, "finished"),
        ]
        folded = await store.read(
            lambda tx: transitions.states_at_frame(tx, run_id, frames[0].frame_no)
        )
        assert [folded[("fan", i)] for i in range(ITEMS)] == [
            "finished",
            "finished",
            "in-progress",
            "finished",
        ]

        # The same group again (a retried commit that had committed): nothing twice.
        again = await store.transact(group(items))
        assert again.accepted == [False] * ITEMS
        # The item's new holder completes it: the node settles and the join is handed off.
        holder = await store.read(lambda tx: tx.node_row(run_id, "fan", 2))
        assert holder is not None
        last = await store.transact(group([holder], handoff=1))
        assert last.accepted == [True]
        assert [(r.node_id, r.iteration) for r in last.handoff] == [("join", 0)]

        attempts = await store.read(lambda tx: reads.attempts_of(tx, run_id))
        finished = sorted(
            a.iteration for a in attempts if a.node_id == "fan" and a.status == "finished"
        )
        assert finished == list(range(ITEMS))
        level = await store.read(lambda tx: tx.node_row(run_id, "fan", -1))
        assert level is not None and level.status == "finished"
        assert level.output == [{"item": i} for i in range(ITEMS)]
        events = await rt.runs.events(Caller.system(), run_id)
        item_events = sorted(
            e["iteration"]
            for e in events
            if e["type"] == "NodeFinished" and e.get("nodeId") == "fan"
        )
        assert item_events == [-1, *range(ITEMS)]
        seqs = [e["seq"] for e in events]
        assert seqs == sorted(seqs)


async def test_a_group_of_an_ended_run_records_nothing(store: Store) -> None:
    async with running(store, start_worker=False) as rt:
        run_id = (await rt.runs.start(Caller.system(), fan_doc(ITEMS))).run.id
        items = await expanded(store, run_id)
        await store.transact(lambda tx: transitions.cancel(tx, run_id))

        done = await store.transact(group(items))
        assert done.accepted == [False] * ITEMS
        attempts = await store.read(lambda tx: reads.attempts_of(tx, run_id))
        assert not [
            a
            for a in attempts
            if a.node_id == "fan" and a.iteration >= 0 and a.status == "finished"
        ]
        states = await store.read(lambda tx: tx.node_states(run_id, ["fan"]))
        assert all(s.status != "finished" for s in states)


async def test_a_worker_groups_a_fan_out_and_records_each_item_once(store: Store) -> None:
    items = 60
    async with running(store, settings=fast_settings(worker_concurrency=16)) as rt:
        run_id = (await rt.runs.start(Caller.system(), fan_doc(items))).run.id
        run = await rt.runs.wait(Caller.system(), run_id, timeout=30)
        assert run.status == "finished"
        assert rt.probe.calls == {
            **{f"fan[{i}]": 1 for i in range(items)},
            "join[0]": 1,
        }
        attempts = await store.read(lambda tx: reads.attempts_of(tx, run_id))
        per_item = sorted((a.iteration, a.status) for a in attempts if a.node_id == "fan")
        assert [p for p in per_item if p[0] >= 0] == [(i, "finished") for i in range(items)]
        events = await rt.runs.events(Caller.system(), run_id)
        done = sorted(
            e["iteration"]
            for e in events
            if e["type"] == "NodeFinished" and e.get("nodeId") == "fan"
        )
        assert done == [-1, *range(items)]
        seqs = await store.read(lambda tx: [e.seq for e in reads.events_after(tx, limit=1_000_000)])
        assert seqs == list(range(1, len(seqs) + 1))
        frames = await store.read(lambda tx: reads.frames_after(tx, run_id, limit=10_000))
        assert [f.frame_no for f in frames] == list(range(1, len(frames) + 1))
        # Items were grouped: some frame finishes several of them at once.
        per_frame = [
            sum(
                1
                for c in f.changes
                if c["nodeId"] == "fan" and c["iteration"] >= 0 and c["status"] == "finished"
            )
            for f in frames
        ]
        assert sum(per_frame) == items
        assert max(per_frame) > 1, per_frame
        folded = await store.read(
            lambda tx: transitions.states_at_frame(tx, run_id, frames[-1].frame_no)
        )
        assert all(folded[("fan", i)] == "finished" for i in range(items))


async def test_a_group_hands_the_next_ready_items_to_its_worker(store: Store) -> None:
    async with running(store, start_worker=False) as rt:
        run_id = (await rt.runs.start(Caller.system(), fan_doc(6))).run.id
        level = await store.transact(lambda tx: transitions.claim(tx, OWNER, 1, 60_000))
        expand = transitions.Outcome(kind="expand", items=list(range(6)))
        await store.transact(
            lambda tx: transitions.complete(tx, level[0], expand, owner=OWNER, lease_ms=60_000)
        )
        first = await store.transact(lambda tx: transitions.claim(tx, OWNER, 2, 60_000))
        assert len(first) == 2
        frame_before = (await store.read(lambda tx: tx.get_run(run_id))).frame_no

        done = await store.transact(group(first, handoff=3))
        assert done.accepted == [True, True]
        handed = done.handoff
        assert len(handed) == 3
        taken = {r.iteration for r in first}
        assert {r.iteration for r in handed}.isdisjoint(taken)
        assert all(
            (r.node_id, r.status, r.lease_owner, r.attempt) == ("fan", "in-progress", OWNER, 1)
            for r in handed
        )
        states = await store.read(lambda tx: tx.node_states(run_id, ["fan"]))
        by_iteration = {s.iteration: s.status for s in states}
        assert sorted(by_iteration.values()).count("ready") == 1
        # The finishes and the hand-off share the group's frame; NodeStarted for each.
        frames = await store.read(
            lambda tx: reads.frames_after(tx, run_id, after_frame_no=frame_before)
        )
        assert len(frames) == 1
        assert sorted((c["iteration"], c["status"]) for c in frames[0].changes) == sorted(
            [(r.iteration, "finished") for r in first]
            + [(r.iteration, "in-progress") for r in handed]
        )
        events = await rt.runs.events(Caller.system(), run_id)
        started = [e["iteration"] for e in events if e["type"] == "NodeStarted"]
        assert sorted(started) == sorted([-1, *taken, *(r.iteration for r in handed)])

        # The handed-off items complete in their turn; the last one is claimed as usual.
        rest = await store.transact(group(handed))
        assert rest.accepted == [True] * 3
        last = await store.transact(lambda tx: transitions.claim(tx, OWNER, 4, 60_000))
        assert [(r.node_id, r.iteration >= 0) for r in last] == [("fan", True)]
        end = await store.transact(group(last, handoff=1))
        assert [(r.node_id, r.iteration) for r in end.handoff] == [("join", 0)]
        attempts = await store.read(lambda tx: reads.attempts_of(tx, run_id))
        finished = sorted(a.iteration for a in attempts if a.node_id == "fan")
        assert finished == list(range(6))


async def test_a_cancel_during_a_grouped_fan_out_fences_what_follows(store: Store) -> None:
    items = 2000
    async with running(store, settings=fast_settings(worker_concurrency=16)) as rt:
        run_id = (await rt.runs.start(Caller.system(), fan_doc(items))).run.id

        async def finished_items() -> int:
            states = await store.read(lambda tx: tx.node_states(run_id, ["fan"]))
            return sum(1 for s in states if s.iteration >= 0 and s.status == "finished")

        while await finished_items() < 40:
            await asyncio.sleep(0.01)
        await rt.runs.cancel(Caller.system(), run_id)
        run = await rt.runs.wait(Caller.system(), run_id, timeout=30)
        assert run.status == "cancelled"
        await asyncio.sleep(0.5)  # completions in flight at the cancel are recorded (or not)

        done = await finished_items()
        assert 40 <= done < items
        attempts = await store.read(lambda tx: reads.attempts_of(tx, run_id))
        finished = [a.iteration for a in attempts if a.node_id == "fan" and a.status == "finished"]
        assert sorted(finished) == sorted(set(finished)) and len(finished) == done
        events = await store.read(lambda tx: reads.events_after(tx, run_id=run_id, limit=100_000))
        cancelled = next(e.seq for e in events if e.type == "RunCancelled")
        late = [
            e for e in events if e.seq > cancelled and e.type in ("NodeFinished", "NodeStarted")
        ]
        assert late == []
        item_events = [
            e.payload["iteration"]
            for e in events
            if e.type == "NodeFinished" and e.node_id == "fan"
        ]
        assert sorted(item_events) == sorted(finished)
        seqs = [e.seq for e in events]
        assert seqs == sorted(seqs)
