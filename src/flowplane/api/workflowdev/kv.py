"""``/api/v1/kv/{namespace}``: the namespaced key-value store (read: viewer, write: editor).

``PUT`` takes the value as its JSON body; a body ``{"value": ..., "ttlSeconds": n}`` sets
the value and an expiry (send ``{"value": {"value": 1}}`` to store an object that has a
``value`` member).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Path, Query, Response

from flowplane.api.deps import require, services_dependency
from flowplane.api.workflowdev.views import kv_view
from flowplane.model.document import NAMESPACE_PATTERN
from flowplane.services.caller import Caller
from flowplane.services.container import Services
from flowplane.services.kv import MAX_KEY_CHARS

router = APIRouter(prefix="/api/v1/kv", tags=["workflowdev"])

Svc = Annotated[Services, Depends(services_dependency)]
Viewer = Annotated[Caller, require("viewer")]
Editor = Annotated[Caller, require("editor")]
Namespace = Annotated[str, Path(pattern=NAMESPACE_PATTERN, description="The namespace.")]
Key = Annotated[str, Path(max_length=MAX_KEY_CHARS, description="The key (may contain `/`).")]
_ENVELOPE_KEYS = {"value", "ttlSeconds"}


def _value_and_ttl(body: Any) -> tuple[Any, float | None]:
    if isinstance(body, dict) and "value" in body and set(body) <= _ENVELOPE_KEYS:
        ttl = body.get("ttlSeconds")
        return body["value"], float(ttl) if isinstance(ttl, int | float) else None
    return body, None


@router.get("/{namespace}", summary="List the keys of a namespace")
async def list_keys(
    namespace: Namespace,
    principal: Viewer,
    services: Svc,
    response: Response,
    prefix: Annotated[str | None, Query(max_length=MAX_KEY_CHARS)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    cursor: Annotated[str | None, Query(max_length=MAX_KEY_CHARS)] = None,
) -> list[dict[str, Any]]:
    """Live entries by key."""
    page = await services.kv.list(principal, namespace, prefix=prefix, cursor=cursor, limit=limit)
    if page.next_cursor:
        response.headers["X-Next-Cursor"] = page.next_cursor
    return [kv_view(e) for e in page.items]


@router.get("/{namespace}/{key:path}", summary="Get a value")
async def get_key(
    namespace: Namespace, key: Key, principal: Viewer, services: Svc
) -> dict[str, Any]:
    """The entry (404 when absent or expired)."""
    return kv_view(await services.kv.get(principal, namespace, key))


@router.put(
    "/{namespace}/{key:path}",
    summary="Set a value",
    responses={
        201: {
            "description": "Created.",
            "content": {"application/json": {"schema": {"type": "object"}}},
        }
    },
)
async def put_key(
    namespace: Namespace,
    key: Key,
    principal: Editor,
    services: Svc,
    response: Response,
    body: Annotated[Any, Body()] = None,
) -> dict[str, Any]:
    """Create or replace the entry (201 when created)."""
    value, ttl = _value_and_ttl(body)
    entry, created = await services.kv.put(principal, namespace, key, value, ttl_seconds=ttl)
    response.status_code = 201 if created else 200
    return kv_view(entry)


@router.delete("/{namespace}/{key:path}", status_code=204, summary="Delete a key")
async def delete_key(namespace: Namespace, key: Key, principal: Editor, services: Svc) -> Response:
    """Delete the entry (404 when absent)."""
    await services.kv.delete(principal, namespace, key)
    return Response(status_code=204)
