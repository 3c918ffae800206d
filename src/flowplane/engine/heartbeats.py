"""A worker's heartbeats: lease extensions on a thread and a connection of their own.

A heartbeat that queued behind the work's transactions (the store's writer threads) or
waited for a busy event loop to run its timer arrived late under load: with a 5 s lease
and a load average of 13, live workers lost their leases and nodes ran again. Here the
heartbeat is a thread that wakes every ``interval`` seconds by the clock, snapshots the
leases the worker holds, and extends them through :meth:`Store.run_sync` on that thread
(so on its own kept connection, never waiting for a writer thread). Only the leases found
lost go back to the event loop, to cancel their node runs.

A lease still says that its node run progresses, not merely that the process exists: the
event loop ticks a timestamp, and a loop silent for :data:`STALL_LEASES` leases (a
connector that blocks it for good) gets no more beats, so its leases expire and another
worker takes the node runs over. A loop that is only slow (an overloaded machine) keeps
them.

Smallest safe lease: the heartbeat runs every third of the lease, so a lease survives two
missed beats; it must exceed the longest stall of one beat (a database restart's
reconnection, a slow commit on an overloaded server) plus one interval. See the README.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import threading
import time
from collections.abc import Callable

from flowplane.errors import DatabaseUnavailable
from flowplane.store.base import Store
from flowplane.store.tx import Tx

_log = logging.getLogger("flowplane.worker")
Lease = tuple[int, int]  # (node run id, lease epoch)
# Beats per lease: a lease survives BEATS_PER_LEASE - 1 missed beats.
BEATS_PER_LEASE = 3
MIN_INTERVAL_SECONDS = 0.05
JOIN_SECONDS = 5.0
# A loop silent for this many leases is stuck: its leases are let expire.
STALL_LEASES = 3


class Heartbeats:
    """Extends the leases ``leases()`` returns, every ``lease_ms / 3``, until cancelled.

    Args:
        store: the store (its :meth:`~Store.run_sync` runs on the heartbeat thread).
        owner: the worker id the leases are held under.
        lease_ms: how far each beat extends a lease.
        leases: a snapshot of the leases held now (called on the heartbeat thread: it
            must only copy plain data).
        lost: called on the event loop with the leases a beat found no longer held
            (cancelled runs, leases taken over after expiring).
    """

    def __init__(
        self,
        store: Store,
        *,
        owner: str,
        lease_ms: int,
        leases: Callable[[], list[Lease]],
        lost: Callable[[list[Lease]], None],
    ) -> None:
        self.store = store
        self.owner = owner
        self.lease_ms = lease_ms
        self.interval = max(MIN_INTERVAL_SECONDS, lease_ms / 1000 / BEATS_PER_LEASE)
        self._leases = leases
        self._lost = lost
        self._stop = threading.Event()
        self._loop_seen = time.monotonic()
        self.beats = 0

    async def run(self) -> None:
        """Beat on a thread until this coroutine is cancelled."""
        loop = asyncio.get_running_loop()
        thread = threading.Thread(
            target=self._beat_until_stopped, args=(loop,), name=f"fp-heartbeat-{self.owner}"
        )
        thread.daemon = True
        thread.start()
        try:
            while True:  # until cancelled (the worker's shutdown)
                self._loop_seen = time.monotonic()
                await asyncio.sleep(self.interval / 2)
        finally:
            self._stop.set()
            await asyncio.to_thread(thread.join, JOIN_SECONDS)

    def _beat_until_stopped(self, loop: asyncio.AbstractEventLoop) -> None:
        # Timed by the clock, not from the end of the previous beat: a slow beat does not
        # push the next one back.
        next_beat = time.monotonic() + self.interval
        while not self._stop.wait(max(0.0, next_beat - time.monotonic())):
            next_beat = max(next_beat + self.interval, time.monotonic())
            leases = self._snapshot()
            if not leases:
                continue
            stalled = time.monotonic() - self._loop_seen
            if stalled > STALL_LEASES * self.lease_ms / 1000:
                _log.warning("event loop stalled for %.1fs: leases not extended", stalled)
                continue
            try:
                held = self.store.run_sync(
                    functools.partial(
                        _extend, owner=self.owner, leases=leases, lease_ms=self.lease_ms
                    )
                )
            except DatabaseUnavailable as exc:
                # The next beat retries; the leases expire only if the outage outlasts them.
                _log.warning("heartbeat failed: %s", exc.detail)
                continue
            except Exception:  # an engine bug must not stop heartbeats for good
                if self._stop.is_set():
                    return
                _log.exception("heartbeat failed")
                continue
            self.beats += 1
            lost = [lease for lease in leases if lease[0] not in held]
            if lost:
                with contextlib.suppress(RuntimeError):  # loop closed: shutting down
                    loop.call_soon_threadsafe(self._lost, lost)

    def _snapshot(self) -> list[Lease]:
        for _ in range(3):
            with contextlib.suppress(RuntimeError):  # changed size while copied
                return self._leases()
        return []


def _extend(tx: Tx, *, owner: str, leases: list[Lease], lease_ms: int) -> set[int]:
    return tx.extend_leases(owner, leases, lease_ms)
