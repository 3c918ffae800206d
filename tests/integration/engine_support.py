"""Helpers for engine tests: a running worker over a real store, and test connectors."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from flowplane.connectors.base import NodeContext, connector
from flowplane.connectors.registry import Registry, load_builtins
from flowplane.engine.worker import Worker
from flowplane.services.caller import Caller
from flowplane.services.runs import RunRecord, RunService
from flowplane.settings import Settings
from flowplane.store.base import Store


@dataclass
class Probe:
    """Shared state the test connectors report into."""

    calls: dict[str, int] = field(default_factory=dict)
    cancelled: list[str] = field(default_factory=list)
    started: dict[str, asyncio.Event] = field(default_factory=dict)

    def started_event(self, key: str) -> asyncio.Event:
        return self.started.setdefault(key, asyncio.Event())


def make_registry(probe: Probe) -> Registry:
    """Built-in connectors plus ``test.count`` and ``test.block``."""
    registry = Registry()
    load_builtins(registry)

    @connector(
        "test.count",
        description="Count calls per key and return the count.",
        input_schema={
            "type": "object",
            "properties": {"key": {"type": "string"}, "value": {}},
            "additionalProperties": False,
        },
    )
    async def count(params: dict[str, Any], ctx: NodeContext) -> Any:
        key = params.get("key") or f"{ctx.node_id}[{ctx.iteration}]"
        probe.calls[key] = probe.calls.get(key, 0) + 1
        return {"key": key, "calls": probe.calls[key], "value": params.get("value")}

    @connector(
        "test.block",
        description="Block until cancelled.",
        input_schema={
            "type": "object",
            "properties": {"key": {"type": "string"}},
            "additionalProperties": False,
        },
    )
    async def block(params: dict[str, Any], ctx: NodeContext) -> Any:
        key = params.get("key") or ctx.node_id
        probe.started_event(key).set()
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            probe.cancelled.append(key)
            raise
        return None

    registry.register(count)
    registry.register(block)
    return registry


@dataclass
class Runtime:
    """A store, a run service and a running worker."""

    store: Store
    runs: RunService
    worker: Worker
    probe: Probe
    registry: Registry


def fast_settings(**overrides: Any) -> Settings:
    """Settings with short intervals for tests."""
    values: dict[str, Any] = {
        "poll_interval_seconds": 0.2,
        "lease_seconds": 5.0,
        "reaper_interval_seconds": 0.2,
        "worker_concurrency": 8,
    }
    values.update(overrides)
    return Settings(**values)


@contextlib.asynccontextmanager
async def running(
    store: Store, *, settings: Settings | None = None, start_worker: bool = True
) -> AsyncIterator[Runtime]:
    """Run a worker against ``store`` for the duration of the block."""
    probe = Probe()
    registry = make_registry(probe)
    worker = Worker(store, settings=settings or fast_settings(), registry=registry)
    task = asyncio.create_task(worker.run()) if start_worker else None
    try:
        yield Runtime(store, RunService(store, registry), worker, probe, registry)
    finally:
        if task is not None:
            await worker.stop()
            await asyncio.wait_for(task, 15)


async def wait_status(
    runs: RunService, run_id: str, *statuses: str, timeout: float = 10
) -> RunRecord:
    """Poll until the run has one of ``statuses``."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        run = await runs.get(Caller.system(), run_id)
        if run.status in statuses:
            return run
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"run {run_id} stayed {run.status}, wanted {statuses}")
        await asyncio.sleep(0.05)
