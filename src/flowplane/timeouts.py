"""``wait_for``: :func:`asyncio.wait_for` without Python 3.11's lost cancellation.

On Python 3.11 ``asyncio.wait_for`` swallows a cancellation of its caller that arrives in
the loop turn in which the awaited thing completes: it returns the result and the caller
goes on as if it had not been cancelled (CPython gh-86296, fixed in 3.12 by building
``wait_for`` on ``asyncio.timeout``). A task cancelled there waits on at its next await, and
whoever cancelled it waits for it: a WebSocket subscription that was starting as its client
left kept ``flowplane serve`` from stopping. This is 3.12's ``wait_for``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import TypeVar

T = TypeVar("T")


async def wait_for(awaitable: Awaitable[T], timeout: float | None) -> T:
    """Await ``awaitable`` for at most ``timeout`` seconds (``None``: no limit); raise
    :class:`TimeoutError` (after cancelling it) when it takes longer. A cancellation of the
    caller always propagates."""
    async with asyncio.timeout(timeout):
        return await awaitable
