"""The event feed's tail takes this process's own committed event rows instead of reading
them back; another process's commits in between (a gap in the seqs, or its NOTIFY on
PostgreSQL), and rows it could not keep, send it to the table.

Checked on both backends against the table: a stream gets every event once, in ``seq``
order, with the bodies a read of the table gives (to the byte: on PostgreSQL the stored
JSON is JSONB's normal form, so keys are reordered and some numbers rewritten), while this
process and "another process" (a second store on the same database, whose commits this
process's hooks never see) interleave commits; a payload changed by its writer after the
commit is delivered as it was committed.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from flowplane.services.feed import EventFeed, namespace_filter
from flowplane.services.feed_pages import FeedEvent
from flowplane.store import reads
from flowplane.store.base import Store
from flowplane.store.tx import Tx


async def _table(store: Store, namespace: str, after: int) -> list[dict[str, Any]]:
    events = await store.read(
        lambda tx: reads.events_after(tx, namespaces=[namespace], after_seq=after, limit=100_000)
    )
    return [event.payload for event in events]


class Follower:
    """Follows namespace ``lr`` from ``after`` (registered with the tail once started)
    until ``until`` is set and reached."""

    def __init__(self, feed: EventFeed, namespace: str, after: int) -> None:
        self.feed = feed
        self.stream = feed.batches(namespace_filter([namespace]), after)
        self.got: list[FeedEvent] = []
        self.until: int | None = None
        self.task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self.task = asyncio.create_task(self._run())
        for _ in range(200):
            if self.feed.subscribers:
                break
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.1)  # the tail follows the table

    async def _run(self) -> None:
        try:
            while self.until is None or not self.got or self.got[-1]["seq"] < self.until:
                try:
                    self.got.extend(await asyncio.wait_for(anext(self.stream), 0.5))
                except TimeoutError:
                    continue
        finally:
            await self.stream.aclose()

    async def result(self, until: int) -> list[FeedEvent]:
        self.until = until
        assert self.task is not None
        await asyncio.wait_for(self.task, 60)
        return self.got


async def test_own_and_other_commits_arrive_once_in_order(
    store: Store, db: tuple[str, str]
) -> None:
    url, schema = db
    other = await Store.open(url, schema=schema)  # "another process": no hook of ours sees it
    feed = EventFeed(store, batch=8, poll_seconds=0.05)
    try:
        after = await feed.head()

        def ours(i: int) -> Any:
            def fn(tx: Tx) -> None:
                # Two runs in one transaction (two rows), one with a frame.
                data = [i, {"k": i, "zz": {"yy": -0.0, "b": 1e16 * i}, "a": 1.5e-07}]
                tx.event(f"own-{i}", "lr", "NodeLog", "n", message=f"own {i}", data=data)
                tx.event(f"own-b-{i}", "lr", "NodeLog", None, message=f"b {i}")
                tx.change(f"own-{i}", "n", 0, "ready")

            return fn

        def theirs(i: int) -> Any:
            def fn(tx: Tx) -> None:
                tx.event(f"other-{i}", "lr", "NodeLog", None, message=f"other {i}")

            return fn

        follower = Follower(feed, "lr", after)
        await follower.start()
        for i in range(60):
            await store.transact(ours(i))
            if i % 7 == 3:
                await other.transact(theirs(i))  # a gap in this process's rows
            if i % 10 == 0:
                await asyncio.sleep(0.01)
        head = await feed.head()
        got = await follower.result(head)
        table = await _table(store, "lr", after)
        assert [event["seq"] for event in got] == [body["seq"] for body in table]
        assert [dict(event) for event in got] == table  # the bodies a read gives
        # ... to the byte: key order and number forms (JSONB's on PostgreSQL)
        assert [json.dumps(event) for event in got] == [json.dumps(body) for body in table]
        assert feed.local_takes > 0  # this process's rows were taken, not read back
    finally:
        await feed.close()
        await other.close()


async def test_a_payload_changed_after_commit_is_delivered_as_committed(store: Store) -> None:
    feed = EventFeed(store, poll_seconds=0.05)
    try:
        after = await feed.head()
        follower = Follower(feed, "mut", after)
        await follower.start()
        payload: dict[str, Any] = {"items": [1, 2]}

        def fn(tx: Tx) -> None:
            tx.event("mut-1", "mut", "NodeLog", None, message="m", data=payload)

        await store.transact(fn)
        payload["items"].append(3)  # the writer's object, changed after the commit
        payload["extra"] = True
        got = await follower.result(await feed.head())
        assert got[0]["data"] == {"items": [1, 2]}
        assert [dict(event) for event in got] == await _table(store, "mut", after)
    finally:
        await feed.close()


async def test_a_row_bigger_than_a_read_goes_through_the_table(store: Store) -> None:
    """One run's 20 events in one transaction, with reads of 8: left to the table (read a
    batch at a time), around this process's small rows."""
    feed = EventFeed(store, batch=8, poll_seconds=0.05)
    try:
        after = await feed.head()
        follower = Follower(feed, "big", after)
        await follower.start()

        def small(i: int) -> Any:
            def fn(tx: Tx) -> None:
                tx.event(f"s-{i}", "big", "NodeLog", None, message=f"s {i}")

            return fn

        def big(tx: Tx) -> None:
            for i in range(20):
                tx.event("b-1", "big", "NodeLog", None, message=f"b {i}")

        await store.transact(small(0))
        await store.transact(big)
        await store.transact(small(1))
        got = await follower.result(await feed.head())
        assert [dict(event) for event in got] == await _table(store, "big", after)
        assert len(got) == 22
    finally:
        await feed.close()


async def test_a_failing_row_hook_does_not_fail_a_committed_transaction(store: Store) -> None:
    seen: list[int] = []

    def broken(rows: list[dict[str, Any]]) -> None:
        seen.append(len(rows))
        raise RuntimeError("hook bug")

    remove = store.add_event_rows_hook(broken)
    try:

        def fn(tx: Tx) -> str:
            tx.event("hook-1", "hook", "NodeLog", None, message="kept")
            return "committed"

        assert await store.transact(fn) == "committed"
    finally:
        remove()
    assert seen == [1]
    assert [body["message"] for body in await _table(store, "hook", 0)] == ["kept"]


async def test_another_process_commit_is_read_when_its_notify_comes(
    store: Store, db: tuple[str, str]
) -> None:
    """PostgreSQL: after this process's own commits were taken, another process's commit
    (its NOTIFY, past what this process committed) is read from the table at once, not
    at the next poll (30 s here)."""
    if store.dialect != "postgresql":
        pytest.skip("SQLite: another process's commits wake nobody; the poll reads them")
    url, schema = db
    other = await Store.open(url, schema=schema)
    feed = EventFeed(store, poll_seconds=30)
    try:
        after = await feed.head()
        follower = Follower(feed, "fn", after)
        await follower.start()

        def event(run_id: str, message: str) -> Any:
            def fn(tx: Tx) -> None:
                tx.event(run_id, "fn", "NodeLog", None, message=message)

            return fn

        await store.transact(event("own-1", "own"))
        await other.transact(event("other-1", "other"))
        head = await feed.head()
        got = await asyncio.wait_for(follower.result(head), 5)
        assert [event["message"] for event in got] == ["own", "other"]
        assert feed.local_takes > 0
    finally:
        await feed.close()
        await other.close()
