"""SettledRunCache: the rendered detail of settled runs, kept in this process's memory.

A run is *settled* when the run and every one of its node runs are in a terminal state:
nothing in the engine writes to it any more, and only a user action (resume, rewind) can
change it again. ``GET /v1/runs/{id}`` of a settled run is the most frequent read a
dashboard or a polling client makes, so its rendered body is kept here and served
without a database read, routing or serialisation (see :mod:`flowplane.api.hot_routes`).

Consistency:

- a change made through this process (:meth:`RunService.resume`, ``rewind``, ``cancel``)
  drops the entry when its transaction commits, so this process never serves the old body
  afterwards;
- a change made through another process (a second API server, the local CLI) is visible
  here at the latest ``ttl_seconds`` after it commits (``FLOWPLANE_RUN_CACHE_SECONDS``,
  2 s by default; 0 turns the cache off), like the API-key cache of
  :mod:`flowplane.services.auth`;
- a reader that began before a drop cannot store what it read after it: :meth:`token`
  returns the drop counter, and :meth:`put` refuses a body read under an older one.

Memory is bounded: at most ``max_entries`` bodies (least recently stored dropped first).
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

MAX_ENTRIES = 2048
"""Bodies kept at most (a 5-node run's body is ~2.4 kB)."""


@dataclass(frozen=True)
class CachedRun:
    """One settled run's rendered detail."""

    namespace: str
    body: bytes
    stored_at: float


class SettledRunCache:
    """Rendered details of settled runs, by run id.

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

    @property
    def enabled(self) -> bool:
        """Whether entries are stored at all."""
        return self.ttl_seconds > 0

    def get(self, run_id: str) -> CachedRun | None:
        """The fresh entry of ``run_id``, if any."""
        entry = self._entries.get(run_id)
        if entry is None:
            return None
        if self._clock() - entry.stored_at >= self.ttl_seconds:
            self._entries.pop(run_id, None)
            return None
        return entry

    def token(self) -> int:
        """Take before reading a run; pass to :meth:`put` with what was read."""
        return self._drops

    def put(self, run_id: str, namespace: str, body: bytes, token: int) -> bool:
        """Store a settled run's body unless an entry was dropped since ``token``."""
        if not self.enabled or token != self._drops:
            return False
        self._entries[run_id] = CachedRun(namespace, body, self._clock())
        self._entries.move_to_end(run_id)
        while len(self._entries) > self.max_entries:
            self._entries.popitem(last=False)
        return True

    def drop(self, run_id: str) -> None:
        """Forget ``run_id`` (its run changed or is about to)."""
        self._drops += 1
        self._entries.pop(run_id, None)

    def __len__(self) -> int:
        return len(self._entries)
