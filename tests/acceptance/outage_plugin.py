"""Connectors for the database-outage tests, loaded with ``--plugin outage_plugin``.

``outage.step`` performs one external side effect (a JSON line appended to the file named by
``OUTAGE_EFFECTS``), optionally after sleeping ``sleep`` seconds (work in flight while the
database restarts) and burning the CPU with the event loop held for ``busy`` seconds in
chunks of ``chunk`` seconds (an overloaded worker: other coroutines, such as a heartbeat on
the event loop, wait for each chunk).
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from typing import Any

from flowplane.connectors.base import NodeContext, connector


@connector(
    "outage.step",
    description="Sleep, burn CPU, append a side-effect line; return the value.",
    input_schema={
        "type": "object",
        "properties": {
            "value": {},
            "sleep": {"type": "number"},
            "busy": {"type": "number"},
            "chunk": {"type": "number"},
        },
        "additionalProperties": False,
    },
)
async def step(params: dict[str, Any], ctx: NodeContext) -> Any:
    """See the module docstring."""
    await asyncio.sleep(float(params.get("sleep") or 0))
    busy = float(params.get("busy") or 0)
    chunk = float(params.get("chunk") or 0.05)
    end = time.monotonic() + busy
    while time.monotonic() < end:
        until = min(end, time.monotonic() + chunk)
        while time.monotonic() < until:  # deliberately holds the event loop
            pass
        await asyncio.sleep(0)
    path = os.environ.get("OUTAGE_EFFECTS")
    if path:
        line = json.dumps(
            {"run": ctx.run_id, "node": ctx.node_id, "iteration": ctx.iteration}
        ).encode()
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, line + b"\n")
        finally:
            os.close(fd)
    return {"value": params.get("value")}
