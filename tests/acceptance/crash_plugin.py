"""Connectors for crash tests, loaded into real worker processes with ``--plugin crash_plugin``.

The connectors report to files the test reads after the worker is dead, because a
``kill -9`` leaves nothing else behind:

* ``CRASH_SIDE_EFFECTS`` — the external side-effect counter: one JSON line per executed side
  effect (``O_APPEND``, one ``write`` each, so lines never interleave between processes).
* ``CRASH_MARKERS`` — one JSON line when a connector starts holding (the test kills then).
* ``CRASH_TRACE`` — one JSON line per ``transitions.complete`` call with its epoch and
  whether it was accepted (installed when the variable is set; see :func:`_trace_completions`).

Behaviour switches (environment of the worker process, so a restarted worker runs normally):

* ``CRASH_HOLD_NODE=<node id>`` and ``CRASH_HOLD=before|after``: at that node, hold forever
  (heartbeating, like any long connector) before or after writing the side effect.
* ``CRASH_BLOCK_NODE=<node id>``, ``CRASH_BLOCK=<path>``, ``CRASH_RELEASE=<path>``: at that
  node, write the side effect, wait (heartbeating) until ``CRASH_BLOCK`` exists, then block the
  event loop (a stuck process: no heartbeats) until ``CRASH_RELEASE`` exists. Blocking the
  loop makes the order on release deterministic: the connector returns and the completion is
  submitted before the worker's heartbeat can notice that the lease was lost.
* ``CRASH_WORKER_NAME``: reported in outputs and lines.
"""

from __future__ import annotations

import asyncio
import functools
import json
import os
import time
from pathlib import Path
from typing import Any

from flowplane.connectors.base import NodeContext, connector
from flowplane.engine import transitions

WORKER_NAME = os.environ.get("CRASH_WORKER_NAME", "")


def _append(variable: str, record: dict[str, Any]) -> None:
    path = os.environ.get(variable)
    if not path:
        return
    line = (json.dumps(record, sort_keys=True) + "\n").encode()
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line)
    finally:
        os.close(fd)


def _record(ctx: NodeContext, kind: str) -> dict[str, Any]:
    return {
        "kind": kind,
        "run": ctx.run_id,
        "node": ctx.node_id,
        "iteration": ctx.iteration,
        "attempt": ctx.attempt,
        "worker": WORKER_NAME,
        "pid": os.getpid(),
    }


@connector(
    "crash.effect",
    description="Perform one external side effect (a line in CRASH_SIDE_EFFECTS); return value.",
    input_schema={
        "type": "object",
        "properties": {"value": {}},
        "additionalProperties": False,
    },
)
async def effect(params: dict[str, Any], ctx: NodeContext) -> Any:
    """Write the side-effect line, holding or blocking where the environment says."""
    hold = (
        os.environ.get("CRASH_HOLD") if os.environ.get("CRASH_HOLD_NODE") == ctx.node_id else None
    )
    if hold == "before":
        _append("CRASH_MARKERS", _record(ctx, "hold-before"))
        await asyncio.sleep(3600)
    _append("CRASH_SIDE_EFFECTS", _record(ctx, "effect"))
    if hold == "after":
        _append("CRASH_MARKERS", _record(ctx, "hold-after"))
        await asyncio.sleep(3600)
    if os.environ.get("CRASH_BLOCK_NODE") == ctx.node_id:
        _append("CRASH_MARKERS", _record(ctx, "entered"))
        block = Path(os.environ["CRASH_BLOCK"])
        while not block.exists():
            await asyncio.sleep(0.02)
        _append("CRASH_MARKERS", _record(ctx, "blocking"))
        release = Path(os.environ["CRASH_RELEASE"])
        while not release.exists():
            time.sleep(0.02)  # deliberately blocks the event loop: no heartbeats either
    return {"value": params.get("value"), "worker": WORKER_NAME}


def _trace_completions() -> None:
    """Wrap ``transitions.complete`` to log every completion attempt and its verdict.

    The worker calls ``transitions.complete`` through the module, so replacing the
    attribute sees every call, in the transaction thread, whatever happens to the task.
    """
    original = transitions.complete

    @functools.wraps(original)
    def complete(tx: Any, claimed: Any, outcome: Any, **kwargs: Any) -> Any:
        result = original(tx, claimed, outcome, **kwargs)
        _append(
            "CRASH_TRACE",
            {
                "run": claimed.run_id,
                "node": claimed.node_id,
                "iteration": claimed.iteration,
                "epoch": claimed.lease_epoch,
                "accepted": result.accepted,
                "worker": WORKER_NAME,
            },
        )
        return result

    transitions.complete = complete


if os.environ.get("CRASH_TRACE"):
    _trace_completions()
