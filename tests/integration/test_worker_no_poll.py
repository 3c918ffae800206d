"""A worker takes all the work it is told about without waiting for its poll, on both
backends.

The claim loop sleeps until a wake-up or ``poll_interval_seconds``. Work made ready wakes it
(a "ready" notification, or a hand-off with the transaction that made it ready); when a
claim filled every slot, a finished node wakes it, because work may have been left behind.
The slots can also be over-filled for a moment: completions hand off successors before the
node tasks that completed have ended. A loop that saw no free slot then must count as
full, or the ready foreach items it left behind wait for the next poll. The poll is an hour
here, so a run that finishes went through wake-ups alone.
"""

from __future__ import annotations

from typing import Any

from engine_support import fast_settings, running, wait_status

from flowplane.services.caller import Caller
from flowplane.store.base import Store

POLL_NEVER = 3600.0


def fan_doc(width: int) -> dict[str, Any]:
    return {
        "name": "wide-fan",
        "nodes": [
            {"id": "start", "type": "util.noop"},
            {"id": "fan", "type": "util.noop", "needs": ["start"], "foreach": list(range(width))},
            {"id": "join", "type": "util.noop", "needs": ["fan"]},
        ],
    }


async def test_a_foreach_wider_than_the_worker_finishes_without_a_poll(store: Store) -> None:
    settings = fast_settings(poll_interval_seconds=POLL_NEVER, worker_concurrency=16)
    async with running(store, settings=settings) as rt:
        for width in (40, 200, 200, 200):
            run_id = (await rt.runs.start(Caller.system(), fan_doc(width))).run.id
            run = await wait_status(rt.runs, run_id, "finished", "failed", timeout=30)
            assert run.status == "finished"
