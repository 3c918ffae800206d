"""The connector catalogue: what nodes can do, small enough to put in an LLM prompt."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Path, Query, Request
from pydantic import BaseModel, ConfigDict

from flowplane.api.deps import get_services, require
from flowplane.api.problems import Problem
from flowplane.services.caller import Caller

router = APIRouter(prefix="/v1/connectors", tags=["connectors"])

_ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": Problem, "description": "Missing or invalid credentials"},
    403: {"model": Problem, "description": "Role too low"},
    429: {"model": Problem, "description": "Rate limited"},
}


class ConnectorSummary(BaseModel):
    """The short form of a connector manifest."""

    model_config = ConfigDict(extra="forbid")
    type: str
    name: str
    category: str
    description: str


class ConnectorDetail(ConnectorSummary):
    """The full manifest."""

    kind: str
    inputSchema: dict[str, Any]
    outputSchema: dict[str, Any]
    secrets: list[str]
    examples: list[dict[str, Any]]


class ConnectorList(BaseModel):
    """A page of the catalogue."""

    model_config = ConfigDict(extra="forbid")
    items: list[ConnectorDetail | ConnectorSummary]
    count: int


class Category(BaseModel):
    """A connector category and how many connectors it holds."""

    model_config = ConfigDict(extra="forbid")
    name: str
    count: int


@router.get("", response_model=ConnectorList, responses=_ERRORS)
async def list_connectors(
    request: Request,
    detail: Literal["summary", "full"] = Query("summary"),
    category: str | None = Query(None, max_length=64),
    q: str | None = Query(None, max_length=200, description="Words to search for."),
    principal: Caller = require("viewer"),
) -> dict[str, Any]:
    """List connectors; ``detail=summary`` is compact enough for an LLM prompt."""
    manifests = get_services(request).catalog.search(principal, category=category, q=q)
    items = [m.summary() if detail == "summary" else m.to_dict() for m in manifests]
    return {"items": items, "count": len(items)}


@router.get("/categories", response_model=list[Category], responses=_ERRORS)
async def list_categories(
    request: Request, principal: Caller = require("viewer")
) -> list[dict[str, Any]]:
    """List categories with their connector counts."""
    counts = get_services(request).catalog.categories(principal)
    return [{"name": name, "count": count} for name, count in counts.items()]


@router.get(
    "/{type}",
    response_model=ConnectorDetail,
    responses={**_ERRORS, 404: {"model": Problem, "description": "No such connector"}},
)
async def get_connector(
    request: Request,
    type: str = Path(..., max_length=128),
    principal: Caller = require("viewer"),
) -> dict[str, Any]:
    """Return one connector's full manifest (404 lists close matches)."""
    return get_services(request).catalog.get(principal, type).to_dict()
