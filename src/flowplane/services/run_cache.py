"""SettledRunCache: run details kept in this process's memory, settled and live.

A run is *settled* when the run and every one of its node runs are in a terminal state:
nothing in the engine writes to it any more, and only a user action (resume, rewind) can
change it again. ``GET /v1/runs/{id}`` of a settled run is the most frequent read a
dashboard or a polling client makes, so its rendered body is kept here and served
without a database read, routing or serialisation (see :mod:`flowplane.api.settled_runs`).

Consistency:

- a change made through this process (:meth:`RunService.resume`, ``rewind``, ``cancel``)
  drops the entry when its transaction commits, so this process never serves the old body
  afterwards;
- a change made through another process (a second API server, the local CLI) commits a
  ``run-changed`` notification with it; on PostgreSQL every API process LISTENs and drops
  the entry when it arrives (milliseconds). Without one (SQLite has no notifications
  between processes, or one lost while the LISTEN connection reconnects) the entry is
  served at most ``ttl_seconds`` (``FLOWPLANE_RUN_CACHE_SECONDS``, 2 s by default; 0 turns
  the cache off), like the API-key cache of :mod:`flowplane.services.auth`;
- a reader that began before a drop cannot store what it read after it: :meth:`token`
  returns the drop counter, and :meth:`put` refuses a body read under an older one.

Live runs (not settled) are kept too, as the snapshot read for them (rendered again per
answer, since a running run's and node's ``durationMs`` grows with the clock): every commit
that changes what a run's detail shows also writes an event of that run (but one: a worker
giving a claimed node back at graceful shutdown, ``engine.control.release``, which is
therefore bounded by ``ttl_seconds`` only), and every such
commit is announced by the store's ``event`` notification (in-process at commit; from
other processes over LISTEN on PostgreSQL). A notification makes the live entries *unsure*:
none is served until :meth:`caught_up` is told which runs the events since the last
catch-up belong to (one read of the event table, shared by the readers waiting for it,
:meth:`flowplane.services.run_reads.RunReader.detail`), and those runs are dropped. What a
run's detail shows but no event announces is not cached live
(:func:`flowplane.services.run_reads.live_cacheable`); changes no notification reaches
(SQLite between processes, a LISTEN reconnect) are bounded by the same ``ttl_seconds``.

Pages of ``GET /v1/runs`` are kept too (:meth:`put_list`, by the caller's namespaces and the
query as received) and dropped, all of them, by any announced event or dropped run.

Memory is bounded: at most ``max_entries`` bodies and :data:`MAX_TOTAL_BYTES` in all
(oldest dropped first, expired ones swept as new ones arrive); a body over
:data:`MAX_BODY_BYTES` is not kept.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import Any

RUN_CHANGED = "run-changed"
"""The store notification (payload: run id) a resume, rewind or cancel commits with it."""
MAX_ENTRIES = 2048
"""Bodies kept at most (a 5-node run's body is ~2.4 kB)."""
MAX_BODY_BYTES = 256 * 1024
"""Larger bodies are not kept (a node output alone may be 4 MB)."""
MAX_TOTAL_BYTES = 64 * 1024 * 1024
"""Bytes of bodies kept at most."""


MAX_LISTS = 128
"""Run listings kept at most (by caller's namespaces and query)."""
MAX_LIST_ITEMS = 100
"""Larger pages are not kept (memory: at most MAX_LISTS x MAX_LIST_ITEMS summaries)."""
MAX_LIVE_ENTRIES = 1024
"""Live runs kept at most."""
REFRESH_AFTER = 0.5
"""An entry this share of ``ttl_seconds`` old is read anew by one request (:meth:`get` with
``claim``) while the others go on being answered from it: under steady reads an entry is
replaced before it expires, and no request waits for the read but the one that makes it.
(When entries simply expired, every request in flight for the run missed together, each
read it, and waited: 20-70 ms p99 on PostgreSQL every ``ttl_seconds``, ``bench/api.py``.)"""
_FRESH, _DUE, _EXPIRED = "fresh", "due", "expired"
CATCH_UP_EVENTS = 2000
"""Event batches (one per transaction and run) one catch-up reads; more since the last
one drop every live entry instead."""


@dataclass(slots=True)
class CachedRun:
    """One settled run's rendered detail (``refreshing``: a request is reading it anew)."""

    namespace: str
    body: bytes
    stored_at: float
    refreshing: bool = False


class LiveRun:
    """One live run's snapshot, and what a face derived from it to answer (``view``: its
    rendering is made per answer, since running durations grow with the clock)."""

    __slots__ = ("namespace", "refreshing", "size", "snapshot", "stored_at", "view")

    def __init__(self, namespace: str, snapshot: Any, size: int, now: float) -> None:
        self.namespace = namespace
        self.snapshot = snapshot
        self.size = size
        self.stored_at = now
        self.view: Any = None
        self.refreshing = False


class CachedList:
    """One page of a run listing (summaries without documents), and what a face derived
    from it and from the request (``view``, ``link``)."""

    __slots__ = ("link", "page", "refreshing", "stored_at", "view")

    def __init__(self, page: Any, now: float) -> None:
        self.page = page
        self.view: Any = None
        self.link: Any = None
        self.stored_at = now
        self.refreshing = False


class SettledRunCache:
    """Rendered details of settled runs, and snapshots of live runs, by run id.

    Args:
        ttl_seconds: how long an entry may be served (0 or less: nothing is stored).
        max_entries: the most entries kept.
        clock: monotonic seconds (injectable for tests).
    """

    def __init__(
        self,
        ttl_seconds: float,
        max_entries: int = MAX_ENTRIES,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.ttl_seconds = ttl_seconds
        self.max_entries = max_entries
        self._clock = clock
        self._entries: OrderedDict[str, CachedRun] = OrderedDict()
        self._drops = 0
        self._live_drops = 0  # (a commit announced bumps only this one: settled reads go on)
        self._bytes = 0
        self._live: OrderedDict[str, LiveRun] = OrderedDict()
        self._live_bytes = 0
        self.position: int | None = None
        """Every event with ``seq`` up to this one has been applied to the live entries
        (``None``: not known yet; the first catch-up reads the newest ``seq``)."""
        self._announced = 0  # the highest seq a notification announced
        self._unknown = False  # a notification without a seq (a LISTEN reconnect) arrived
        self._lists: OrderedDict[Hashable, CachedList] = OrderedDict()
        self._list_drops = 0

    @property
    def enabled(self) -> bool:
        """Whether entries are stored at all."""
        return self.ttl_seconds > 0

    def get(self, run_id: str, *, claim: bool = False) -> CachedRun | None:
        """The fresh entry of ``run_id``, if any; ``None`` too when it is due for a refresh
        that no request has claimed yet (``claim``: this one claims it and reads anew)."""
        entry = self._entries.get(run_id)
        if entry is None:
            return None
        state = self._state(entry, claim)
        if state is _EXPIRED:
            self._forget(run_id)
        return entry if state is _FRESH else None

    def _state(self, entry: CachedRun | LiveRun | CachedList, claim: bool) -> str:
        """Whether ``entry`` may be answered from (:data:`_FRESH`), is due for a refresh
        nobody has claimed (:data:`_DUE`; claimed now if ``claim``) or has expired."""
        age = self._clock() - entry.stored_at
        if age >= self.ttl_seconds:
            return _EXPIRED
        if entry.refreshing or age < self.ttl_seconds * REFRESH_AFTER:
            return _FRESH
        entry.refreshing = claim
        return _DUE

    def token(self) -> int:
        """Take before reading a run; pass to :meth:`put` with what was read."""
        return self._drops

    def live_token(self) -> int:
        """Take before reading a run; pass to :meth:`put_live` with what was read."""
        return self._live_drops

    def put(self, run_id: str, namespace: str, body: bytes, token: int) -> bool:
        """Store a settled run's body unless an entry was dropped since ``token``."""
        if not self.enabled or token != self._drops or len(body) > MAX_BODY_BYTES:
            return False
        now = self._clock()
        self._forget(run_id)
        self._entries[run_id] = CachedRun(namespace, body, now)
        self._bytes += len(body)
        # Entries are in store order and share one TTL: expired ones are at the front.
        while self._entries:
            oldest_id, oldest = next(iter(self._entries.items()))
            if (
                now - oldest.stored_at < self.ttl_seconds
                and len(self._entries) <= self.max_entries
                and self._bytes <= MAX_TOTAL_BYTES
            ):
                break
            self._forget(oldest_id)
        return True

    def _forget(self, run_id: str) -> None:
        entry = self._entries.pop(run_id, None)
        if entry is not None:
            self._bytes -= len(entry.body)

    def drop(self, run_id: str) -> None:
        """Forget ``run_id`` (its run changed or is about to), settled or live."""
        self._drops += 1
        self._live_drops += 1
        self._forget(run_id)
        self._forget_live(run_id)
        self.drop_lists()

    # --- run listings --------------------------------------------------------------------

    def list_token(self) -> int:
        """Take before reading a listing; pass to :meth:`put_list` with what was read."""
        return self._list_drops

    def get_list(self, key: Hashable, *, claim: bool = False) -> CachedList | None:
        """The fresh listing kept under ``key``, if any (``claim``: see :meth:`get`)."""
        entry = self._lists.get(key)
        if entry is None:
            return None
        state = self._state(entry, claim)
        if state is _EXPIRED:
            del self._lists[key]
        return entry if state is _FRESH else None

    def put_list(self, key: Hashable, page: Any, token: int) -> CachedList | None:
        """Keep a listing's page unless any run changed since ``token``; the entry kept."""
        if not self.enabled or token != self._list_drops or len(page.items) > MAX_LIST_ITEMS:
            return None
        now = self._clock()
        self._lists.pop(key, None)
        entry = self._lists[key] = CachedList(page, now)
        while len(self._lists) > MAX_LISTS:
            self._lists.popitem(last=False)
        return entry

    def drop_lists(self) -> None:
        """Forget every listing (a run changed: any page may show it)."""
        self._list_drops += 1
        self._lists.clear()

    # --- live runs ---------------------------------------------------------------------------

    @property
    def unsure(self) -> bool:
        """Whether events were announced that no catch-up has applied yet."""
        return self.position is None or self._unknown or self._announced > self.position

    def get_live(self, run_id: str, *, claim: bool = False) -> LiveRun | None:
        """The fresh live entry of ``run_id``, unless a change may not have been applied
        (``claim``: see :meth:`get`)."""
        entry = self._live.get(run_id)
        if entry is None or self.unsure:
            return None
        state = self._state(entry, claim)
        if state is _EXPIRED:
            self._forget_live(run_id)
        return entry if state is _FRESH else None

    def put_live(self, run_id: str, namespace: str, snapshot: Any, size: int, token: int) -> bool:
        """Keep a live run's snapshot (``size``: its rendering's) unless anything was
        dropped since ``token`` (a change announced since, or applied) or a change may not
        have been applied yet."""
        if not self.enabled or token != self._live_drops or self.unsure or size > MAX_BODY_BYTES:
            return False
        now = self._clock()
        self._forget_live(run_id)
        self._live[run_id] = LiveRun(namespace, snapshot, size, now)
        self._live_bytes += size
        while self._live:
            oldest_id, oldest = next(iter(self._live.items()))
            if (
                now - oldest.stored_at < self.ttl_seconds
                and len(self._live) <= MAX_LIVE_ENTRIES
                and self._live_bytes <= MAX_TOTAL_BYTES
            ):
                break
            self._forget_live(oldest_id)
        return True

    def _forget_live(self, run_id: str) -> None:
        entry = self._live.pop(run_id, None)
        if entry is not None:
            self._live_bytes -= entry.size

    def drop_live(self) -> None:
        """Forget every live entry (and refuse what readers in flight read)."""
        self._live_drops += 1
        self._live.clear()
        self._live_bytes = 0

    def announce(self, payload: str) -> None:
        """An ``event`` notification: events up to ``payload`` (a ``seq``; empty: unknown)
        were committed. With no live entry kept nothing needs reading: the position moves
        on (what readers in flight read is refused)."""
        seq = int(payload) if payload.isdigit() else None
        self.drop_lists()
        if not self._live:
            self._live_drops += 1
            if seq is not None and self.position is not None and not self._unknown:
                self.position = max(self.position, seq)
                self._announced = max(self._announced, seq)
                return
        if seq is None:
            self._unknown = True
        else:
            self._announced = max(self._announced, seq)

    def catch_up_from(self) -> int | None:
        """Start a catch-up: the position to read events after (``None``: read the newest
        ``seq`` instead). A notification arriving from now on makes it unsure again."""
        self._unknown = False
        return self.position

    def caught_up(self, start: int | None, changed: list[tuple[int, str]], complete: bool) -> None:
        """Apply a catch-up from ``start``: ``changed`` are ``(seq, run id)`` of the events
        read after it (``complete``: all of them), or, with ``start`` ``None``, one pair with
        the newest ``seq``."""
        if start is None or not complete or (not changed and self._announced > start):
            self.drop_live()
        elif changed:
            # A reader in flight may have read one of these runs before its change: refuse
            # what it read (its entry is not here yet to be dropped).
            self._live_drops += 1
            for _seq, run_id in changed:
                if run_id in self._live:
                    self.drop(run_id)
        last = max((seq for seq, _ in changed), default=start or 0)
        if not self._live and self._announced > last:
            last = self._announced  # nothing kept that an unread event could be about
        self.position = max(last, self.position or 0)
        self._announced = max(self._announced, self.position)

    def __len__(self) -> int:
        return len(self._entries) + len(self._live)
