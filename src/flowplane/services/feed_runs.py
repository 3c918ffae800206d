"""Recent runs: the events of runs the event feed's tail saw start, for streams that follow.

Most run streams are opened moments after the run started (a browser that just ``POST``-ed
it, a CLI ``--follow``): the run's few events passed through the feed's tail a moment ago.
:class:`RecentRuns` keeps them, per run, from the run's first event (``RunStarted``, written
by the transaction that creates the run), so such a stream starts without reading the
table: every event of the run up to the tail's position is in the entry, and every later
one is offered to the stream by the tail (the feed's hand-off rule), as a table read would
have given them. The namespace comes with them, so authorizing the stream needs no read
either.

Bounded: at most :data:`RECENT_RUNS` runs (the oldest started forgotten first) and
:data:`RUN_EVENTS` events per run (a run with more is forgotten: its stream reads the
table as before). The feed clears it whenever its tail stops following the table (no
subscriber left): entries must hold *every* event of their run the tail went past. A run
changed by hand (a ``run-changed`` notification: deleted, cancelled, resumed, ...) is
forgotten: by the commit hook before the change is answered in this process, on its
notification in the others (a stream opened elsewhere within that lag may replay a run
just deleted, then ends: the settled-run cache's bound).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass, field

from flowplane.services.feed_pages import FeedEvent

__all__ = ["RECENT_RUNS", "RUN_EVENTS", "RecentRun", "RecentRuns"]

RECENT_RUNS = 1024
"""Runs kept (by start, the oldest forgotten first)."""
RUN_EVENTS = 64
"""Events kept per run; a run with more is forgotten."""
FIRST_EVENT = "RunStarted"


@dataclass
class RecentRun:
    """What the tail saw of one run since its first event."""

    namespace: str
    events: list[FeedEvent] = field(default_factory=list)


class RecentRuns:
    """The events of recently started runs, by run id (see the module doc)."""

    def __init__(self, runs: int = RECENT_RUNS, events: int = RUN_EVENTS) -> None:
        self.runs = runs
        self.events = events
        self._entries: OrderedDict[str, RecentRun] = OrderedDict()
        self.hits = 0

    def note(self, rows: Iterable[tuple[str, FeedEvent]]) -> None:
        """Record what one read of the tail brought (``(namespace, event)`` in seq order)."""
        entries = self._entries
        for namespace, event in rows:
            run_id = event.get("runId")
            if not isinstance(run_id, str):
                continue
            entry = entries.get(run_id)
            if event.get("type") == FIRST_EVENT:
                # A run's first event (a run id deleted and used again starts afresh).
                entries.pop(run_id, None)
                entry = entries[run_id] = RecentRun(namespace)
                if len(entries) > self.runs:
                    entries.popitem(last=False)
            elif entry is None:
                continue  # not seen from its start: unknown
                if len(entries) > self.runs:
                    entries.popitem(last=False)
            elif len(entry.events) >= self.events:
                del entries[run_id]
                continue
            entry.events.append(event)

    def get(self, run_id: str) -> RecentRun | None:
        """The run's entry, when the tail saw it from its start."""
        return self._entries.get(run_id)

    def forget(self, run_id: str) -> None:
        """Forget one run (any thread: one dict operation)."""
        self._entries.pop(run_id, None)

    def clear(self) -> None:
        """Forget every run (the tail no longer follows the table)."""
        self._entries.clear()

    def __len__(self) -> int:
        return len(self._entries)
