"""A real worker process for crash tests: ``python crash_worker.py``.

Equivalent to ``flowplane worker --plugin crash_plugin``: settings come from ``FLOWPLANE_*``
variables, the registry is the built-ins plus this folder's ``crash_plugin``. It prints
``ready`` once the store is open, and stops gracefully on SIGTERM (SIGKILL is the point).
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import sys

from flowplane.connectors.registry import Registry, load_builtins, load_plugin_module
from flowplane.engine.worker import Worker
from flowplane.settings import Settings
from flowplane.store.base import Store


async def main() -> None:
    """Open the store and run one worker until SIGTERM."""
    settings = Settings()
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(name)s %(message)s")
    registry = Registry()
    load_builtins(registry)
    load_plugin_module(registry, "crash_plugin")
    store = await Store.open(settings.database_url, schema=settings.database_schema)
    name = os.environ.get("CRASH_WORKER_NAME", "worker")
    worker = Worker(store, settings=settings, registry=registry, worker_id=f"{name}:{os.getpid()}")
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, lambda: loop.create_task(worker.stop()))
    print("ready", flush=True)
    try:
        await worker.run()
    finally:
        await store.close()


if __name__ == "__main__":
    asyncio.run(main())
