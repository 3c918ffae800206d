"""The set of services one process holds, built once at start-up."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from flowplane.connectors.registry import Registry
from flowplane.services.auth import AuthService
from flowplane.services.credentials import worker_options
from flowplane.services.run_cache import SettledRunCache
from flowplane.services.runs import RunService
from flowplane.services.workflows import WorkflowService
from flowplane.settings import Settings
from flowplane.store.base import Store


@dataclass
class Services:
    """Store, settings, registry and the application services built on them.

    Services added by later features (workflows, auth, schedules, ...) are attached as
    attributes by :func:`build_services`; ``extra`` holds anything else a feature needs.
    """

    store: Store
    settings: Settings
    registry: Registry
    runs: RunService
    workflows: WorkflowService
    auth: AuthService
    extra: dict[str, Any] = field(default_factory=dict)


def build_services(store: Store, settings: Settings, registry: Registry) -> Services:
    """Build every service over ``store``."""
    runs = RunService(store, registry, settled=SettledRunCache(settings.run_cache_seconds))
    return Services(
        store=store,
        settings=settings,
        registry=registry,
        runs=runs,
        workflows=WorkflowService(store, registry, runs),
        auth=AuthService(store, settings),
        extra={"worker_options": worker_options(store, settings)},
    )
