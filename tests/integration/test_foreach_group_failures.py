"""A foreach group with one item the database refuses: the others are still recorded once.

A NUL character in an output is refused by PostgreSQL's ``jsonb`` (SQLite stores it, and
these tests are skipped there). A group transaction holding such an item fails as a whole;
the worker then records each item of the group alone, so only the bad item is left.
"""

from __future__ import annotations

import asyncio

import pytest
from engine_support import fast_settings, running
from test_foreach_groups import ITEMS, OWNER, expanded, fan_doc

from flowplane.engine import transitions
from flowplane.services.caller import Caller
from flowplane.store import reads
from flowplane.store.base import Store


async def test_a_refused_item_fails_its_group_transaction_and_alone_the_others_record(
    store: Store,
) -> None:
    async with running(store, start_worker=False) as rt:
        run_id = (await rt.runs.start(Caller.system(), fan_doc(ITEMS))).run.id
        items = await expanded(store, run_id)
        outputs: list[dict[str, object]] = [{"item": r.iteration} for r in items]
        outputs[2] = {"item": "a\x00b"}
        entries = [
            (r, transitions.Outcome(kind="success", output=o))
            for r, o in zip(items, outputs, strict=True)
        ]
        try:
            await store.transact(
                lambda tx: transitions.complete_items(tx, entries, owner=OWNER, lease_ms=60_000)
            )
        except Exception:
            pass
        else:
            pytest.skip("this backend stores a NUL in JSON")
        nodes = await store.read(lambda tx: reads.node_runs(tx, run_id))
        finished = [n.iteration for n in nodes if n.node_id == "fan" and n.status == "finished"]
        assert finished in ([-1], []), finished  # the failed group recorded nothing
        for i in (0, 1, 3):
            one = await store.transact(
                lambda tx, i=i: transitions.complete(
                    tx, items[i], entries[i][1], owner=OWNER, lease_ms=60_000
                )
            )
            assert one.accepted


async def test_a_worker_records_the_good_items_of_a_group_with_a_bad_one(store: Store) -> None:
    """One item whose output the database refuses stays unrecorded; the items that
    complete in the same group are recorded, each connector called once."""
    values = ["ok"] * 40
    values[7] = "bad"
    doc = {
        "name": "group-poison",
        "nodes": [
            {
                "id": "fan",
                "type": "test.count",
                "foreach": values,
                "params": {"value": "{{ '\\u0000' if item == 'bad' else item }}"},
            },
        ],
    }
    if store.dialect != "postgresql":
        pytest.skip("SQLite stores a NUL in JSON: no item is refused")
    settings = fast_settings(worker_concurrency=16, lease_seconds=30)
    async with running(store, settings=settings) as rt:
        run_id = (await rt.runs.start(Caller.system(), doc)).run.id
        fan: dict[int, str] = {}
        for _ in range(100):
            nodes = await store.read(lambda tx: reads.node_runs(tx, run_id))
            fan = {n.iteration: n.status for n in nodes if n.node_id == "fan" and n.iteration >= 0}
            if len(fan) == 40 and sum(s == "finished" for s in fan.values()) >= 39:
                break
            await asyncio.sleep(0.1)
        good = [i for i in range(40) if i != 7]
        assert all(fan.get(i) == "finished" for i in good), fan
        assert all(rt.probe.calls[f"fan[{i}]"] == 1 for i in good), rt.probe.calls
