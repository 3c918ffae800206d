"""A start waiting in the group commit whose request is cancelled."""

from __future__ import annotations

import asyncio
import time

from flowplane.services.group_commit import GroupCommit
from flowplane.store import reads
from flowplane.store.base import Store


async def test_cancelled_waiter(store: Store) -> None:
    if store.engine.dialect.name == "sqlite":
        import pytest

        pytest.skip("inline transactions: the loop is held while a batch commits")
    group = GroupCommit(store)

    def write(i: int, slow: bool = False):
        def fn(tx):
            if slow:
                time.sleep(0.3)
            tx.event("r-gc", "gc", "NodeLog", None, message=f"m{i}")
            return i

        return fn

    first = asyncio.ensure_future(group.transact(write(0, slow=True)))
    await asyncio.sleep(0.05)
    waiters = [asyncio.ensure_future(group.transact(write(i))) for i in (1, 2, 3)]
    await asyncio.sleep(0.01)
    waiters[1].cancel()
    got = await asyncio.wait_for(asyncio.gather(first, waiters[0], waiters[2]), 10)
    assert got == [0, 1, 3]
    events = await store.read(lambda tx: reads.events_after(tx, run_id="r-gc"))
    assert [e.payload["message"] for e in events] == ["m0", "m1", "m3"]
