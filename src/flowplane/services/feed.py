"""EventFeed: one reader of the event table per process, fanning events out to live streams.

Every live stream (SSE, WebSocket subscriptions) reads the event table after its own
``seq`` and then waits for newer events. Doing that wait with one query per subscriber per
commit costs ``subscribers x commits`` queries; the feed instead runs a single *tail* that
reads each new event once (woken by the store's ``event`` notifications: in-process on
SQLite, LISTEN/NOTIFY on PostgreSQL, so events committed by a worker on another machine
arrive too) and offers it to every matching subscriber.

The table stays the source of truth. Sequence numbers are gap-free and commit-ordered (the
writer takes them from a counter row inside its transaction), which gives the hand-off rule:

1. a subscriber registers with the feed *before* it reads anything;
2. it then reads the table after its cursor (replay) and, once a read comes back short,
   takes live events from its queue, dropping any whose ``seq`` is not above its cursor.

An event the tail read before the registration was committed before it, so the replay sees
it; an event committed later is read by the tail after the registration, so it is offered.
Nothing is missed and the cursor removes the overlap: no gap, no duplicate, ``seq`` order.

Memory is bounded: each subscriber's queue holds at most ``buffer`` events. When a slow
subscriber's queue is full the feed drops the queue and marks the subscriber *stale*; it
then catches up from the table (the table is the buffer) and goes live again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any

from flowplane.errors import DatabaseUnavailable, InvalidInput, NotFound, RunNotFound
from flowplane.services.caller import Caller
from flowplane.status import TERMINAL_RUN
from flowplane.store import reads
from flowplane.store.base import Store
from flowplane.store.tx import Tx

BATCH_EVENTS = 500
"""Events read per query (tail and replay)."""
BUFFER_EVENTS = 1024
"""Live events one subscriber may hold before it falls back to reading the table."""
POLL_SECONDS = 0.5
"""Longest wait between reads of the tail when no notification arrives."""
READY_TIMEOUT_SECONDS = 30.0
"""How long a new subscriber waits for the tail to learn the newest ``seq``."""
RETRY_SECONDS = 1.0
"""Pause after a failed read of the tail (the database is away)."""
ALL_NAMESPACES = "*"
"""In a namespace stream's request: every namespace the caller sees."""
MAX_FILTER_VALUES = 64
"""The most namespaces (or event types) one stream may filter on."""
TERMINAL_EVENTS = frozenset({"RunFinished", "RunFailed", "RunCancelled", "RunTimedOut"})
"""Event types that end a run (a resumed run goes on after one)."""

_log = logging.getLogger("flowplane.feed")


@dataclass(frozen=True)
class EventFilter:
    """Which events a subscriber wants.

    Attributes:
        run_id: only this run's events.
        namespaces: only runs of these namespaces (``None``: every namespace).
        types: only these event types (``None``: every type).
    """

    run_id: str | None = None
    namespaces: tuple[str, ...] | None = None
    types: frozenset[str] | None = None

    def matches(self, event: dict[str, Any], namespace: str) -> bool:
        """Whether ``event`` (of a run in ``namespace``) passes the filter."""
        if self.run_id is not None and event.get("runId") != self.run_id:
            return False
        if self.namespaces is not None and namespace not in self.namespaces:
            return False
        return self.types is None or event.get("type") in self.types


class _Subscriber:
    """One live stream's state inside the feed."""

    def __init__(self, event_filter: EventFilter, cursor: int, buffer: int) -> None:
        self.filter = event_filter
        self.cursor = cursor
        self.buffer = buffer
        self.queue: deque[dict[str, Any]] = deque()
        # Start stale: the first thing a subscriber does is read the table.
        self.stale = True
        self.closed = False
        self.wake = asyncio.Event()

    def offer(self, event: dict[str, Any]) -> None:
        """Queue a live event (called by the tail)."""
        if self.stale:
            return  # the next table read covers it
        if len(self.queue) >= self.buffer:
            self.queue.clear()
            self.stale = True
        else:
            self.queue.append(event)
        self.wake.set()

    def close(self) -> None:
        """End the stream at the next opportunity."""
        self.closed = True
        self.wake.set()


def _tail_rows(tx: Tx, after_seq: int, limit: int) -> list[tuple[str, dict[str, Any]]]:
    events = reads.events_after(tx, after_seq=after_seq, limit=limit)
    return [(event.namespace, event.payload) for event in events]


class EventFeed:
    """The process's fan-out of committed events to live subscribers.

    Args:
        store: the store to read events from (and whose notifications wake the tail).
        batch: events per query.
        buffer: live events one subscriber may hold.
        poll_seconds: longest wait of the tail without a notification.
    """

    def __init__(
        self,
        store: Store,
        *,
        batch: int = BATCH_EVENTS,
        buffer: int = BUFFER_EVENTS,
        poll_seconds: float = POLL_SECONDS,
    ) -> None:
        self.store = store
        self.batch = batch
        self.buffer = buffer
        self.poll_seconds = poll_seconds
        self._subscribers: set[_Subscriber] = set()
        self._position: int | None = None
        self._ready = asyncio.Event()
        self._has_subscribers = asyncio.Event()
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._remove_listener: Any = None
        self._closing = False

    @property
    def subscribers(self) -> int:
        """The number of live subscribers."""
        return len(self._subscribers)

    async def for_run(
        self, caller: Caller, run_id: str, types: Sequence[str] | None = None
    ) -> EventFilter:
        """The filter of one run's events, for a caller that may read them.

        Raises:
            Forbidden: the caller is not a viewer.
            RunNotFound: no such run, or it is in a namespace the caller cannot see.
        """
        caller.require("viewer")
        namespace = await self.store.read(lambda tx: _run_namespace(tx, run_id))
        if namespace is None or not caller.can_see(namespace):
            raise RunNotFound(f"run {run_id!r} not found")
        return run_filter(run_id, types)

    def for_namespaces(
        self, caller: Caller, requested: Sequence[str], types: Sequence[str] | None = None
    ) -> EventFilter:
        """The filter of the events of whole namespaces, as far as the caller sees them.

        ``*`` means every namespace the caller sees. Namespaces the caller cannot see are
        left out; when none is left the answer is 404, as for any object of another
        namespace.

        Raises:
            Forbidden: the caller is not a viewer.
            InvalidInput: no namespace, or more than 64 namespaces or types.
            NotFound: none of the namespaces is visible.
        """
        caller.require("viewer")
        if not requested:
            raise InvalidInput("namespace is required (a name, a comma-separated list, or *)")
        if len(requested) > MAX_FILTER_VALUES:
            raise InvalidInput(f"at most {MAX_FILTER_VALUES} namespaces")
        visible = caller.visible(None if ALL_NAMESPACES in requested else requested)
        if visible is not None and not visible:
            raise NotFound("namespace not found")
        if types is not None and len(types) > MAX_FILTER_VALUES:
            raise InvalidInput(f"at most {MAX_FILTER_VALUES} event types")
        return namespace_filter(visible, types)

    async def head(self) -> int:
        """The newest committed event's ``seq`` (0 when there is none): a stream started
        after it sees only what happens from now on."""
        return await self.store.read(reads.last_seq)

    async def read(
        self, event_filter: EventFilter, after_seq: int, limit: int
    ) -> list[dict[str, Any]]:
        """Read up to ``limit`` matching events after ``after_seq`` from the table (their
        wire bodies, as the live feed delivers them)."""
        types = sorted(event_filter.types) if event_filter.types is not None else None
        events = await self.store.read(
            lambda tx: reads.events_after(
                tx,
                run_id=event_filter.run_id,
                namespaces=event_filter.namespaces,
                types=types,
                after_seq=after_seq,
                limit=limit,
            )
        )
        return [event.payload for event in events]

    async def stream(
        self, event_filter: EventFilter, after_seq: int = 0, *, until_terminal: bool = False
    ) -> AsyncIterator[dict[str, Any]]:
        """Yield matching events after ``after_seq`` in ``seq`` order, then live ones.

        With ``until_terminal`` (``run_id`` streams) the stream ends once the run is
        terminal and every one of its events has been yielded; a run that is resumed after
        a terminal event goes on. Otherwise it ends only when the feed closes.
        """
        sub = _Subscriber(event_filter, max(after_seq, 0), self.buffer)
        if self._closing:
            return
        self._subscribers.add(sub)
        self._has_subscribers.set()
        try:
            await self._started()
            check_terminal = until_terminal
            while not sub.closed:
                if sub.stale:
                    sub.stale = False
                    sub.queue.clear()
                    batch = await self.read(event_filter, sub.cursor, self.batch)
                    sub.stale = len(batch) >= self.batch
                    for event in batch:
                        sub.cursor = event["seq"]
                        yield event
                        if event["type"] in TERMINAL_EVENTS:
                            check_terminal = until_terminal
                    continue
                if sub.queue:
                    event = sub.queue.popleft()
                    if event["seq"] > sub.cursor:
                        sub.cursor = event["seq"]
                        yield event
                        if event["type"] in TERMINAL_EVENTS:
                            check_terminal = until_terminal
                    continue
                if check_terminal:
                    # Caught up after a terminal event (or at the start): done if the run is.
                    check_terminal = False
                    if await self._run_is_terminal(event_filter.run_id):
                        if not await self.read(event_filter, sub.cursor, 1):
                            return
                        sub.stale = True
                    continue
                sub.wake.clear()
                if not (sub.queue or sub.stale or sub.closed):
                    await sub.wake.wait()
        finally:
            self._subscribers.discard(sub)
            self._wake.set()

    async def close(self) -> None:
        """End every stream and stop the tail (new streams end at once)."""
        self._closing = True
        for sub in list(self._subscribers):
            sub.close()
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    # --- the tail ---------------------------------------------------------------------------

    async def _started(self) -> None:
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._tail(), name="flowplane-event-feed")
        try:
            await asyncio.wait_for(self._ready.wait(), READY_TIMEOUT_SECONDS)
        except TimeoutError:
            raise DatabaseUnavailable("the event feed could not read the event table") from None

    async def _run_is_terminal(self, run_id: str | None) -> bool:
        if run_id is None:
            return False
        run = await self.store.read(lambda tx: reads.run(tx, run_id))
        return run is None or run.status in TERMINAL_RUN

    def _on_notify(self, kind: str, _payload: str) -> None:
        if kind == "event":
            self._wake.set()

    async def _tail(self) -> None:
        self._remove_listener = self.store.add_listener(self._on_notify, kinds=("event",))
        try:
            while True:
                if not self._subscribers:
                    # Idle: forget the position, so a later start does not read the backlog.
                    self._ready.clear()
                    self._position = None
                    self._has_subscribers.clear()
                    await self._has_subscribers.wait()
                    continue
                try:
                    await self._read_new()
                except Exception as exc:
                    _log.warning("event feed read failed (%s); retrying", exc)
                    await asyncio.sleep(RETRY_SECONDS)
                    continue
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), self.poll_seconds)
        finally:
            self._remove_listener()

    async def _read_new(self) -> None:
        if self._position is None:
            # Subscribers registered before this read: their replay starts after it.
            self._position = await self.store.read(reads.last_seq)
            self._ready.set()
        while True:
            self._wake.clear()
            rows = await self.store.read(
                partial(_tail_rows, after_seq=self._position, limit=self.batch)
            )
            for namespace, event in rows:
                self._position = event["seq"]
                for sub in list(self._subscribers):
                    if sub.filter.matches(event, namespace):
                        sub.offer(event)
            if len(rows) < self.batch:
                return


def _run_namespace(tx: Tx, run_id: str) -> str | None:
    run = reads.run(tx, run_id)
    return None if run is None else run.namespace


def run_filter(run_id: str, types: Sequence[str] | None = None) -> EventFilter:
    """A filter for one run's events."""
    return EventFilter(run_id=run_id, types=frozenset(types) if types else None)


def namespace_filter(
    namespaces: Sequence[str] | None, types: Sequence[str] | None = None
) -> EventFilter:
    """A filter for the events of runs in ``namespaces`` (``None``: all namespaces)."""
    return EventFilter(
        namespaces=tuple(namespaces) if namespaces is not None else None,
        types=frozenset(types) if types else None,
    )
