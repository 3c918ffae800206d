"""SettledRunCache: the rendered detail of settled runs, kept in this process's memory.

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

Memory is bounded: at most ``max_entries`` bodies and :data:`MAX_TOTAL_BYTES` in all
(oldest dropped first, expired ones swept as new ones arrive); a body over
:data:`MAX_BODY_BYTES` is not kept.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

RUN_CHANGED = "run-changed"
"""The store notification (payload: run id) a resume, rewind or cancel commits with it."""
MAX_ENTRIES = 2048
"""Bodies kept at most (a 5-node run's body is ~2.4 kB)."""
MAX_BODY_BYTES = 256 * 1024
"""Larger bodies are not kept (a node output alone may be 4 MB)."""
MAX_TOTAL_BYTES = 64 * 1024 * 1024
"""Bytes of bodies kept at most."""


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
        self._bytes = 0

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
            self._forget(run_id)
            return None
        return entry

    def token(self) -> int:
        """Take before reading a run; pass to :meth:`put` with what was read."""
        return self._drops

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
        """Forget ``run_id`` (its run changed or is about to)."""
        self._drops += 1
        self._forget(run_id)

    def __len__(self) -> int:
        return len(self._entries)
