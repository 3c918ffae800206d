"""workflowdev's REST surface: ``/api/v1/*``, ``/auth/*`` and ``/healthz``.

See docs/surfaces/workflowdev.md for the route table and how it maps onto Flowplane.

A thin face over the services: each route authenticates with ``require(role)``, translates
workflowdev's wire format (flows with ``yamlContent``, executions with tasks, its statuses
and its error body) into one service call, and the answer back. ``/readyz`` and
``/metrics`` are Flowplane's own routes (:mod:`flowplane.api.routes.ops`).
"""

from __future__ import annotations

from fastapi import APIRouter, FastAPI
from fastapi.routing import APIRoute

from flowplane.api.workflowdev import (
    approvals,
    audit,
    auth,
    credentials,
    errors,
    executions,
    flows,
    kv,
    plugins,
    triggers,
)

__all__ = ["OPEN_ROUTES", "install", "router"]

router = APIRouter()
for _module in (flows, executions, triggers, plugins, credentials, kv, approvals, audit, auth):
    for _route in _module.router.routes:
        if isinstance(_route, APIRoute):
            # The OpenAPI document declares workflowdev's error body (``api/openapi.py``).
            _route.openapi_extra = {**(_route.openapi_extra or {}), **errors.OPENAPI_EXTRA}
    router.include_router(_module.router)

OPEN_ROUTES = auth.OPEN_ROUTES | triggers.OPEN_ROUTES
"""The routes of this surface reachable without credentials (the security gate's list)."""


def install(app: FastAPI) -> None:
    """Mount the surface on ``app`` and answer its errors in workflowdev's shape (also in
    the OpenAPI document: each operation's ``x-error-content``)."""
    errors.install()
    app.include_router(router)
