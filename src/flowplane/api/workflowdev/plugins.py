"""``/api/v1/plugins``: the connector catalogue as workflowdev's plugin manifests (viewer).

A plugin is a Flowplane connector: ``id`` is its type. The task types workflowdev names
otherwise (:data:`~flowplane.model.dialects.workflowdev.TYPE_ALIASES`) answer with the
manifest of the connector they map to.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query

from flowplane.api.deps import require, services_dependency
from flowplane.api.workflowdev.views import plugin_view
from flowplane.model.dialects.workflowdev import TYPE_ALIASES
from flowplane.services.caller import Caller
from flowplane.services.container import Services

router = APIRouter(prefix="/api/v1/plugins", tags=["workflowdev"])

Svc = Annotated[Services, Depends(services_dependency)]
Viewer = Annotated[Caller, require("viewer")]


@router.get("", summary="List plugins with their manifests")
async def list_plugins(
    principal: Viewer,
    services: Svc,
    category: Annotated[str | None, Query(max_length=64)] = None,
    q: Annotated[str | None, Query(max_length=200)] = None,
) -> list[dict[str, Any]]:
    """Every plugin's full manifest (``id``, ``name``, ``category``, ``description``,
    ``inputSchema``, ``outputSchema``), by id."""
    return [plugin_view(m) for m in services.catalog.search(principal, category=category, q=q)]


@router.get("/categories", summary="List plugin categories")
async def list_categories(principal: Viewer, services: Svc) -> list[dict[str, Any]]:
    """Each category with how many plugins it holds."""
    return [
        {"name": name, "count": count}
        for name, count in services.catalog.categories(principal).items()
    ]


@router.get("/{type}", summary="Get a plugin manifest")
async def get_plugin(
    type: Annotated[str, Path(max_length=128, pattern=r"^[A-Za-z0-9_.-]+$")],
    principal: Viewer,
    services: Svc,
) -> dict[str, Any]:
    """One plugin's manifest (404 names close matches)."""
    alias = TYPE_ALIASES.get(type)
    return plugin_view(services.catalog.get(principal, alias.type if alias else type))
