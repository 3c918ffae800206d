"""Per-caller token buckets and the IETF ``RateLimit`` headers.

Each API key (or logged-in user) has a bucket holding up to ``limit`` tokens that refills
at ``limit`` per minute; a request takes one token. Limits come from
``Settings.rate_limit_per_minute`` by role, and a key's own ``rate_limit_per_minute``
overrides it (0 = unlimited). Buckets live in the memory of one process: with several API
processes behind a balancer each enforces the limit on the traffic it sees, unless
``FLOWPLANE_RATE_LIMIT_STORAGE`` names a Redis that all of them count in
(:mod:`flowplane.api.shared_ratelimit`; :func:`limiter_of` picks one).

Headers follow draft-ietf-httpapi-ratelimit-headers::

    RateLimit-Policy: "default";q=600;w=60
    RateLimit: "default";r=599;t=1

and a refused request gets a 429 problem with ``retryAfterMs`` and ``Retry-After``.
Only authenticated requests reach the limiter, so ``/health`` and rejected (401)
requests consume nothing.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from flowplane.errors import RateLimited
from flowplane.settings import Settings

WINDOW_SECONDS = 60
MAX_BUCKETS = 10_000
POLICY_NAME = "default"


@dataclass
class Bucket:
    """A token bucket: ``capacity`` tokens, refilled at ``rate`` per second."""

    capacity: float
    rate: float
    tokens: float
    updated: float

    def refill(self, now: float) -> None:
        """Add the tokens earned since the last update."""
        self.tokens = min(self.capacity, self.tokens + (now - self.updated) * self.rate)
        self.updated = now

    def full_at(self) -> float:
        """When the bucket will be full again."""
        return self.updated + (self.capacity - self.tokens) / self.rate


@dataclass(frozen=True)
class Decision:
    """The outcome of one :meth:`RateLimiter.take`."""

    allowed: bool
    limit: int
    remaining: int
    reset_seconds: int
    retry_after_ms: int

    def headers(self) -> dict[str, str]:
        """The ``RateLimit-Policy``/``RateLimit`` (and, when refused, ``Retry-After``) headers."""
        headers = {
            "RateLimit-Policy": f'"{POLICY_NAME}";q={self.limit};w={WINDOW_SECONDS}',
            "RateLimit": f'"{POLICY_NAME}";r={self.remaining};t={self.reset_seconds}',
        }
        if not self.allowed:
            headers["Retry-After"] = str(max(1, math.ceil(self.retry_after_ms / 1000)))
        return headers


class RateLimitExceeded(RateLimited):
    """A 429 that carries its headers to the problem handler."""

    def __init__(self, decision: Decision) -> None:
        super().__init__(
            f"rate limit of {decision.limit} requests per {WINDOW_SECONDS}s exceeded",
            retryAfterMs=decision.retry_after_ms,
        )
        self.headers = decision.headers()


class RateLimiter:
    """In-memory token buckets keyed by caller.

    Args:
        clock: monotonic seconds (injectable for tests).
    """

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._buckets: dict[str, Bucket] = {}

    def take(self, key: str, limit: int) -> Decision | None:
        """Take one token from ``key``'s bucket of ``limit`` per minute (``None``: unlimited)."""
        if limit <= 0:
            return None
        now = self._clock()
        bucket = self._buckets.get(key)
        if bucket is None or bucket.capacity != limit:
            if len(self._buckets) >= MAX_BUCKETS:
                self._evict(now)
            bucket = Bucket(float(limit), limit / WINDOW_SECONDS, float(limit), now)
            self._buckets[key] = bucket
        bucket.refill(now)
        if bucket.tokens >= 1.0:
            bucket.tokens -= 1.0
            return Decision(
                allowed=True,
                limit=limit,
                remaining=int(bucket.tokens),
                reset_seconds=math.ceil(bucket.full_at() - now),
                retry_after_ms=0,
            )
        wait = (1.0 - bucket.tokens) / bucket.rate
        return Decision(
            allowed=False,
            limit=limit,
            remaining=0,
            reset_seconds=max(1, math.ceil(wait)),
            retry_after_ms=max(1, math.ceil(wait * 1000)),
        )

    def check(self, key: str, limit: int) -> Decision | None:
        """Like :meth:`take` but raise :class:`RateLimitExceeded` when refused."""
        decision = self.take(key, limit)
        if decision is not None and not decision.allowed:
            raise RateLimitExceeded(decision)
        return decision

    async def take_async(self, key: str, limit: int) -> Decision | None:
        """:meth:`take`, as the :class:`Limiter` interface asks."""
        return self.take(key, limit)

    async def check_async(self, key: str, limit: int) -> Decision | None:
        """:meth:`check`, as the :class:`Limiter` interface asks."""
        return self.check(key, limit)

    async def refund_async(self, key: str, limit: int) -> None:
        """:meth:`refund`, as the :class:`Limiter` interface asks."""
        self.refund(key)

    def refund(self, key: str) -> None:
        """Give back the token a :meth:`take` on ``key`` took (an attempt that did not count)."""
        bucket = self._buckets.get(key)
        if bucket is not None:
            bucket.refill(self._clock())
            bucket.tokens = min(bucket.capacity, bucket.tokens + 1.0)

    def _evict(self, now: float) -> None:
        # Full buckets carry no state worth keeping; drop them first, then the oldest.
        for key in [k for k, b in self._buckets.items() if b.full_at() <= now]:
            del self._buckets[key]
        if len(self._buckets) >= MAX_BUCKETS:
            oldest = sorted(self._buckets, key=lambda k: self._buckets[k].updated)
            for key in oldest[: len(oldest) // 2]:
                del self._buckets[key]


class Limiter(Protocol):
    """What the API's limits need of a limiter, in memory or shared (async: a shared one
    asks Redis)."""

    async def take_async(self, key: str, limit: int) -> Decision | None:
        """Count one request of ``key`` against ``limit`` per minute (``None``: no limit)."""
        ...

    async def check_async(self, key: str, limit: int) -> Decision | None:
        """:meth:`take_async`, raising :class:`RateLimitExceeded` when refused."""
        ...

    async def refund_async(self, key: str, limit: int) -> None:
        """Give back what a :meth:`take_async` on ``key`` counted."""
        ...


def limiter_of(settings: Settings, purpose: str) -> Limiter:
    """The limiter ``FLOWPLANE_RATE_LIMIT_STORAGE`` asks for: this process's memory, or a
    Redis shared by every API process (keys under ``flowplane:<schema>:<purpose>``)."""
    if settings.rate_limit_storage == "memory":
        return RateLimiter()
    from flowplane.api.shared_ratelimit import SharedRateLimiter

    prefix = f"flowplane:{settings.database_schema}:{purpose}"
    return SharedRateLimiter(settings.rate_limit_storage, prefix)
