"""Rate limits shared by every API process: counted in Redis with the ``limits`` library.

Selected by ``FLOWPLANE_RATE_LIMIT_STORAGE=redis://host:6379/0``. The per-process token
buckets of :mod:`flowplane.api.ratelimit` let each of N API processes grant a key its whole
limit, so behind a balancer the key gets N times it; here every process increments the same
counter, so a key gets its limit once. The strategy is ``limits``' fixed window (one
``INCRBY`` with an expiry per request: a minute's counter per key), which allows up to twice
the limit across a window boundary, where the in-memory buckets refill continuously.

If Redis cannot be reached the request is let through (and a warning logged at most once a
minute): the limits protect the service, they must not take it down.
"""

from __future__ import annotations

import logging
import math
import time

from limits import RateLimitItem, RateLimitItemPerMinute
from limits.aio.storage import RedisStorage

from flowplane.api.ratelimit import WINDOW_SECONDS, Decision, RateLimitExceeded

_log = logging.getLogger("flowplane.ratelimit")
WARN_EVERY_SECONDS = 60.0


class SharedRateLimiter:
    """Fixed-window counters in Redis, keyed by caller (the async interface of
    :class:`~flowplane.api.ratelimit.RateLimiter`).

    Args:
        url: the ``redis://`` URL.
        prefix: the key prefix (installation and purpose), so limiters do not mix.
    """

    def __init__(self, url: str, prefix: str) -> None:
        self._storage = RedisStorage(url, implementation="redispy", key_prefix=prefix)
        self._items: dict[int, RateLimitItem] = {}
        self._warned_at = -math.inf

    def _item(self, limit: int) -> RateLimitItem:
        item = self._items.get(limit)
        if item is None:
            item = self._items[limit] = RateLimitItemPerMinute(limit)
        return item

    async def take_async(self, key: str, limit: int) -> Decision | None:
        """Count one request of ``key`` against ``limit`` per minute (``None``: unlimited,
        or Redis is unreachable)."""
        if limit <= 0:
            return None
        item = self._item(limit)
        redis_key = item.key_for(key)
        try:
            count = await self._storage.incr(redis_key, item.get_expiry())
            if count <= limit:
                return Decision(True, limit, limit - count, WINDOW_SECONDS, 0)
            reset_at = await self._storage.get_expiry(redis_key)
        except Exception as exc:
            self._warn(exc)
            return None
        wait = max(1.0, reset_at - time.time())
        return Decision(False, limit, 0, math.ceil(wait), math.ceil(wait * 1000))

    async def check_async(self, key: str, limit: int) -> Decision | None:
        """Like :meth:`take_async` but raise :class:`RateLimitExceeded` when refused."""
        decision = await self.take_async(key, limit)
        if decision is not None and not decision.allowed:
            raise RateLimitExceeded(decision)
        return decision

    async def refund_async(self, key: str, limit: int) -> None:
        """Give back the request a :meth:`take_async` on ``key`` counted."""
        if limit <= 0:
            return
        item = self._item(limit)
        try:
            await self._storage.incr(item.key_for(key), item.get_expiry(), amount=-1)
        except Exception as exc:
            self._warn(exc)

    def _warn(self, exc: Exception) -> None:
        now = time.monotonic()
        if now - self._warned_at >= WARN_EVERY_SECONDS:
            self._warned_at = now
            _log.warning("rate-limit storage unreachable (%s); not limiting", type(exc).__name__)
