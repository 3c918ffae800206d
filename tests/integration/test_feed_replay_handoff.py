"""A subscriber that joins a shared replay read must not miss the events the tail offered
while it was stale (the read must have begun after it last took the tail's offers)."""

from __future__ import annotations

import asyncio
import threading

from flowplane.services.feed import EventFeed, namespace_filter
from flowplane.store import reads
from flowplane.store.base import Store
from flowplane.store.tx import Tx


async def test_joined_read_after_stale_window_loses_an_event(store: Store, monkeypatch) -> None:
    def append(tx: Tx, n: int, start: int = 0) -> None:
        for i in range(start, start + n):
            tx.event("r-gap", "hist", "NodeLog", None, message=f"m{i}")

    await store.transact(lambda tx: append(tx, 120))
    real = reads.events_after
    snapshot_taken = threading.Event()
    release = threading.Event()

    def gated(tx, **kw):
        out = real(tx, **kw)
        if (
            kw.get("namespaces") == ("hist",)
            and kw.get("after_seq") == 50
            and kw.get("limit") == 100
        ):
            snapshot_taken.set()
            release.wait(10)
        return out

    monkeypatch.setattr(reads, "events_after", gated)
    feed = EventFeed(store, page=100, poll_seconds=0.05)
    f = namespace_filter(["hist"])
    a = feed.batches(f, 0)
    b = feed.batches(f, 0)
    ta = asyncio.ensure_future(anext(a))
    tb = asyncio.ensure_future(anext(b))
    first_a, first_b = await asyncio.wait_for(asyncio.gather(ta, tb), 10)
    assert [e["seq"] for e in first_a] == list(range(1, 51))
    assert [e["seq"] for e in first_b] == list(range(1, 51))
    # A goes on: its next page (cursor 50, 100 events) is read; B's consumer is slow.
    ta = asyncio.ensure_future(anext(a))
    while not snapshot_taken.is_set():
        await asyncio.sleep(0.01)
    # A new event commits after the read's snapshot; the tail offers it (B is stale).
    await store.transact(lambda tx: append(tx, 1, 120))
    for _ in range(200):
        if feed._position is not None and feed._position >= 121:
            break
        await asyncio.sleep(0.01)
    assert feed._position >= 121
    tb = asyncio.ensure_future(anext(b))  # B now joins the read in flight
    await asyncio.sleep(0.05)
    release.set()
    got_a = [e["seq"] for e in await asyncio.wait_for(ta, 10)]
    got_b = [e["seq"] for e in await asyncio.wait_for(tb, 10)]

    async def rest(gen, got, until):
        while got[-1] < until:
            batch = await asyncio.wait_for(anext(gen), 2)
            got.extend(e["seq"] for e in batch)
        return got

    await store.transact(lambda tx: append(tx, 1, 121))  # seq 122
    got_a = await rest(a, got_a, 122)
    got_b = await rest(b, got_b, 122)
    assert got_a == list(range(51, 123))
    assert got_b == list(range(51, 123)), f"B missed: {sorted(set(range(51, 123)) - set(got_b))}"
    await a.aclose()
    await b.aclose()
    await feed.close()
