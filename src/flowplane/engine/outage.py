"""Riding out a database outage: wait and retry with backoff, never give up.

The store retries a transaction for about a second, then raises
:class:`~flowplane.errors.DatabaseUnavailable` (an API request answers 503 with
``Retry-After`` then). The engine's loops cannot answer anyone: a worker whose claim or
completion failed because PostgreSQL restarts waits, with exponential backoff, for as long
as the outage lasts, and resumes. Nothing is lost meanwhile: claims are leases and
completions are fenced on them, so a retried transaction whose first attempt did commit
is refused, not applied twice.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

from flowplane.errors import DatabaseUnavailable
from flowplane.timeouts import wait_for

T = TypeVar("T")
_log = logging.getLogger("flowplane.outage")

BACKOFF_START_SECONDS = 0.1
BACKOFF_MAX_SECONDS = 5.0
# A loop that ran this long before failing again starts its backoff afresh.
BACKOFF_RESET_SECONDS = 30.0


class Backoff:
    """Exponential delays between attempts (doubling from ``start`` up to ``cap``), with
    one log line per failure and one when the database answers again."""

    def __init__(
        self,
        what: str,
        *,
        start: float = BACKOFF_START_SECONDS,
        cap: float = BACKOFF_MAX_SECONDS,
    ) -> None:
        self.what = what
        self.start = start
        self.cap = cap
        self.delay = start
        self.failures = 0
        self._since: float | None = None

    def failed(self, exc: BaseException) -> float:
        """Record a failed attempt; return how long to wait before the next."""
        if self._since is None:
            self._since = time.monotonic()
        self.failures += 1
        delay, self.delay = self.delay, min(self.delay * 2, self.cap)
        _log.warning("%s: %s; waiting %.1fs and retrying", self.what, describe(exc), delay)
        return delay

    def succeeded(self) -> None:
        """Record a successful attempt (logs the recovery after failures)."""
        if self._since is not None:
            _log.warning(
                "%s: the database answers again (after %d failed attempts, %.1fs)",
                self.what,
                self.failures,
                time.monotonic() - self._since,
            )
        self.delay, self.failures, self._since = self.start, 0, None


def describe(exc: BaseException) -> str:
    """The error for the log: its detail and, for a driver error, the driver's first line
    (the API's problem does not show it; an operator needs it: "Connection refused")."""
    detail = getattr(exc, "detail", None)
    text = str(detail) if detail else f"{type(exc).__name__}: {exc}"
    orig = getattr(exc.__cause__, "orig", None)
    if orig is not None:
        first = next(iter(str(orig).strip().splitlines()), "")
        text = f"{text} ({first[:200]})" if first else text
    return text


async def until_stored(op: Callable[[], Awaitable[T]], *, what: str) -> T:
    """Await ``op()`` until it does not raise :class:`DatabaseUnavailable`.

    For store operations whose outcome must not be dropped (a node's completion) or whose
    failure would wrongly fail a node (reading its inputs). Other errors propagate.
    """
    backoff: Backoff | None = None
    while True:
        try:
            result = await op()
        except DatabaseUnavailable as exc:
            backoff = backoff or Backoff(what)
            await asyncio.sleep(backoff.failed(exc))
            continue
        if backoff is not None:
            backoff.succeeded()
        return result


async def keep_running(
    loop: Callable[[], Awaitable[None]], *, what: str, stopping: asyncio.Event
) -> None:
    """Run ``loop()`` until it returns or ``stopping`` is set, restarting it with backoff
    whenever it raises (a database outage, or any bug: a dead claim loop would leave the
    process alive and idle, which is worse than a logged retry)."""
    backoff = Backoff(what)
    while not stopping.is_set():
        started = time.monotonic()
        try:
            await loop()
            return
        except DatabaseUnavailable as exc:
            if time.monotonic() - started > BACKOFF_RESET_SECONDS:
                backoff.succeeded()
            delay = backoff.failed(exc)
        except Exception as exc:
            _log.exception("%s failed; restarting it", what)
            if time.monotonic() - started > BACKOFF_RESET_SECONDS:
                backoff.succeeded()
            delay = backoff.failed(exc)
        try:
            await wait_for(stopping.wait(), delay)
        except TimeoutError:
            pass
