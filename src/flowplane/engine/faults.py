"""Fault injection for crash tests: kill this process at a named point.

Set ``FLOWPLANE_CRASH_AT=<point>[:<n>]`` to ``SIGKILL`` the process the ``n``-th time (default
1st) execution reaches ``point``. Points: ``dispatch`` (a run inserted, inside its
starting transaction, before it commits: with group commit, others of its batch may be
inserted too), ``claim`` (inside the claim transaction, before it
commits), ``complete`` (inside the completion transaction, before it commits),
``after-complete`` (just after a completion committed). Unset, this costs one dict lookup.
``FLOWPLANE_CRASH_DELAY_SECONDS`` waits that long (on the thread that reached the point)
before the kill: time for the rest of the process to do what it would do meanwhile (answer
a request early, say), so that a test can see it.
"""

from __future__ import annotations

import os
import signal
import threading
import time

_counts: dict[str, int] = {}
_lock = threading.Lock()
_SPEC = os.environ.get("FLOWPLANE_CRASH_AT", "")


def maybe_crash(point: str) -> None:
    """Kill the process if ``FLOWPLANE_CRASH_AT`` names ``point`` and its count is reached."""
    if not _SPEC:
        return
    name, _, nth = _SPEC.partition(":")
    if name != point:
        return
    with _lock:
        _counts[point] = _counts.get(point, 0) + 1
        reached = _counts[point] >= int(nth or "1")
    if reached:
        delay = float(os.environ.get("FLOWPLANE_CRASH_DELAY_SECONDS") or 0)
        if delay > 0:
            time.sleep(delay)
        os.kill(os.getpid(), signal.SIGKILL)
