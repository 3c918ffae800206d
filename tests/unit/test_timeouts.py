"""``flowplane.timeouts.wait_for``: a cancellation is never lost (Python 3.11's is)."""

from __future__ import annotations

import asyncio

import pytest

from flowplane.timeouts import wait_for


async def _cancelled_as_it_completes(waiter: object) -> bool:
    """Cancel a task in the loop turn in which what it waits for completes; whether the
    task ended cancelled."""
    event = asyncio.Event()
    went_on = asyncio.Event()

    async def task_body() -> None:
        await waiter(event.wait(), 10)  # type: ignore[operator]
        went_on.set()
        await asyncio.sleep(10)  # where a lost cancellation leaves it

    task = asyncio.create_task(task_body())
    await asyncio.sleep(0)  # the task waits now
    event.set()  # its wait completes in the next turn...
    task.cancel()  # ...in which the cancellation arrives too
    try:
        async with asyncio.timeout(0.5):
            await task
    except asyncio.CancelledError:
        return not went_on.is_set()
    except TimeoutError:
        task.cancel()
        return False
    return False


async def test_a_cancellation_as_the_wait_completes_is_not_lost() -> None:
    assert await _cancelled_as_it_completes(wait_for)


async def test_the_test_sees_python_3_11s_lost_cancellation() -> None:
    import sys

    if sys.version_info >= (3, 12):
        pytest.skip("asyncio.wait_for keeps the cancellation from Python 3.12")
    assert not await _cancelled_as_it_completes(asyncio.wait_for)


async def test_wait_for_times_out_and_returns_results() -> None:
    assert await wait_for(asyncio.sleep(0, "done"), 1) == "done"
    assert await wait_for(asyncio.sleep(0, "done"), None) == "done"
    with pytest.raises(TimeoutError):
        await wait_for(asyncio.sleep(5), 0.01)
