"""Review: one item whose output the database refuses fails its whole group."""
from __future__ import annotations

import pytest
from engine_support import running
from test_foreach_groups import ITEMS, OWNER, expanded, fan_doc

from flowplane.engine import transitions
from flowplane.services.caller import Caller
from flowplane.store.base import Store


async def test_one_bad_item_sinks_its_group(store: Store) -> None:
    async with running(store, start_worker=False) as rt:
        run_id = (await rt.runs.start(Caller.system(), fan_doc(ITEMS))).run.id
        items = await expanded(store, run_id)
        outputs = [{"item": r.iteration} for r in items]
        outputs[2] = {"item": "a\x00b"}  # a NUL: PostgreSQL's jsonb refuses it
        entries = [
            (r, transitions.Outcome(kind="success", output=o)) for r, o in zip(items, outputs)
        ]
        try:
            await store.transact(
                lambda tx: transitions.complete_items(tx, entries, owner=OWNER, lease_ms=60_000)
            )
        except Exception as exc:
            print("GROUP FAILED:", type(exc).__name__, exc)
        else:
            pytest.skip("backend accepted the NUL")
        rows = await store.read(lambda tx: tx.node_runs_of(run_id) if hasattr(tx, "node_runs_of") else None)
        from flowplane.store import reads
        nodes = await store.read(lambda tx: reads.node_runs(tx, run_id))
        print([(n.node_id, n.iteration, n.status.value) for n in nodes])
        finished = [n.iteration for n in nodes if n.node_id == "fan" and n.status.value == "finished"]
        # items 0, 1, 3 succeeded but nothing of theirs was recorded
        assert finished == [-1] or finished == [], finished
        # alone, the good ones are recorded
        for i in (0, 1, 3):
            one = await store.transact(
                lambda tx, i=i: transitions.complete(tx, items[i], entries[i][1], owner=OWNER, lease_ms=60_000)
            )
            assert one.accepted


async def test_a_worker_records_the_good_items_of_a_group_with_a_bad_one(store: Store) -> None:
    """One item whose output the database refuses (a NUL on PostgreSQL) stays unrecorded;
    the items that complete in the same group are recorded once each."""
    import asyncio

    from engine_support import fast_settings

    from flowplane.store import reads

    items = ["ok"] * 40
    items[7] = "bad"
    doc = {
        "name": "group-poison",
        "nodes": [
            {"id": "fan", "type": "test.count", "foreach": items, "params": {"value": "{{ '\\u0000' if item == 'bad' else item }}"}},
        ],
    }
    async with running(store, settings=fast_settings(worker_concurrency=16, lease_seconds=30)) as rt:
        run_id = (await rt.runs.start(Caller.system(), doc)).run.id
        for _ in range(100):
            nodes = await store.read(lambda tx: reads.node_runs(tx, run_id))
            fan = {n.iteration: n.status.value for n in nodes if n.node_id == "fan" and n.iteration >= 0}
            if len(fan) == 40 and sum(s == "finished" for s in fan.values()) >= 39:
                break
            await asyncio.sleep(0.1)
        print(fan)
        good = [i for i in range(40) if i != 7]
        assert all(fan.get(i) == "finished" for i in good), fan
        assert all(rt.probe.calls[f"fan[{i}]"] == 1 for i in good), rt.probe.calls
