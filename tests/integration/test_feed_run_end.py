"""A run's stream ends after the run's terminal event without reading the table when the
feed's tail saw the run from its start to its end (``EventFeed.recent``); a run changed by
hand since (forgotten: resumed, deleted, ...) is asked of the table, as before. Both
backends; every stream gets the run's events once and in order either way."""

from __future__ import annotations

import asyncio
from typing import Any

from flowplane.services.feed import EventFeed, run_filter
from flowplane.store.base import Store
from flowplane.store.tx import Tx


class Reads:
    """Counts the feed's reads of whether a run's stream is complete (its ``settled``
    read transactions; the tail's own reads are not counted)."""

    def __init__(self, store: Store) -> None:
        self.count = 0
        self._read = store.read

        async def counted(fn: Any, *args: Any, **kwargs: Any) -> Any:
            if getattr(fn, "__name__", "") == "settled":
                self.count += 1
            return await self._read(fn, *args, **kwargs)

        store.read = counted  # type: ignore[method-assign]


def _event(run_id: str, type_: str, node: str | None = None) -> Any:
    def fn(tx: Tx) -> None:
        tx.event(run_id, "ends", type_, node)

    return fn


async def _follow(feed: EventFeed, run_id: str, got: list[str]) -> None:
    async for batch in feed.batches(run_filter(run_id), 0, until_terminal=True):
        got += [event["type"] for event in batch]


async def _until(check: Any) -> None:
    for _ in range(500):
        if check():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("timed out")


async def _run_to_its_end(store: Store, feed: EventFeed, run_id: str, forget: bool) -> int:
    """Start a run, follow its stream, finish the run; the feed's reads of whether the
    stream is complete, once the terminal event was handed out."""
    reads = Reads(store)
    got: list[str] = []
    await store.transact(_event(run_id, "RunStarted"))
    await _until(lambda: feed.recent.get(run_id) is not None)  # the tail saw the start
    stream = asyncio.create_task(_follow(feed, run_id, got))
    await store.transact(_event(run_id, "NodeFinished", "a"))
    await _until(lambda: len(got) == 2)  # the stream has started and is live
    if forget:
        feed.recent.forget(run_id)  # what a run-changed notification does
    before = reads.count
    await store.transact(_event(run_id, "RunFinished"))
    await asyncio.wait_for(stream, 10)
    assert got == ["RunStarted", "NodeFinished", "RunFinished"]
    return reads.count - before


async def test_a_run_seen_from_start_to_end_ends_its_stream_without_a_read(store: Store) -> None:
    feed = EventFeed(store, poll_seconds=5)
    try:
        await feed.head()
        # Another stream keeps the tail following the table throughout.
        keep = asyncio.create_task(_follow(feed, "keep-alive", []))
        await asyncio.sleep(0.1)
        assert await _run_to_its_end(store, feed, "end-1", forget=False) == 0
        assert await _run_to_its_end(store, feed, "end-2", forget=True) >= 1  # the table says
        keep.cancel()
    finally:
        await feed.close()
