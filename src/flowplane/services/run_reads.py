"""Reading runs: one run, its nodes, attempts, log, events and frames, and run listings.

:class:`RunReader` is the reading half of :class:`flowplane.services.runs.RunService`. Every
method takes the :class:`~flowplane.services.caller.Caller` it reads for: a viewer, who sees
the runs of its namespaces only (another namespace's run is *not found*).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
from collections.abc import AsyncIterator, Callable, Hashable
from dataclasses import dataclass
from typing import Any, Literal, NamedTuple, TypeVar

from flowplane.connectors.registry import Registry, default_registry
from flowplane.errors import InvalidInput, RunNotFound
from flowplane.model.bounds import INT64_MAX
from flowplane.services.approvals import ApprovalService
from flowplane.services.caller import Caller
from flowplane.services.feed import TERMINAL_EVENTS
from flowplane.services.paging import Page, paginate
from flowplane.services.run_cache import (
    CATCH_UP_EVENTS,
    RUN_CHANGED,
    CachedList,
    CachedRun,
    LiveRun,
    SettledRunCache,
)
from flowplane.services.run_nodes import (
    CappedSnapshot,
    NodeRun,
    parse_node_cursor,
    read_capped,
    read_node_page,
)
from flowplane.status import TERMINAL_NODE, TERMINAL_RUN, NodeStatus, RunStatus
from flowplane.store import reads
from flowplane.store.base import Store
from flowplane.store.records import (
    ApprovalRecord,
    AttemptRecord,
    FrameRecord,
    LogRecord,
    NodeRunRecord,
    RunRecord,
)
from flowplane.store.tx import Tx, now_ms
from flowplane.timeouts import wait_for

__all__ = [
    "NEEDS_SOMEONE",
    "LogEntry",
    "RunReader",
    "RunSnapshot",
    "duration_ms",
    "parse_log_cursor",
]

T = TypeVar("T")

NEEDS_SOMEONE: frozenset[str] = frozenset(
    (*TERMINAL_RUN, RunStatus.WAITING_APPROVAL.value, RunStatus.WAITING_EVENT.value)
)
"""Run statuses :meth:`RunReader.settle` stops at: terminal, or waiting for a person or a
signal (a timer needs nobody)."""


class RunSnapshot(NamedTuple):
    """A run, its node runs and its attempts, read in one transaction."""

    run: RunRecord
    nodes: list[NodeRunRecord]
    attempts: list[AttemptRecord]

    @property
    def settled(self) -> bool:
        """Whether nothing but a user action can change the run any more."""
        return (
            self.run.status in TERMINAL_RUN
            and all(node.status in TERMINAL_NODE for node in self.nodes)
            and all(attempt.finished_at_ms is not None for attempt in self.attempts)
        )


@dataclass(frozen=True)
class LogEntry:
    """One item of a run's log: a log line (``kind="log"``) or a finished attempt."""

    kind: Literal["log", "attempt"]
    record: LogRecord | AttemptRecord


def duration_ms(started: int | None, finished: int | None, running: bool) -> int | None:
    """How long something took (``None`` before it started); so far, while ``running``."""
    if started is None:
        return None
    if finished is None:
        return max(0, now_ms() - started) if running else None
    return max(0, finished - started)


class RunReader:
    """Read runs for a caller (see the module doc)."""

    def __init__(
        self,
        store: Store,
        registry: Registry | None = None,
        *,
        settled: SettledRunCache | None = None,
        max_detail_nodes: int = 1_000,
    ) -> None:
        self.store = store
        self.max_detail_nodes = max_detail_nodes
        """The most node runs :meth:`detail` lists (``FLOWPLANE_MAX_RUN_DETAIL_NODES``)."""
        self.registry = registry or default_registry()
        self.settled = settled if settled is not None else SettledRunCache(ttl_seconds=0)
        """Rendered details of settled runs (see :mod:`flowplane.services.run_cache`)."""
        self.approvals = ApprovalService(store)
        """The approval inbox across runs."""
        self._catching: asyncio.Future[None] | None = None

    # --- reading -------------------------------------------------------------------------

    async def get(self, caller: Caller, run_id: str) -> RunRecord:
        """Return the run (without its document).

        Raises:
            Forbidden: the caller is not a viewer.
            RunNotFound: absent, or in a namespace the caller cannot see.
        """
        caller.require("viewer")
        return _visible(caller, await self._read_run(run_id), run_id)

    async def _read_run(self, run_id: str) -> RunRecord | None:
        return await self.store.read(lambda tx: reads.run(tx, run_id))

    async def snapshot(self, caller: Caller, run_id: str) -> RunSnapshot:
        """Return the run, its node runs and its attempts, read in one transaction."""
        caller.require("viewer")

        def read(
            tx: Tx,
        ) -> tuple[RunRecord | None, list[NodeRunRecord], list[AttemptRecord]]:
            run = reads.run(tx, run_id)
            if run is None:
                return None, [], []
            nodes = reads.node_runs(tx, run_id)
            return run, nodes, reads.attempts_of(tx, run_id, nodes)

        run, nodes, attempts = await self.store.read(read)
        return RunSnapshot(_visible(caller, run, run_id), nodes, attempts)

    async def detail(
        self,
        caller: Caller,
        run_id: str,
        render: Callable[[RunSnapshot | CappedSnapshot], bytes],
    ) -> bytes:
        """The rendered detail of a run, from the run cache when it is there.

        ``render`` turns a snapshot into the body of ``GET /v1/runs/{id}``
        (:func:`flowplane.api.run_views.render_detail`); the body of a settled run, and the
        snapshot of a live one, are kept (see :mod:`flowplane.services.run_cache`) and
        answered without a read. The cache holds that one wire form: a surface that answers
        in another reads :meth:`snapshot`. A run of more than :attr:`max_detail_nodes` node
        runs is read capped (:class:`~flowplane.services.run_nodes.CappedSnapshot`; the
        rest: :meth:`node_page`).
        """
        caller.require("viewer")
        cache = self.settled
        found = self.cached_detail(caller, run_id, claim=True)
        if found is None and cache.enabled and cache.unsure:
            await self._catch_up()  # (then the run's entry, if kept, is known fresh)
            found = self.cached_detail(caller, run_id)
        if isinstance(found, LiveRun):
            return render(found.snapshot)
        if found is not None:
            return found
        token, live_token = cache.token(), cache.live_token()
        snapshot = await self._detail_snapshot(caller, run_id)
        body = render(snapshot)
        if snapshot.settled:
            cache.put(run_id, snapshot.run.namespace, body, token)
        elif live_cacheable(snapshot):
            cache.put_live(run_id, snapshot.run.namespace, snapshot, len(body), live_token)
        return body

    def cached_detail(
        self, caller: Caller, run_id: str, *, claim: bool = False
    ) -> bytes | LiveRun | None:
        """The cached detail of a run the caller may read, else ``None``: a settled run's
        body, or a live run's entry (its ``snapshot``, rendered per answer: durations grow).

        No read and no await: the fast path in front of the router
        (:mod:`flowplane.api.settled_runs`). ``None`` says "ask :meth:`detail`", which then
        answers 403 or 404 as it always does, and reads an entry due for a refresh
        (``claim``, see :meth:`SettledRunCache.get`) while other requests are answered
        from it.
        """
        cache = self.settled
        found: CachedRun | LiveRun | None = cache.get(run_id, claim=claim) or cache.get_live(
            run_id, claim=claim
        )
        if found is None or not caller.allows("viewer") or not caller.can_see(found.namespace):
            return None
        return found.body if isinstance(found, CachedRun) else found

    async def _catch_up(self) -> None:
        """Apply the announced changes to the live entries: one read of the event table
        after the cache's position, shared by every reader that waits for it."""
        task = self._catching
        if task is None or task.done():
            task = self._catching = asyncio.ensure_future(self._catch_up_now())
        await asyncio.shield(task)

    async def _catch_up_now(self) -> None:
        cache = self.settled
        for _ in range(8):  # (each round reads up to CATCH_UP_EVENTS events)
            if not cache.unsure:
                return
            start = cache.catch_up_from()
            if start is None:
                last = await self.store.read(reads.last_seq)
                cache.caught_up(None, [(last, "")], True)
                continue
            changed = await self.store.read(
                functools.partial(reads.runs_changed_after, after_seq=start, limit=CATCH_UP_EVENTS)
            )
            cache.caught_up(start, changed, len(changed) < CATCH_UP_EVENTS)

    async def _detail_snapshot(self, caller: Caller, run_id: str) -> RunSnapshot | CappedSnapshot:
        """:meth:`snapshot`, capped to :attr:`max_detail_nodes` node runs when it has more."""
        limit = self.max_detail_nodes

        def read(tx: Tx) -> tuple[RunRecord | None, RunSnapshot | CappedSnapshot | None]:
            run = reads.run(tx, run_id)
            if run is None or not caller.can_see(run.namespace):
                return run, None
            # One more than the cap tells a big run without counting every run's node runs.
            nodes = reads.first_node_runs(tx, run_id, limit + 1)
            if len(nodes) > limit:
                return run, read_capped(tx, run, limit)
            return run, RunSnapshot(run, nodes, reads.attempts_of(tx, run_id, nodes))

        run, snapshot = await self.store.read(read)
        _visible(caller, run, run_id)
        assert snapshot is not None  # read only for a visible run
        return snapshot

    async def node_page(
        self, caller: Caller, run_id: str, cursor: str | None = None, limit: int = 100
    ) -> Page[NodeRun]:
        """One page of the run's node runs (by id) with their attempts.

        Args:
            caller: who asks (a viewer of the run's namespace).
            run_id: the run.
            cursor: a ``next_cursor`` of this method or the detail's ``nodesNextCursor``.
            limit: the page size.

        Raises:
            RunNotFound: absent, or in a namespace the caller cannot see.
            InvalidInput: ``cursor`` is not a cursor returned before.
        """
        caller.require("viewer")
        parse_node_cursor(cursor)  # refuse a bad cursor before any read

        def read(tx: Tx) -> tuple[RunRecord | None, Page[NodeRun] | None]:
            run = reads.run(tx, run_id)
            if run is None or not caller.can_see(run.namespace):
                return run, None
            return run, read_node_page(tx, run_id, cursor, limit)

        run, page = await self.store.read(read)
        _visible(caller, run, run_id)
        assert page is not None  # read only for a visible run
        return page

    async def _read_of_run(self, caller: Caller, run_id: str, read: Callable[[Tx], T]) -> T:
        """``read(tx)`` of a run the caller may see (404 otherwise), in one transaction.

        A caller that sees every namespace costs no extra read: the run is then not looked
        up (as before, a missing run reads as empty).
        """
        caller.require("viewer")
        if caller.namespaces is None:
            return await self.store.read(read)

        def checked(tx: Tx) -> tuple[RunRecord | None, T | None]:
            run = reads.run(tx, run_id)
            if run is None or not caller.can_see(run.namespace):
                return run, None
            return run, read(tx)

        run, result = await self.store.read(checked)
        _visible(caller, run, run_id)
        assert result is not None  # read only for a visible run
        return result

    async def document(self, caller: Caller, run_id: str) -> dict[str, Any]:
        """Return the run's pinned workflow document."""
        caller.require("viewer")
        run = await self.store.read(lambda tx: reads.run(tx, run_id, with_document=True))
        return dict(_visible(caller, run, run_id).document or {})

    async def nodes(self, caller: Caller, run_id: str) -> list[NodeRunRecord]:
        """Return every node run of the run."""
        return await self._read_of_run(caller, run_id, lambda tx: reads.node_runs(tx, run_id))

    async def attempts(self, caller: Caller, run_id: str) -> list[AttemptRecord]:
        """Return every attempt of the run."""
        return await self._read_of_run(caller, run_id, lambda tx: reads.attempts_of(tx, run_id))

    async def approvals_of(self, caller: Caller, run_id: str) -> list[ApprovalRecord]:
        """Every approval the run's nodes asked for, oldest first (viewer)."""
        return await self._read_of_run(caller, run_id, lambda tx: reads.run_approvals(tx, run_id))

    async def list_runs(
        self,
        caller: Caller,
        *,
        namespaces: list[str] | None = None,
        statuses: list[str] | None = None,
        workflow: str | None = None,
        created_after_ms: int | None = None,
        created_before_ms: int | None = None,
        cursor: str | None = None,
        limit: int = 50,
        cache_key: Hashable | None = None,
    ) -> Page[RunRecord]:
        """One page of runs, newest first, of the visible ones among ``namespaces``.

        The summaries carry no document, input or output (``None``).

        Args:
            caller: who asks (a viewer); only runs of namespaces it sees are listed.
            namespaces: only these namespaces (default: every one the caller sees).
            statuses: only runs in these statuses.
            workflow: only runs of this workflow (a name or an id).
            created_after_ms: only runs created at or after this time.
            created_before_ms: only runs created before this time.
            cursor: the ``next_cursor`` of the previous page.
            limit: the page size.
            cache_key: what identifies this query's answer for a face (its request as
                received); with it the page is kept in the run cache, under the caller's
                namespaces and this key, until any run changes (:meth:`cached_list`).
        """
        caller.require("viewer")
        visible = caller.visible(namespaces)
        if visible is not None and not visible:
            return Page([])
        token = self.settled.list_token()
        rows = await self.store.read(
            lambda tx: reads.run_summaries(
                tx,
                namespaces=visible,
                statuses=statuses,
                workflow=workflow,
                created_after_ms=created_after_ms,
                created_before_ms=created_before_ms,
                before_id=cursor or None,
                limit=limit + 1,
            )
        )
        page = paginate(rows, limit, lambda run: run.id)
        if cache_key is not None:
            self.settled.put_list((caller.namespaces, cache_key), page, token)
        return page

    def cached_list(self, caller: Caller, cache_key: Hashable) -> CachedList | None:
        """The kept answer of :meth:`list_runs` for this caller's namespaces and
        ``cache_key``, if no run changed since (no read, no await: the fast path in front of
        the router, :mod:`flowplane.api.settled_runs`)."""
        if not caller.allows("viewer"):
            return None
        # (Claimed here: list_runs, which the route calls on None, reads without looking.)
        return self.settled.get_list((caller.namespaces, cache_key), claim=True)

    async def events(
        self, caller: Caller, run_id: str, after_seq: int = 0, limit: int = 500
    ) -> list[dict[str, Any]]:
        """Return the run's events after ``after_seq`` (their wire bodies)."""
        events = await self._read_of_run(
            caller,
            run_id,
            lambda tx: reads.events_after(tx, run_id=run_id, after_seq=after_seq, limit=limit),
        )
        return [event.payload for event in events]

    async def logs(
        self, caller: Caller, run_id: str, after_id: int = 0, limit: int = 200
    ) -> list[LogRecord]:
        """Return the run's log lines after ``after_id``."""
        return await self._read_of_run(
            caller, run_id, lambda tx: reads.logs_after(tx, run_id, after_id=after_id, limit=limit)
        )

    async def log_page(
        self, caller: Caller, run_id: str, after: str | None = None, limit: int = 200
    ) -> Page[LogEntry]:
        """Log lines and finished attempts in time order, a page at a time.

        The cursor is ``"<last log id>.<attempts taken>"`` (a bare number is a log id).
        Items are taken in time order from the front of each list, so the next cursor is the
        last log id and how many of the run's attempts (listed in the order they finished)
        were taken: no item is skipped or repeated.

        Raises:
            InvalidInput: ``after`` is not a cursor this method returned.
        """
        await self.get(caller, run_id)
        after_log, after_attempt = parse_log_cursor(after)

        def read(tx: Tx) -> tuple[list[LogRecord], list[AttemptRecord]]:
            logs = reads.logs_after(tx, run_id, after_id=after_log, limit=limit + 1)
            attempts = reads.attempts_of(tx, run_id)[after_attempt:]
            return logs, attempts

        logs, attempts = await self.store.read(read)
        items: list[LogEntry] = []
        li = ai = 0
        while len(items) < limit and (li < len(logs) or ai < len(attempts)):
            take_log = ai >= len(attempts) or (
                li < len(logs) and logs[li].ts_ms <= attempts[ai].finished_at_ms
            )
            if take_log:
                after_log = logs[li].id
                items.append(LogEntry("log", logs[li]))
                li += 1
            else:
                after_attempt += 1
                items.append(LogEntry("attempt", attempts[ai]))
                ai += 1
        more = li < len(logs) or ai < len(attempts)
        return Page(items, f"{after_log}.{after_attempt}" if more else None)

    # --- time travel ---------------------------------------------------------------------

    async def frames(
        self,
        caller: Caller,
        run_id: str,
        after_frame_no: int = 0,
        limit: int = 100,
        order: Literal["asc", "desc"] = "asc",
    ) -> list[dict[str, Any]]:
        """Return snapshots of the run's node states after each transition.

        ``asc`` pages forward from ``after_frame_no`` (oldest first); ``desc`` returns the
        newest ``limit`` frames after ``after_frame_no``, newest first (Smithers' order).
        """
        run = await self.get(caller, run_id)
        start = max(after_frame_no, 0)
        if order == "desc":
            last = run.frame_no
            start = max(start, last - limit)

        def read(tx: Tx) -> list[dict[str, Any]]:
            base: dict[tuple[str, int], str] = {}
            attempts: dict[tuple[str, int], int] = {}

            def fold(frame: FrameRecord) -> None:
                for change in frame.changes:
                    key = (change["nodeId"], change["iteration"])
                    base[key] = change["status"]
                    attempts[key] = change.get("attempt", 0)

            # Fold statuses and attempts up to the first frame asked for, so that a page
            # shows the same snapshots as a listing from the start.
            for frame in reads.frames_until(tx, run_id, start):
                fold(frame)
            frames = reads.frames_after(tx, run_id, after_frame_no=start, limit=limit)
            out: list[dict[str, Any]] = []
            for frame in frames:
                fold(frame)
                out.append(
                    {
                        "runId": run_id,
                        "frameNo": frame.frame_no,
                        "seq": frame.seq,
                        "timestampMs": frame.ts_ms,
                        "changes": frame.changes,
                        "nodes": [
                            {
                                "nodeId": node_id,
                                "iteration": iteration,
                                "status": status,
                                "attempt": attempts.get((node_id, iteration), 0),
                            }
                            for (node_id, iteration), status in base.items()
                        ],
                    }
                )
            return out

        out = await self.store.read(read)
        if order == "desc":
            out.reverse()
        return out

    async def diff(self, caller: Caller, run_id: str, other_id: str) -> dict[str, Any]:
        """Compare two runs (typically an original and its fork) node by node."""
        first, second = await self.get(caller, run_id), await self.get(caller, other_id)
        left = {(n.node_id, n.iteration): n for n in await self.nodes(caller, run_id)}
        right = {(n.node_id, n.iteration): n for n in await self.nodes(caller, other_id)}
        nodes = []
        for key in sorted(set(left) | set(right), key=lambda k: (k[0], k[1])):
            a, b = left.get(key), right.get(key)
            entry = {
                "nodeId": key[0],
                "iteration": key[1],
                "original": None if a is None else {"status": a.status.value, "output": a.output},
                "other": None if b is None else {"status": b.status.value, "output": b.output},
            }
            entry["changed"] = entry["original"] != entry["other"]
            nodes.append(entry)
        return {
            "runId": run_id,
            "otherRunId": other_id,
            "inputChanged": first.input != second.input,
            "versionChanged": first.workflow_version != second.workflow_version,
            "statusChanged": first.status != second.status,
            "nodes": nodes,
        }

    # --- following -----------------------------------------------------------------------

    async def follow(
        self, caller: Caller, run_id: str, after_seq: int = 0, poll_seconds: float = 0.5
    ) -> AsyncIterator[dict[str, Any]]:
        """Yield the run's events in ``seq`` order, live, until a terminal run event.

        The table is the source of truth; notifications only cut the wait between reads,
        so replayed and live events can never interleave out of order. The caller's right
        to the run is checked once, before the first event.
        """
        await self.get(caller, run_id)
        wake = asyncio.Event()

        def on_notify(kind: str, _payload: str) -> None:
            if kind == "event":
                wake.set()

        async def read(after: int, limit: int = 500) -> list[dict[str, Any]]:
            events = await self.store.read(
                lambda tx: reads.events_after(tx, run_id=run_id, after_seq=after, limit=limit)
            )
            return [event.payload for event in events]

        async def status() -> str | None:
            run = await self._read_run(run_id)
            return None if run is None else run.status.value

        remove = self.store.add_listener(on_notify, kinds=("event",))
        try:
            while True:
                wake.clear()
                batch: list[dict[str, Any]] = await read(after_seq)
                for index, event in enumerate(batch):
                    after_seq = event["seq"]
                    yield event
                    if event["type"] in TERMINAL_EVENTS and index == len(batch) - 1:
                        # A resumed run goes on after an old terminal event.
                        if await status() in (*TERMINAL_RUN, None):
                            return
                if not batch:
                    current = await status()
                    if current is None:
                        raise RunNotFound(f"run {run_id!r} not found")
                    if current in TERMINAL_RUN:
                        if await read(after_seq, 1):
                            # It ended between the read above and this one: read the rest.
                            continue
                        # Terminal and nothing more to read: the stream is complete.
                        return
                    with contextlib.suppress(TimeoutError):
                        await wait_for(wake.wait(), poll_seconds)
        finally:
            remove()

    async def wait(self, caller: Caller, run_id: str, timeout: float | None = None) -> RunRecord:
        """Wait until the run is terminal; return it."""

        async def _wait() -> RunRecord:
            async for _event in self.follow(caller, run_id):
                pass
            return await self.get(caller, run_id)

        return await wait_for(_wait(), timeout)

    async def settle(
        self, caller: Caller, run_id: str, timeout: float, poll_seconds: float = 0.5
    ) -> tuple[RunRecord, bool]:
        """Wait up to ``timeout`` seconds until the run settles or needs someone.

        The run stops being waited for once it is terminal, or waits for an approval or a
        signal (:data:`NEEDS_SOMEONE`): what is left is for a person or an agent to do. A
        run waiting for a timer is still waited for. Events wake the wait; it also reads
        the run every ``poll_seconds`` (other processes' changes on SQLite).

        Returns:
            The run as last read, and whether it reached such a status in time.

        Raises:
            RunNotFound: absent, or in a namespace the caller cannot see.
        """
        run = await self.get(caller, run_id)
        if run.status in NEEDS_SOMEONE:
            return run, True
        loop = asyncio.get_running_loop()
        deadline = loop.time() + max(0.0, timeout)
        wake = asyncio.Event()

        def on_notify(kind: str, payload: str) -> None:
            if kind == "event" and run_id in payload.split():
                wake.set()

        remove = self.store.add_listener(on_notify, kinds=("event",))
        try:
            while True:
                remaining = deadline - loop.time()
                if remaining <= 0:
                    return run, False
                wake.clear()
                with contextlib.suppress(TimeoutError):
                    await wait_for(wake.wait(), min(poll_seconds, remaining))
                run = await self.get(caller, run_id)
                if run.status in NEEDS_SOMEONE:
                    return run, True
        finally:
            remove()

    def watch_changes(self) -> Callable[[], None]:
        """Keep the run cache in step with the store's notifications: ``run-changed`` drops
        a run; ``event`` (a commit with events) makes live entries unsure until the next
        catch-up. This process's commits are applied before their transaction returns
        (:meth:`Store.add_commit_hook`: the very next read, even in the same coroutine,
        sees them); other processes' arrive on PostgreSQL over LISTEN; on SQLite they wait
        for the TTL. Call on the event loop. Returns a function that stops watching."""
        if not self.settled.enabled:
            return lambda: None
        loop = asyncio.get_running_loop()

        def changed(kind: str, payload: str) -> None:
            if kind == "event":
                self.settled.announce(payload)
            elif kind == RUN_CHANGED:
                self.settled.drop(payload)

        def apply(notifications: list[tuple[str, str]]) -> None:
            for kind, payload in notifications:
                changed(kind, payload)

        def committed(notifications: list[tuple[str, str]]) -> None:
            ours = [n for n in notifications if n[0] == "event" or n[0] == RUN_CHANGED]
            if not ours:
                return
            if asyncio._get_running_loop() is loop:  # committed inline, on this loop
                apply(ours)
            else:  # a writer thread: queued before the committing coroutine is resumed
                with contextlib.suppress(RuntimeError):  # loop closed
                    loop.call_soon_threadsafe(apply, ours)

        stop_hook = self.store.add_commit_hook(committed)
        stop_listening = self.store.add_listener(changed, kinds=[RUN_CHANGED, "event"])

        def stop() -> None:
            stop_hook()
            stop_listening()

        return stop


def live_cacheable(snapshot: RunSnapshot | CappedSnapshot) -> bool:
    """Whether a live run's snapshot may be kept until an event of the run drops it.

    Not: a capped snapshot (a big run: its statuses are not bounded by the body's size); a
    run already terminal whose nodes are still draining (the lease reaper cancels them
    without an event); a run with a node waiting for a timer (the claim of a due timer
    writes no event).
    """
    if isinstance(snapshot, CappedSnapshot) or snapshot.run.status in TERMINAL_RUN:
        return False
    return all(node.status != NodeStatus.WAITING_TIMER for node in snapshot.nodes)


def _visible(caller: Caller, run: RunRecord | None, run_id: str) -> RunRecord:
    """``run``, unless it is absent or in a namespace the caller cannot see (404)."""
    if run is None or not caller.can_see(run.namespace):
        raise RunNotFound(f"run {run_id!r} not found")
    return run


def parse_log_cursor(value: str | None) -> tuple[int, int]:
    """Split a log cursor ``"<last log id>.<attempts taken>"`` (a bare number = log id)."""
    if not value:
        return 0, 0
    try:
        parts = [int(p) for p in value.split(".")]
    except ValueError:
        raise InvalidInput("after must be a cursor returned as nextCursor") from None
    if max(parts) > INT64_MAX:  # no row has such an id; the number must not reach a query
        raise InvalidInput("after must be a cursor returned as nextCursor")
    if len(parts) == 1:
        return parts[0], 0
    if len(parts) != 2 or min(parts) < 0:
        raise InvalidInput("after must be a cursor returned as nextCursor")
    return parts[0], parts[1]
