"""The set of services one process holds, built once at start-up."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from flowplane.connectors.registry import Registry
from flowplane.services.auth import AuthService
from flowplane.services.credentials import CredentialService, keyring_from_settings, worker_options
from flowplane.services.feed import EventFeed
from flowplane.services.kv import KVService
from flowplane.services.run_cache import SettledRunCache
from flowplane.services.runs import RunService
from flowplane.services.schedules import ScheduleService
from flowplane.services.triggers import TriggerService
from flowplane.services.workflows import WorkflowService
from flowplane.settings import Settings
from flowplane.store.base import Store


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
    worker_options: dict[str, Any]
    """``Worker`` keyword arguments: the credentials provider and the KV factory."""

    async def aclose(self) -> None:
        """Release what the services hold (the event feed's tail)."""
        await self.feed.close()


def build_services(store: Store, settings: Settings, registry: Registry) -> Services:
    """Build every service over ``store``."""
    runs = RunService(store, registry, settled=SettledRunCache(settings.run_cache_seconds))
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
        feed=EventFeed(store),
        worker_options=worker_options(store, settings),
    )
