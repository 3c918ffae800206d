"""Recent runs: the events of runs the event feed's tail saw start, for streams that follow.

Most run streams are opened moments after the run started (a browser that just ``POST``-ed
it, a CLI ``--follow``): the run's few events passed through the feed's tail a moment ago.
:class:`RecentRuns` keeps them, per run, from the run's first event (``RunStarted``, written
by the transaction that creates the run), so such a stream starts without reading the
table: every event of the run up to the tail's position is in the entry, and every later
one is offered to the stream by the tail (the feed's hand-off rule), as a table read would
have given them. The namespace comes with them, so authorizing the stream needs no read
either.

Bounded: at most :data:`RECENT_RUNS` runs and :data:`MAX_BYTES` of event JSON in all (the
oldest started forgotten first), :data:`RUN_EVENTS` events per run (a run with more is
forgotten: its stream reads the table as before), and ``ttl_seconds`` of age (the run
cache's ``FLOWPLANE_RUN_CACHE_SECONDS``): an entry older than that is not served, its
stream reads the table. The feed clears it whenever its tail stops following the table (no
subscriber left): entries must hold *every* event of their run the tail went past.

A run changed by hand (a ``run-changed`` notification: deleted, cancelled, resumed, ...) is
forgotten: by the commit hook before the change is answered in this process, on its
notification in the others. A change no notification reaches (SQLite between processes, a
notification lost while PostgreSQL's LISTEN reconnects) is served at most ``ttl_seconds``
after the run started, the bound of cached run details. A tail read that began before a
forget cannot bring the run back: :meth:`RecentRuns.note` takes the forget count from
before the read and skips the runs forgotten since.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass, field

from flowplane.services.feed_pages import FeedEvent

__all__ = ["MAX_BYTES", "RECENT_RUNS", "RUN_EVENTS", "TTL_SECONDS", "RecentRun", "RecentRuns"]

RECENT_RUNS = 1024
"""Runs kept (by start, the oldest forgotten first)."""
RUN_EVENTS = 64
"""Events kept per run; a run with more is forgotten."""
MAX_BYTES = 8 * 1024 * 1024
"""Event JSON kept in all (the oldest started runs forgotten first; a run whose events
alone pass a quarter of it is forgotten)."""
TTL_SECONDS = 2.0
"""The age past which an entry is not served (the run cache's default bound)."""
FIRST_EVENT = "RunStarted"
_FORGOTTEN = 4096
"""Forgotten run ids remembered for the reads in flight (see :meth:`RecentRuns.note`)."""


@dataclass
class RecentRun:
    """What the tail saw of one run since its first event."""

    namespace: str
    events: list[FeedEvent] = field(default_factory=list)
    started_at: float = 0.0  # time.monotonic() of the tail read that brought RunStarted
    size: int = 0  # bytes of the events' JSON


class RecentRuns:
    """The events of recently started runs, by run id (see the module doc)."""

    def __init__(
        self,
        runs: int = RECENT_RUNS,
        events: int = RUN_EVENTS,
        *,
        max_bytes: int = MAX_BYTES,
        ttl_seconds: float = TTL_SECONDS,
    ) -> None:
        self.runs = runs
        self.events = events
        self.max_bytes = max_bytes
        self.ttl_seconds = ttl_seconds
        self.size = 0
        self._entries: OrderedDict[str, RecentRun] = OrderedDict()
        self.hits = 0
        # Forgets counted (any thread), and the count at each recently forgotten run.
        self._lock = threading.Lock()
        self.forgets = 0
        self._forgotten: OrderedDict[str, int] = OrderedDict()

    def note(self, rows: Iterable[tuple[str, FeedEvent]], since: int | None = None) -> None:
        """Record what one read of the tail brought (``(namespace, event)`` in seq order).

        ``since``: :attr:`forgets` before the read began; a run forgotten after that is not
        recorded (the read may have seen it before its change committed)."""
        if self.ttl_seconds <= 0:
            return
        now = time.monotonic()
        entries = self._entries
        limit = self.max_bytes // 4
        with self._lock:
            forgotten = self._forgotten
            if since is not None:
                while forgotten and next(iter(forgotten.values())) <= since:
                    forgotten.popitem(last=False)  # forgotten before the read: it saw that
            for namespace, event in rows:
                run_id = event.get("runId")
                if not isinstance(run_id, str):
                    continue
                entry = entries.get(run_id)
                if event.get("type") == FIRST_EVENT:
                    # A run's first event (a run id deleted and used again starts afresh).
                    if entry is not None:
                        self._drop(run_id)
                    if since is not None and run_id in forgotten:
                        continue  # deleted (or changed) while the read was in flight
                    entry = entries[run_id] = RecentRun(namespace, started_at=now)
                elif entry is None:
                    continue  # not seen from its start: unknown
                elif len(entry.events) >= self.events:
                    self._drop(run_id)
                    continue
                size = len(event.json)
                if entry.size + size > limit:
                    self._drop(run_id)  # too big to keep: its stream reads the table
                    continue
                entry.events.append(event)
                entry.size += size
                self.size += size
            while entries:  # the oldest first: too many, too big, or too old to serve
                oldest = next(iter(entries.values()))
                if (
                    len(entries) <= self.runs
                    and self.size <= self.max_bytes
                    and now - oldest.started_at < self.ttl_seconds
                ):
                    break
                self._drop(next(iter(entries)))

    def _drop(self, run_id: str) -> None:
        entry = self._entries.pop(run_id, None)
        if entry is not None:
            self.size -= entry.size

    def get(self, run_id: str) -> RecentRun | None:
        """The run's entry, when the tail saw it from its start at most ``ttl_seconds``
        ago."""
        entry = self._entries.get(run_id)
        if entry is None or time.monotonic() - entry.started_at >= self.ttl_seconds:
            return None
        return entry

    def forget(self, run_id: str) -> None:
        """Forget one run (any thread)."""
        with self._lock:
            self.forgets += 1
            self._forgotten.pop(run_id, None)
            self._forgotten[run_id] = self.forgets
            if len(self._forgotten) > _FORGOTTEN:
                self._forgotten.popitem(last=False)
            self._drop(run_id)

    def clear(self) -> None:
        """Forget every run (the tail no longer follows the table)."""
        with self._lock:
            self._entries.clear()
            self.size = 0

    def __len__(self) -> int:
        return len(self._entries)
