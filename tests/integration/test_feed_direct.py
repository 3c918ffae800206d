"""The event feed's direct writes: the tail writes a waiting subscriber's live events to its
sink (a socket, in the API) itself, and falls back to the subscriber's queue when the sink
refuses (a slow or gone client).

Checked on both backends against the table while producers commit: every event exactly
once and in ``seq`` order across direct writes and the stream's own batches; a subscriber
whose sink refuses holds at most its buffer and catches up from the table; closing a
waiting stream ends it.
"""

from __future__ import annotations

import asyncio
import json
import random
from collections.abc import Callable, Hashable, Sequence

from flowplane.services.feed import EventFeed, FeedBatches, namespace_filter
from flowplane.services.feed_pages import FeedEvent
from flowplane.store import reads
from flowplane.store.base import Store
from flowplane.store.tx import Tx


class ListSink:
    """A sink that records the seqs written to it; ``accept()`` says whether it takes a
    write (``False``: the client is slow)."""

    key: Hashable = ("test", False)
    keepalive = b"[]"
    counter = None

    def __init__(self, log: list[int], accept: Callable[[], bool] = lambda: True) -> None:
        self.log = log
        self.accept = accept
        self.writes = 0

    def encode(self, events: Sequence[FeedEvent]) -> bytes:
        return json.dumps([event["seq"] for event in events]).encode()

    def write(self, data: bytes) -> bool:
        if not self.accept():
            return False
        self.log.extend(json.loads(data))
        self.writes += 1
        return True


async def _produce(store: Store, namespace: str, count: int, run_id: str = "r1") -> None:
    for i in range(count):

        def append(tx: Tx, i: int = i) -> None:
            tx.event(run_id, namespace, "NodeLog", None, message=f"m{i}")

        await store.transact(append)
        if i % 5 == 0:
            await asyncio.sleep(0.002)


async def _table(store: Store, namespace: str, after: int = 0) -> list[int]:
    events = await store.read(
        lambda tx: reads.events_after(tx, namespaces=[namespace], after_seq=after, limit=100_000)
    )
    return [event.seq for event in events]


async def _consume(
    stream: FeedBatches,
    log: list[int],
    until: Callable[[], bool],
    rng: random.Random | None = None,
) -> None:
    """Take the stream's own batches into ``log`` (where the direct writes go too); with
    ``rng``, now and then slowly (its queue overflows: it re-reads the table)."""
    while not until():
        batch = await asyncio.wait_for(anext(stream), 30)
        log.extend(event["seq"] for event in batch)
        if rng is not None and rng.random() < 0.2:
            await asyncio.sleep(0.05)


async def test_direct_writes_keep_order_without_gaps(store: Store) -> None:
    """Subscribers whose sinks refuse some writes, and whose streams are now and then slow
    (they overflow and re-read the table), get every event once, in order: direct writes,
    queued batches and replays interleave exactly."""
    await _produce(store, "d", 30)
    feed = EventFeed(store, batch=16, buffer=4, poll_seconds=0.05)
    rng = random.Random(3)
    starts = [0, 10, 25]
    logs: list[list[int]] = [[] for _ in starts]
    sinks = [ListSink(log, lambda: rng.random() < 0.7) for log in logs]
    streams = [feed.batches(namespace_filter(["d"]), after) for after in starts]
    for stream, sink in zip(streams, sinks, strict=True):
        stream.attach(sink)
    producer = asyncio.create_task(_produce(store, "d", 120))
    done = asyncio.Event()
    consumers = [
        asyncio.create_task(_consume(stream, log, done.is_set, rng))
        for stream, log in zip(streams, logs, strict=True)
    ]
    await producer
    head = (await _table(store, "d"))[-1]
    for _ in range(1500):  # 30 s at most, for a loaded machine
        if all(log and log[-1] >= head for log in logs):
            break
        await asyncio.sleep(0.02)
    done.set()
    for consumer in consumers:
        consumer.cancel()
    await asyncio.gather(*consumers, return_exceptions=True)
    for after, log in zip(starts, logs, strict=True):
        assert log == await _table(store, "d", after)
    assert sum(sink.writes for sink in sinks) > 0  # the direct path was taken
    for stream in streams:
        await stream.aclose()
    assert feed.subscribers == 0
    await feed.close()


async def test_refusing_sink_holds_at_most_its_buffer(store: Store) -> None:
    """A subscriber whose client does not read (its sink refuses, its stream is not
    consumed) holds at most ``buffer`` events, then falls back to the table and later gets
    everything in order; a fast subscriber of the same feed is not held up by it."""
    feed = EventFeed(store, buffer=8, poll_seconds=0.05)
    head = await feed.head()
    slow_log: list[int] = []
    slow = feed.batches(namespace_filter(["s"]), head)
    slow.attach(ListSink(slow_log, lambda: False))
    fast_log: list[int] = []
    fast = feed.batches(namespace_filter(["s"]), head)
    fast.attach(ListSink(fast_log))
    await _produce(store, "s", 1)
    # Both take their first read; the slow one is then left waiting, never consumed again.
    await _consume(slow, slow_log, lambda: bool(slow_log))
    await _consume(fast, fast_log, lambda: bool(fast_log))
    fast_task = asyncio.create_task(_consume(fast, fast_log, lambda: False))
    await _produce(store, "s", 60)
    table = await _table(store, "s", head)
    for _ in range(500):
        if fast_log and fast_log[-1] >= table[-1]:
            break
        await asyncio.sleep(0.02)
    assert fast_log == table
    sub = slow.subscriber
    assert sub is not None
    assert len(sub.queue) <= 8
    assert sub.stale  # it overflowed: the table is its buffer
    await _consume(slow, slow_log, lambda: slow_log[-1] >= table[-1])
    assert slow_log == table
    fast_task.cancel()
    await asyncio.gather(fast_task, return_exceptions=True)
    await slow.aclose()
    await fast.aclose()
    await feed.close()


async def test_closing_a_waiting_stream_ends_it(store: Store) -> None:
    """A stream that waits while the tail writes for it ends when closed (its client
    left), and leaves the feed."""
    feed = EventFeed(store, poll_seconds=0.05)
    log: list[int] = []
    stream = feed.batches(namespace_filter(["c"]), await feed.head())
    stream.attach(ListSink(log))
    waiter = asyncio.ensure_future(anext(stream))
    for _ in range(200):
        if stream.subscriber is not None and stream.subscriber.waiting:
            break
        await asyncio.sleep(0.01)
    await _produce(store, "c", 3)
    for _ in range(200):
        if len(log) == 3:
            break
        await asyncio.sleep(0.02)
    assert len(log) == 3 and not waiter.done()  # written directly; the stream still waits
    stream.close()
    try:
        await asyncio.wait_for(waiter, 5)
        raise AssertionError("the stream went on after close()")
    except StopAsyncIteration:
        pass
    assert feed.subscribers == 0
    await feed.close()
