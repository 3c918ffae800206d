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

Fan-out stays cheap per subscriber (docs/performance.md, "Event fan-out"): an event is
encoded once (:class:`~flowplane.services.feed_pages.FeedEvent`), a stream takes what one
read brought as one batch (one write), and under a stream of commits the tail reads at
most once per ``subscribers x 0.2 ms`` (20 ms at most). A stream with a :class:`Sink` (an
SSE socket) that waits with nothing queued is written by the tail itself: one write of
bytes shared by every such subscriber of the filter, no wake-up; a write the sink refuses
(slow or gone client) goes to the queue as for any subscriber. Catching up is paced so that it
cannot starve live streams or the engine sharing the process: long replay pages are read
off the loop, few at a time, shared through a byte-bounded page cache, and handed out
within a share of the loop's time (:data:`REPLAY_SHARE`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections import deque
from collections.abc import AsyncGenerator, AsyncIterator, Hashable, Iterable, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any, Protocol

from flowplane.errors import DatabaseUnavailable, InvalidInput, NotFound, RunNotFound
from flowplane.services.caller import Caller
from flowplane.services.feed_pages import FeedEvent, PageCache, feed_event, feed_events
from flowplane.services.feed_runs import TTL_SECONDS, RecentRun, RecentRuns
from flowplane.services.run_cache import RUN_CHANGED
from flowplane.status import TERMINAL_RUN
from flowplane.store import reads
from flowplane.store.base import Store
from flowplane.store.tx import Tx
from flowplane.timeouts import wait_for

BATCH_EVENTS = 500
"""Events read per query (tail and replay)."""
LOCAL_ROWS = 1024
"""Event rows this process committed that the tail has not taken yet: past it
they are dropped and the tail reads the table, as without them."""
BUFFER_EVENTS = 1024
"""Live events one subscriber may hold before it falls back to reading the table."""
POLL_SECONDS = 0.5
"""Longest wait between reads of the tail when no notification arrives."""
READY_TIMEOUT_SECONDS = 30.0
"""How long a new subscriber waits for the tail to learn the newest ``seq``."""
RETRY_SECONDS = 1.0
"""Pause after a failed read of the tail (the database is away)."""
REPLAY_PAGE_EVENTS = 200
"""Events per replay read (a subscriber catching up on history)."""
FIRST_PAGE_EVENTS = 50
"""Events of a subscriber's first read (most streams start close to the head)."""
FIRST_READS = 8
"""First reads running at once in a process."""
REPLAY_CHUNK_EVENTS = 50
"""Replayed events handed to a stream at once (one write)."""
REPLAY_READS = 2
"""Replay reads running at once in a process (others wait their turn)."""
REPLAY_SLOTS = 4
"""Replay chunks being handed out (and written) at once in a process."""
REPLAY_SHARE = 0.2
"""The most of the event loop's time replays may take (their chunks' hand-out and write,
and their reads, measured): past it the next replay chunk waits."""
CHUNK_COST_CAP_SECONDS = 0.002
"""The most one replay chunk's hand-out counts against the budget."""
COALESCE_PER_SUBSCRIBER_SECONDS = 0.0002
COALESCE_MAX_SECONDS = 0.02
"""The tail begins a read of new events at most once per ``subscribers x 0.2 ms`` (at most
20 ms), counted from when the previous read began: under a stream of commits, each
subscriber gets one write per interval instead of one per commit. A quiet feed reads at
once."""
HANDOUT_REST = 0.25
"""After a read, the tail waits at least this share of the time its hand-out took (writing
to 1,000 sockets takes 10-20 ms, during which nothing else of the process runs): the other
tasks get at least a fifth of the loop, however many subscribers there are."""
LINGER_SECONDS = 2.0
"""How long the tail goes on reading after the last subscriber left (the next stream of a
run started meanwhile starts from :attr:`EventFeed.recent`, without reading the table)."""
CATCH_UP_SECONDS = 0.1
"""The longest a new run stream waits for the tail to read what this process committed
(then it reads the table)."""
PAGE_CACHE_BYTES = 8 * 1024 * 1024
"""Event JSON kept in the shared page cache."""
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


class Sink(Protocol):
    """Where the tail writes a waiting subscriber's live events itself (a socket).

    While a stream's own loop waits with nothing queued, the tail hands it what a read
    brought with one :meth:`write` of bytes shared by every subscriber of the same filter
    and ``key``: no wake-up, no per-stream coroutine or ASGI send per delivery. A write the
    sink refuses (the client is slow or gone) is queued and the stream's loop woken, as
    without a sink: the queue's bound and the fall-back to the table hold.

    Attributes:
        key: sinks with equal keys turn the same events into the same bytes.
        keepalive: the bytes of a keep-alive.
        counter: counts the events written (``inc(n)``), or ``None``.
    """

    key: Hashable
    keepalive: bytes
    counter: Any

    def encode(self, events: Sequence[FeedEvent]) -> bytes:
        """The bytes that deliver ``events``."""
        ...

    def write(self, data: bytes) -> bool:
        """Write ``data`` now, or return ``False`` (slow or gone: nothing written)."""
        ...


class _Subscriber:
    """One live stream's state inside the feed."""

    def __init__(
        self,
        event_filter: EventFilter,
        cursor: int,
        buffer: int,
        number: int,
        idle_seconds: float | None = None,
        sink: Sink | None = None,
        until_terminal: bool = False,
    ) -> None:
        self.filter = event_filter
        self.sink = sink
        self.until_terminal = until_terminal
        # Caught up after a terminal event (or at the start): the run may be over.
        self.check_terminal = until_terminal
        self.cursor = cursor
        self.buffer = buffer
        self.number = number  # registration order
        # The feed's hand-off count when it last started taking the tail's offers: which
        # shared reads it may join (EventFeed._joinable).
        self.since = 0
        self.queue: deque[FeedEvent] = deque()
        # Start stale: the first thing a subscriber does is read the table.
        self.stale = True
        self.catching_up = False
        self.closed = False
        # Keep-alives: the tail marks a stream quiet for ``idle_seconds`` (no timer per
        # wait: with a thousand subscribers those timers were a tenth of the fan-out).
        self.idle_seconds = idle_seconds
        self.active_at = time.monotonic()
        self.keepalive = False
        self._waiter: asyncio.Future[None] | None = None

    @property
    def waiting(self) -> bool:
        """Whether the stream waits for a wake-up (and has not been woken yet)."""
        waiter = self._waiter
        return waiter is not None and not waiter.done()

    def wake(self) -> None:
        """Wake the stream if it waits."""
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def sleep(self) -> None:
        """Wait for :meth:`wake`."""
        self._waiter = asyncio.get_running_loop().create_future()
        try:
            await self._waiter
        finally:
            self._waiter = None

    def offer(self, event: FeedEvent) -> None:
        """Queue a live event (called by the tail, which wakes the subscriber after its
        whole read: one wake-up per read, not per event)."""
        if self.stale:
            return  # the next table read covers it
        if len(self.queue) >= self.buffer:
            self.queue.clear()
            self.stale = True
        else:
            self.queue.append(event)

    def take(self) -> list[FeedEvent]:
        """Empty the queue: its events after the cursor (the cursor moves to the last)."""
        cursor = self.cursor
        batch = [event for event in self.queue if event["seq"] > cursor]
        self.queue.clear()
        if batch:
            self.cursor = batch[-1]["seq"]
        return batch

    def close(self) -> None:
        """End the stream at the next opportunity."""
        self.closed = True
        self.wake()


class FeedBatches:
    """A subscription's batches (:meth:`EventFeed.batches`): an async iterator that
    registers with the feed on its first step. Before that, :meth:`attach` gives it a
    :class:`Sink` for the tail's direct writes; :meth:`close` ends it from outside (the
    client left)."""

    def __init__(
        self,
        feed: EventFeed,
        event_filter: EventFilter,
        after_seq: int,
        until_terminal: bool,
        idle_seconds: float | None,
    ) -> None:
        self.feed = feed
        self.filter = event_filter
        self.after_seq = after_seq
        self.until_terminal = until_terminal
        self.idle_seconds = idle_seconds
        self.sink: Sink | None = None
        self.subscriber: _Subscriber | None = None
        self.closed = False
        self._gen: AsyncGenerator[list[FeedEvent]] | None = None

    def attach(self, sink: Sink) -> None:
        """Let the tail write live events to ``sink`` while the stream waits."""
        self.sink = sink

    def close(self) -> None:
        """End the stream at the next opportunity."""
        self.closed = True
        if self.subscriber is not None:
            self.subscriber.close()

    def __aiter__(self) -> FeedBatches:
        return self

    async def __anext__(self) -> list[FeedEvent]:
        if self._gen is None:
            self._gen = self.feed._batches(self)
        return await self._gen.__anext__()

    async def aclose(self) -> None:
        """Leave the feed."""
        self.closed = True
        if self._gen is not None:
            await self._gen.aclose()


class _Read:
    """A replay read in flight, shared by the subscribers that registered before it began."""

    def __init__(self, task: asyncio.Task[list[FeedEvent]], began_after: int) -> None:
        self.task = task
        self.began_after = began_after


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
        page: int | None = None,
        replay_reads: int = REPLAY_READS,
        replay_slots: int = REPLAY_SLOTS,
        cache_bytes: int = PAGE_CACHE_BYTES,
        recent_seconds: float = TTL_SECONDS,
    ) -> None:
        self.store = store
        self.batch = batch
        self.buffer = buffer
        self.poll_seconds = poll_seconds
        self.page = page if page is not None else min(batch, REPLAY_PAGE_EVENTS)
        self._subscribers: set[_Subscriber] = set()
        # Subscribers by filter: the tail matches an event once per distinct filter.
        self._groups: dict[EventFilter, set[_Subscriber]] = {}
        self._registered = 0
        # Counts the tail's hand-outs of events and (re)starts: a shared read's snapshot
        # covers what the tail handed out before it began (see _joinable).
        self._handoffs = 0
        self._handout_seconds = 0.0  # the last read's hand-out (writes, queueing, wake-ups)
        self._position: int | None = None
        self._ready = asyncio.Event()
        self._has_subscribers = asyncio.Event()
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._remove_listener: Any = None
        self._closing = False
        # Replays: few reads at a time, few chunks written at a time, pages shared.
        self._read_gate = asyncio.Semaphore(replay_reads)
        self._first_gate = asyncio.Semaphore(FIRST_READS)
        self._replay_slots = asyncio.Semaphore(replay_slots)
        self._reads: dict[tuple[EventFilter, int, int], _Read] = {}
        self.pages = PageCache(cache_bytes)
        # The events of runs the tail saw start: a run's stream opened right after starts
        # from them, without reading the table (services/feed_runs.py).
        # Served at most ``recent_seconds`` after the run started (the run cache's bound:
        # a change no notification reaches).
        self.recent = RecentRuns(ttl_seconds=recent_seconds)
        # The newest seq this process committed (a commit hook, while the tail runs), and
        # a future the tail resolves after each read: a stream of a run started here waits
        # for the tail to pass its start instead of reading the table.
        self._committed = 0
        self._committed_lock = threading.Lock()  # commit hooks run in any thread
        self._advanced: asyncio.Future[None] | None = None
        # The event rows this process committed, with RecentRuns.forgets at their commit,
        # taken by the tail instead of reading them back (see _take_local); another
        # process's commit (a NOTIFY past what this process committed) sends it to the
        # table.
        self._foreign = False
        # The tail's last read ended with a whole commit (a take of this process's rows, or
        # a table read short of a full batch): what it noted of a run includes everything
        # committed with the run's terminal event (see _settled).
        self._whole = False
        self._local: deque[tuple[dict[str, Any], int]] = deque()
        self._local_lock = threading.Lock()
        self.local_takes = 0
        self._linger_until = 0.0
        self.replay_reads = 0
        self._budget = _Budget(REPLAY_SHARE)
        self._keepalive_at = 0.0

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
        recent = await self.recent_run(run_id)
        if recent is not None:
            namespace: str | None = recent.namespace  # a run's namespace never changes
        else:
            namespace = await self.store.read(lambda tx: _run_namespace(tx, run_id))
        if namespace is None or not caller.can_see(namespace):
            raise RunNotFound(f"run {run_id!r} not found")
        return run_filter(run_id, types)

    async def recent_run(self, run_id: str) -> RecentRun | None:
        """What the tail saw of the run since its start (``None``: read the table).

        When the tail is behind what this process committed (a run just started here, its
        start not read yet) it waits for the tail's next reads, at most
        :data:`CATCH_UP_SECONDS`: one shared read of the tail instead of a read per stream."""
        entry = self.recent.get(run_id)
        if entry is not None or self._position is None or not self._ready.is_set():
            return entry
        if self.recent.ttl_seconds <= 0:
            return None  # kept for no time (FLOWPLANE_RUN_CACHE_SECONDS=0): nothing to wait for
        target = self._committed
        if self._position >= target or self._task is None or self._task.done():
            return None
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(CATCH_UP_SECONDS):
                while self._position is not None and self._position < target:
                    if self._advanced is None:
                        self._advanced = asyncio.get_running_loop().create_future()
                    await asyncio.shield(self._advanced)
        return self.recent.get(run_id)

    def _on_commit(self, notifications: list[tuple[str, str]]) -> None:
        """A commit hook (any thread, before the commit's caller goes on): remember the
        newest seq this process committed; forget a run changed by hand (deleted, or
        cancelled, resumed...: its stream reads the table, and a deleted run's is a 404)."""
        for kind, payload in notifications:
            if kind == "event":
                with contextlib.suppress(ValueError, IndexError):
                    seq = int(payload.rsplit(" ", 1)[-1])
                    with self._committed_lock:  # never backwards
                        if seq > self._committed:
                            self._committed = seq
            elif kind == RUN_CHANGED:
                self.recent.forget(payload)

    def _read_done(self) -> None:
        """The tail finished a read: wake :meth:`recent_run`'s waiters."""
        advanced, self._advanced = self._advanced, None
        if advanced is not None and not advanced.done():
            advanced.set_result(None)

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
        batches = self.batches(event_filter, after_seq, until_terminal=until_terminal)
        try:
            async for batch in batches:
                for event in batch:
                    yield event
        finally:
            await batches.aclose()

    def batches(
        self,
        event_filter: EventFilter,
        after_seq: int = 0,
        *,
        until_terminal: bool = False,
        idle_seconds: float | None = None,
    ) -> FeedBatches:
        """:meth:`stream`'s events in batches: what a replay page or a live read brought at
        once, for a writer that sends each batch in one write.

        Every event is a :class:`FeedEvent` (its JSON encoded once, shared by every
        subscriber). With ``idle_seconds`` an empty batch is yielded whenever the stream has
        been quiet that long (an SSE keep-alive).

        Replays are paced for the process's sake: at most :data:`REPLAY_READS` replay reads
        run at once (off the event loop), a subscriber whose cursor falls in a page another
        one read takes it from the :class:`PageCache`, and at most :data:`REPLAY_SLOTS`
        replay chunks of :data:`REPLAY_CHUNK_EVENTS` are being handed out at once, each
        followed by a turn of the event loop: live streams and the engine's own work keep
        their turns while hundreds of subscribers catch up.

        With a :class:`Sink` attached (:meth:`FeedBatches.attach`) the tail writes live
        events to it directly while the stream waits; the batches yielded are then only
        what the stream must write itself (replays, and what the sink refused).
        """
        return FeedBatches(self, event_filter, after_seq, until_terminal, idle_seconds)

    async def _batches(self, stream: FeedBatches) -> AsyncGenerator[list[FeedEvent]]:
        if self._closing or stream.closed:
            return
        self._registered += 1
        event_filter, until_terminal = stream.filter, stream.until_terminal
        sub = _Subscriber(
            event_filter,
            max(stream.after_seq, 0),
            self.buffer,
            self._registered,
            stream.idle_seconds,
            stream.sink,
            until_terminal,
        )
        stream.subscriber = sub
        self._subscribers.add(sub)
        self._groups.setdefault(event_filter, set()).add(sub)
        self._has_subscribers.set()
        try:
            await self._started()
            recent = self._from_recent(sub) if until_terminal else None
            if recent is not None:
                # Caught up from what the tail saw: once the run had ended by then (a
                # terminal event among them, whether the filter passes it or not, and
                # whatever follows it), ask the table whether the stream is complete after
                # what is queued (a resumed run goes on).
                sub.check_terminal = _has_terminal(recent.events)
            while not sub.closed:
                batch: list[FeedEvent] = []
                if sub.stale:
                    # Closed with the stream even when it is left at a yield (its slot).
                    async with contextlib.aclosing(self._replayed(sub)) as replayed:
                        async for batch in replayed:
                            yield batch
                            sub.check_terminal |= until_terminal and _has_terminal(batch)
                    continue
                if sub.queue:
                    batch = sub.take()
                    if batch:
                        yield batch
                        sub.check_terminal |= until_terminal and _has_terminal(batch)
                    continue
                if sub.check_terminal:
                    # Caught up after a terminal event (or at the start): done if the run is.
                    sub.check_terminal = False
                    settled = await self._settled(event_filter, sub.cursor)
                    if settled:
                        return
                    if settled is not None:  # terminal, with events still to send
                        sub.stale = sub.check_terminal = True
                    continue
                if sub.keepalive:
                    sub.keepalive = False
                    yield []
                    continue
                sub.active_at = time.monotonic()
                await sub.sleep()
        finally:
            self._subscribers.discard(sub)
            if not self._subscribers:
                self._linger_until = time.monotonic() + LINGER_SECONDS
            group = self._groups.get(event_filter)
            if group is not None:
                group.discard(sub)
                if not group:
                    del self._groups[event_filter]
            self._wake.set()

    async def _replayed(self, sub: _Subscriber) -> AsyncGenerator[list[FeedEvent]]:
        """The subscriber's next replay page, in chunks, each handed out in a replay slot
        and followed by a turn of the loop; moves its cursor."""
        sub.stale = False
        sub.queue.clear()
        sub.since = self._handoffs
        events, full = await self._replay(sub)
        # Stale already if its queue overflowed during the read (the queue was dropped):
        # the next read starts after this page, not the queue's events.
        sub.stale = sub.stale or full
        if len(events) <= FIRST_PAGE_EVENTS and not full:
            sub.cursor = events[-1]["seq"] if events else sub.cursor
            if events:
                yield events  # caught up at once: a new stream's short start
            return
        for start in range(0, len(events), REPLAY_CHUNK_EVENTS):
            chunk = events[start : start + REPLAY_CHUNK_EVENTS]
            async with self._replay_slots:
                await self._budget.turn()
                began = time.perf_counter()
                sub.cursor = chunk[-1]["seq"]
                yield chunk  # the stream writes it before it asks for more
                # Capped: a write that waits for a slow client is not the loop's work.
                self._budget.spent(min(time.perf_counter() - began, CHUNK_COST_CAP_SECONDS))
            await asyncio.sleep(0)  # the rest of the loop goes first
            if sub.closed:
                return

    async def _replay(self, sub: _Subscriber) -> tuple[list[FeedEvent], bool]:
        """The next page of ``sub``'s replay: ``(events after its cursor, whether more may
        follow)``, from the page cache, a shared read, or a read of its own.

        A subscriber's first read is short (:data:`FIRST_PAGE_EVENTS`, inline on SQLite, no
        budget: a new live stream or a run's stream starts at once). Once one came back
        full the subscriber is *catching up*: its pages are long, read off the loop, at most
        :data:`REPLAY_READS` at a time and within the replay budget."""
        first = not sub.catching_up
        limit = FIRST_PAGE_EVENTS if first else self.page
        key, cursor = sub.filter, sub.cursor
        cached = self.pages.after(key, cursor)
        if cached is None:
            shared = self._joinable(sub, limit)
            if shared is None:
                async with self._first_gate if first else self._read_gate:
                    cached = self.pages.after(key, cursor)
                    if cached is None:
                        shared = self._joinable(sub, limit) or self._start_read(key, cursor, limit)
                        events = await asyncio.shield(shared.task)
            else:
                events = await asyncio.shield(shared.task)
        if cached is not None:
            sub.catching_up = True
            return cached, True
        sub.catching_up = full = len(events) >= limit
        return events, full

    def _joinable(self, sub: _Subscriber, limit: int) -> _Read | None:
        """A read in flight of ``sub``'s next page that it may share: one begun after the
        tail last handed events out (or learnt its position) before ``sub`` started taking
        its offers. A read begun earlier may miss events committed after its snapshot that
        the tail handed out while ``sub`` was stale (or before it registered): the hand-off
        rule."""
        shared = self._reads.get((sub.filter, sub.cursor, limit))
        return shared if shared is not None and shared.began_after >= sub.since else None

    def _start_read(self, key: EventFilter, cursor: int, limit: int) -> _Read:
        """Begin a replay read that subscribers registered until now may share (its own
        task: a subscriber that leaves does not cancel it under the others)."""
        task = asyncio.create_task(
            self._read_page(key, cursor, limit), name="flowplane-feed-replay"
        )
        read = _Read(task, self._handoffs)
        self._reads[(key, cursor, limit)] = read

        def done(_task: asyncio.Task[list[FeedEvent]]) -> None:
            if self._reads.get((key, cursor, limit)) is read:
                del self._reads[(key, cursor, limit)]

        task.add_done_callback(done)
        return read

    async def _read_page(self, key: EventFilter, cursor: int, limit: int) -> list[FeedEvent]:
        types = sorted(key.types) if key.types is not None else None

        def page(tx: Tx) -> tuple[list[FeedEvent], float]:
            began = time.thread_time()
            records = reads.events_after(
                tx,
                run_id=key.run_id,
                namespaces=key.namespaces,
                types=types,
                after_seq=cursor,
                limit=limit,
            )
            return feed_events(record.payload for record in records), time.thread_time() - began

        if limit <= FIRST_PAGE_EVENTS:
            # A type filter is applied to decoded batches: finding a short page's matches
            # may scan far into the log, so that read never runs on the loop (SQLite).
            return (await self.store.read(page, scan=types is not None))[0]
        # A long page: on SQLite on a reader thread (inline it would hold the loop). The
        # reading thread's CPU time (decoding, encoding: it holds the GIL) counts against
        # the replay budget.
        await self._budget.turn()
        events, cpu = await self.store.read(page, scan=True)
        self._budget.spent(cpu)
        self.replay_reads += 1
        if len(events) >= limit:
            self.pages.add(key, cursor, events)
        return events

    async def close(self) -> None:
        """End every stream and stop the tail (new streams end at once)."""
        self._closing = True
        for sub in list(self._subscribers):
            sub.close()
        for read in list(self._reads.values()):
            read.task.cancel()
        self._has_subscribers.set()  # an idle tail sees it is closing
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    # --- the tail ---------------------------------------------------------------------------

    async def _started(self) -> None:
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._tail(), name="flowplane-event-feed")
        elif self._ready.is_set():
            return  # the tail runs and knows its position: no wait (wait_for makes a task)
        try:
            await wait_for(self._ready.wait(), READY_TIMEOUT_SECONDS)
        except TimeoutError:
            raise DatabaseUnavailable("the event feed could not read the event table") from None

    def _from_recent(self, sub: _Subscriber) -> RecentRun | None:
        """Start a run's stream from :attr:`recent` when the tail saw the run from its first
        event: every event of it up to the tail's position is there, and the tail offers
        every later one (``sub`` takes offers from now on). Returns the entry it started
        from (``None``: read the table)."""
        run_id = sub.filter.run_id
        if run_id is None or self._position is None:
            return None
        entry = self.recent.get(run_id)
        if entry is None:
            return None
        self.recent.hits += 1
        sub.stale = False
        sub.since = self._handoffs
        match = sub.filter.matches
        cursor = sub.cursor
        sub.queue.extend(
            event for event in entry.events if event["seq"] > cursor and match(event, "")
        )
        return entry

    async def _settled(self, event_filter: EventFilter, cursor: int) -> bool | None:
        """Whether the run's stream is complete: ``True`` when the run is terminal (or
        gone) with no matching event after ``cursor``, ``False`` when it is terminal with
        events still to send, ``None`` while it is active. One read, one snapshot; none
        when :attr:`recent` holds the run's end."""
        run_id = event_filter.run_id
        if run_id is None:
            return None
        entry = self.recent.get(run_id) if self._whole else None
        if entry is not None and _has_terminal(entry.events):
            # The tail saw the run end, with everything committed with it, and nobody has
            # changed the run by hand since (a resume, a delete... would have forgotten
            # it): no read. Without a terminal event there, the table says.
            wanted = event_filter.types
            return not any(
                event["seq"] > cursor and (wanted is None or event["type"] in wanted)
                for event in entry.events
            )
        types = sorted(event_filter.types) if event_filter.types is not None else None

        def settled(tx: Tx) -> bool | None:
            run = reads.run(tx, run_id)
            if run is not None and run.status not in TERMINAL_RUN:
                return None
            after = reads.events_after(tx, run_id=run_id, types=types, after_seq=cursor, limit=1)
            return not after

        return await self.store.read(settled)

    def _on_notify(self, kind: str, payload: str) -> None:
        if kind == "event":
            # This process's own commits are announced after its commit hook has counted
            # them; anything else (another process's NOTIFY, a listener's reconnect with
            # no seq) is read from the table.
            try:
                foreign = int(payload) > self._committed
            except ValueError:
                foreign = True
            if foreign:
                self._foreign = True
            self._wake.set()
        elif kind == RUN_CHANGED:
            self.recent.forget(payload)  # changed by another process (or this one, again)

    async def _tail(self) -> None:
        self._remove_listener = self.store.add_listener(
            self._on_notify, kinds=("event", RUN_CHANGED)
        )
        remove_hook = self.store.add_commit_hook(self._on_commit)
        remove_rows = self.store.add_event_rows_hook(self._on_rows)
        polled = True  # the first read reads the table
        try:
            while not self._closing:
                if not self._subscribers and time.monotonic() >= self._linger_until:
                    # Idle: forget the position, so a later start does not read the backlog.
                    self._ready.clear()
                    self._position = None
                    self.recent.clear()  # what it no longer reads may be missing from it
                    self._has_subscribers.clear()
                    await self._has_subscribers.wait()
                    polled = True
                    continue
                began = time.monotonic()
                try:
                    await self._read_new(polled)
                    self._read_done()
                except Exception as exc:
                    _log.warning("event feed read failed (%s); retrying", exc)
                    await asyncio.sleep(RETRY_SECONDS)
                    continue
                read_at = time.monotonic()
                self._keepalives(read_at)
                # Not wait_for: in 3.11 it can swallow the cancellation close() sends.
                polled = True
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(self.poll_seconds):
                        await self._wake.wait()
                        polled = False
                next_at = next_read_at(
                    began, read_at, self._handout_seconds, len(self._subscribers)
                )
                pause = next_at - time.monotonic()
                if pause > 0:
                    await asyncio.sleep(pause)  # more commits join this read
        finally:
            self._remove_listener()
            remove_hook()
            remove_rows()
            with self._local_lock:
                self._local.clear()
            self._read_done()

    async def _read_new(self, polled: bool = True) -> None:
        """Hand out what was committed after the tail's position: this process's own
        event rows when they follow on from it, else a read of the table.

        ``polled``: the tail's wait ran out (nothing woke it: another process's commits
        wake nobody on SQLite), or another process's NOTIFY came: read the table. Woken by
        this process's commits, with none of them past the position and none left to
        take, there is nothing to read."""
        if self._position is None:
            # Subscribers registered before this read: their replay starts after it.
            self._position = await self.store.read(reads.last_seq)
            self._handoffs += 1
            self._ready.set()
        self._handout_seconds = 0.0
        if self._foreign:
            self._foreign = False  # (a NOTIFY during the read sets it again)
            polled = True
        while True:
            self._wake.clear()
            forgets = self.recent.forgets  # a run forgotten during the read is not noted
            taken = None if polled else self._take_local()
            if taken is not None:
                local, forgets = taken  # the forget count at the first one's commit
                rows = _feed_events(reads.event_rows_tail(local, self.store.dialect))
                self.local_takes += 1
            elif not polled and not self._local and self._position >= self._committed:
                return  # woken by commits already taken: nothing new
            else:
                rows = await self.store.read(
                    partial(_tail_events, after_seq=self._position, limit=self.batch)
                )
                # Then the table until a short page: a row committed before this read began
                # may carry an older forget count than the one note() is given here.
                polled = True
            self.recent.note(rows, forgets)
            self._whole = taken is not None or len(rows) < self.batch
            groups = list(self._groups.items())
            matched: dict[EventFilter, list[FeedEvent]] = {}
            if rows:
                self._handoffs += 1
            for namespace, event in rows:
                self._position = event["seq"]
                for event_filter, _subs in groups:
                    if event_filter.matches(event, namespace):
                        matched.setdefault(event_filter, []).append(event)
            if matched:
                now = time.monotonic()
                for event_filter, subs in groups:
                    events = matched.get(event_filter)
                    if events:
                        _deliver(subs, events, now)
                self._handout_seconds += time.monotonic() - now
            if taken is None and len(rows) < self.batch:
                return

    def _on_rows(self, rows: list[dict[str, Any]]) -> None:
        """An event-row hook (the committing thread): keep a reader's copy of the rows
        this process committed, for :meth:`_take_local`, in ``seq`` order (on PostgreSQL
        two threads' commits may reach their hooks in the other order)."""
        if self._position is None:
            return  # not following the table: it starts from the head when it does
        since = self.recent.forgets
        # A row of more than a read's worth of events (a big foreach's) is left to the
        # table, which the tail reads a batch at a time (it leaves a gap here).
        dialect = self.store.dialect
        copies = [
            (reads.stored_copy(row, dialect), since) for row in rows if row["size"] <= self.batch
        ]
        if not copies:
            return
        with self._local_lock:
            local = self._local
            if len(local) + len(copies) > LOCAL_ROWS:
                local.clear()  # far behind: the next rows leave a gap, read the table
                return
            late = local and local[-1][0]["last_seq"] > copies[0][0]["last_seq"]
            local.extend(copies)
            if late:
                self._local = deque(sorted(local, key=lambda item: item[0]["last_seq"]))

    def _take_local(self) -> tuple[list[dict[str, Any]], int] | None:
        """This process's rows that follow on from the tail's position without a gap (up
        to :attr:`batch` events), with the smallest forget count among them; ``None`` when
        none does: the next seq is another process's (every commit's events are numbered
        from one counter, in commit order), or rows were dropped, or there are none. Rows
        the position has passed (read from the table meanwhile) are dropped."""
        position = self._position
        if position is None:
            return None
        taken: list[dict[str, Any]] = []
        since: int | None = None
        events = 0
        with self._local_lock:
            local = self._local
            while local and events < self.batch:
                row, forgets = local[0]
                last = int(row["last_seq"])
                if last <= position:
                    local.popleft()
                    continue
                if last - int(row["size"]) != position:
                    break  # a gap
                local.popleft()
                taken.append(row)
                since = forgets if since is None else min(since, forgets)
                position = last
                events += int(row["size"])
        if not taken or since is None:
            return None
        return taken, since

    def _keepalives(self, now: float) -> None:
        """Mark the streams that have waited ``idle_seconds`` (checked every poll, at most
        twice a second)."""
        if now - self._keepalive_at < min(self.poll_seconds, 0.5):
            return
        self._keepalive_at = now
        for sub in self._subscribers:
            idle = sub.idle_seconds
            if idle is not None and sub.waiting and now - sub.active_at >= idle:
                sink = sub.sink
                if sink is not None and not sub.stale and sink.write(sink.keepalive):
                    sub.active_at = now
                    continue
                sub.keepalive = True
                sub.wake()


def next_read_at(began: float, ended: float, handout: float, subscribers: int) -> float:
    """When the tail may begin its next read, after one that began at ``began`` and ended
    at ``ended`` (monotonic seconds), ``handout`` of it spent handing events out, with
    ``subscribers`` subscribed: one read per coalescing interval counted from the last
    read's start (a commit made while a long hand-out ran is not made to wait a whole
    interval more), and a rest of :data:`HANDOUT_REST` of the hand-out."""
    interval = min(COALESCE_MAX_SECONDS, subscribers * COALESCE_PER_SUBSCRIBER_SECONDS)
    return max(began + interval, ended + handout * HANDOUT_REST)


def _deliver(subs: set[_Subscriber], events: list[FeedEvent], now: float) -> None:
    """Hand what one read brought (``events``, all matching ``subs``' filter) to them: a
    subscriber that waits with a sink gets it written at once, with the bytes shared by
    every such subscriber of the same sink key; any other gets it queued and is woken."""
    frames: dict[Hashable, bytes] = {}
    counted: dict[int, list[Any]] = {}
    first = events[0]["seq"]
    terminal: bool | None = None
    for sub in subs:
        sink = sub.sink
        if sink is not None and not sub.stale and sub.waiting:
            # Only what is after its cursor (its last read may have gone past the tail).
            cursor = sub.cursor
            batch = events if first > cursor else [e for e in events if e["seq"] > cursor]
            if not batch:
                continue
            if batch is events:
                data = frames.get(sink.key)
                if data is None:
                    data = frames[sink.key] = sink.encode(events)
            else:
                data = sink.encode(batch)
            if sink.write(data):
                sub.cursor = batch[-1]["seq"]
                sub.active_at = now
                if sink.counter is not None:
                    counted.setdefault(id(sink.counter), [sink.counter, 0])[1] += len(batch)
                if sub.until_terminal:
                    if terminal is None:
                        terminal = _has_terminal(events)
                    if terminal:
                        sub.check_terminal = True  # its loop checks whether the run is over
                        sub.wake()
                continue
        for event in events:
            sub.offer(event)
        sub.wake()
    for counter, n in counted.values():
        counter.inc(n)


class _Budget:
    """A share of the event loop's time for replays: work measured with :meth:`spent`
    makes the next :meth:`turn` wait long enough to keep replays within ``share``."""

    def __init__(self, share: float) -> None:
        self.factor = (1 - share) / share
        self.free_at = 0.0

    async def turn(self) -> None:
        """Wait until replays are within their share again."""
        while (wait := self.free_at - time.monotonic()) > 0:
            await asyncio.sleep(wait)

    def spent(self, seconds: float) -> None:
        """Count ``seconds`` of replay work."""
        self.free_at = max(self.free_at, time.monotonic()) + seconds * self.factor


def _tail_events(tx: Tx, after_seq: int, limit: int) -> list[tuple[str, FeedEvent]]:
    return _feed_events(reads.event_tail(tx, after_seq, limit))


def _feed_events(
    bodies: Iterable[tuple[str, dict[str, Any]]],
) -> list[tuple[str, FeedEvent]]:
    """``(namespace, wire body)`` pairs as the tail hands them out."""
    return [(ns, feed_event(body)) for ns, body in bodies]


def _has_terminal(events: Iterable[FeedEvent]) -> bool:
    return any(event["type"] in TERMINAL_EVENTS for event in events)


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
