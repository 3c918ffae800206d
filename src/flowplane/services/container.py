"""The set of services one process holds, built once at start-up.

``Store`` is named here as well: a surface that hands the services an already open store
(tests, ``flowplane serve``) types it as ``flowplane.services.container.Store``.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from flowplane.connectors.registry import Registry
from flowplane.engine.tracing import tracing_of
from flowplane.engine.worker import Worker
from flowplane.services.audit import AuditService
from flowplane.services.auth import AuthService
from flowplane.services.catalog import ConnectorCatalog
from flowplane.services.credentials import CredentialService, keyring_from_settings, worker_options
from flowplane.services.feed import EventFeed
from flowplane.services.kv import KVService
from flowplane.services.ops import OpsService
from flowplane.services.retention import RetentionService
from flowplane.services.run_cache import SettledRunCache
from flowplane.services.runs import RunService
from flowplane.services.schedules import ScheduleService
from flowplane.services.triggers import TriggerService
from flowplane.services.workflows import WorkflowService
from flowplane.settings import Settings
from flowplane.store.base import Store

__all__ = ["Services", "Store", "Worker", "build_services", "open_services"]


@dataclass
class Services:
    """Store, settings, registry and every application service built on them.

    Every surface (REST, RPC, WebSocket, serve mode, CLI) holds one of these and calls its
    services; nothing is added to it after :func:`build_services`.
    """

    store: Store
    settings: Settings
    registry: Registry
    runs: RunService
    workflows: WorkflowService
    auth: AuthService
    schedules: ScheduleService
    triggers: TriggerService
    kv: KVService
    credentials: CredentialService
    feed: EventFeed
    audit: AuditService
    catalog: ConnectorCatalog
    ops: OpsService
    retention: RetentionService
    worker_options: dict[str, Any]
    """``Worker`` keyword arguments: the credentials provider and the KV factory."""

    def new_worker(self) -> Worker:
        """A worker over this process's store, with its credentials and KV (not started)."""
        return Worker(
            self.store, settings=self.settings, registry=self.registry, **self.worker_options
        )

    async def aclose(self) -> None:
        """Release what the services hold (the event feed's tail)."""
        await self.feed.close()


def build_services(store: Store, settings: Settings, registry: Registry) -> Services:
    """Build every service over ``store``."""
    runs = RunService(
        store,
        registry,
        settled=SettledRunCache(settings.run_cache_seconds),
        max_detail_nodes=settings.max_run_detail_nodes,
    )
    runs.tracing = tracing_of(settings)
    keyring = keyring_from_settings(settings)
    return Services(
        store=store,
        settings=settings,
        registry=registry,
        runs=runs,
        workflows=WorkflowService(store, registry, runs),
        auth=AuthService(store, settings),
        schedules=ScheduleService(store, registry, runs),
        triggers=TriggerService(store, runs, keyring),
        kv=KVService(store),
        credentials=CredentialService(store, keyring),
        feed=EventFeed(store, recent_seconds=settings.run_cache_seconds),
        audit=AuditService(store),
        catalog=ConnectorCatalog(registry),
        ops=OpsService(store),
        retention=RetentionService(store, settings, runs.settled),
        worker_options=worker_options(store, settings),
    )


@contextlib.asynccontextmanager
async def open_services(
    settings: Settings, registry: Registry, store: Store | None = None
) -> AsyncIterator[Services]:
    """Build the services over ``store``, or over a store opened (and closed) here.

    Args:
        settings: configuration; ``database_url`` and ``database_schema`` when opening.
        registry: the connector registry.
        store: an open store to use; the caller keeps it open after the block.
    """
    active = store or await Store.open(settings.database_url, schema=settings.database_schema)
    services = build_services(active, settings, registry)
    try:
        yield services
    finally:
        await services.aclose()
        if store is None:
            await active.close()
