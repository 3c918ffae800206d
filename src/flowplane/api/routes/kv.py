"""``/v1/kv/{namespace}``: the namespace key-value store (read: viewer, write: editor).

Values are JSON. Each entry has a ``version``, returned as ``ETag``; ``If-Match: "N"``
makes a write or delete conditional on it (412 ``version_mismatch`` with ``current``, 0
when the key is absent) and ``If-None-Match: *`` creates only. ``ttlSeconds`` makes an
entry expire. Workflows use the same store through ``kv.get``, ``kv.set``, ``kv.delete`` and
``kv.increment``.
"""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Header, Path, Query, Response

from flowplane.api.deps import require, services_dependency
from flowplane.api.models.common import etag, parse_if_match, problems
from flowplane.api.models.kv import (
    KVEntryOut,
    KVList,
    KVPut,
    entry_model,
)
from flowplane.errors import InvalidInput
from flowplane.model.document import NAMESPACE_PATTERN
from flowplane.services.caller import Caller
from flowplane.services.container import Services
from flowplane.services.kv import (
    MAX_KEY_CHARS,
    MAX_LIST_LIMIT,
)

router = APIRouter(prefix="/v1/kv", tags=["kv"])

Viewer = Annotated[Caller, require("viewer")]
Editor = Annotated[Caller, require("editor")]
Svc = Annotated[Services, Depends(services_dependency)]
Namespace = Annotated[str, Path(pattern=NAMESPACE_PATTERN, description="The namespace.")]
Key = Annotated[str, Path(max_length=MAX_KEY_CHARS, description="The key (may contain `/`).")]
IfMatch = Annotated[
    str | None,
    Header(alias="If-Match", description='Only if the entry is at this version: `"3"`.'),
]
IfNoneMatch = Annotated[
    Literal["*"] | None,
    Header(alias="If-None-Match", description="`*`: only create, never replace."),
]


@router.get(
    "/{namespace}",
    response_model=KVList,
    summary="List keys",
    responses=problems(400, 404),
)
async def list_keys(
    namespace: Namespace,
    principal: Viewer,
    services: Svc,
    prefix: Annotated[str | None, Query(max_length=MAX_KEY_CHARS)] = None,
    cursor: Annotated[str | None, Query(max_length=MAX_KEY_CHARS)] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_LIST_LIMIT)] = 100,
) -> KVList:
    """Live entries (with values) ordered by key, optionally under a prefix."""
    page = await services.kv.list(principal, namespace, prefix=prefix, cursor=cursor, limit=limit)
    return KVList(items=[entry_model(e) for e in page.items], next_cursor=page.next_cursor)


@router.get(
    "/{namespace}/{key:path}",
    response_model=KVEntryOut,
    summary="Read a key",
    responses=problems(404),
)
async def get_key(
    namespace: Namespace, key: Key, response: Response, principal: Viewer, services: Svc
) -> KVEntryOut:
    """The entry, with its version as ``ETag``."""
    entry = await services.kv.get(principal, namespace, key)
    response.headers["ETag"] = etag(entry.version)
    return entry_model(entry)


@router.put(
    "/{namespace}/{key:path}",
    response_model=KVEntryOut,
    summary="Write a key",
    responses={
        201: {"description": "Created.", "model": KVEntryOut},
        **problems(400, 404, 412, 413),
    },
)
async def put_key(
    namespace: Namespace,
    key: Key,
    body: KVPut,
    response: Response,
    principal: Editor,
    services: Svc,
    if_match: IfMatch = None,
    if_none_match: IfNoneMatch = None,
) -> KVEntryOut:
    """Create or replace the entry (201 when created); conditional with ``If-Match``."""
    if if_none_match is not None and if_none_match.strip() != "*":
        raise InvalidInput("If-None-Match supports only *")
    entry, created = await services.kv.put(
        principal,
        namespace,
        key,
        body.value,
        ttl_seconds=body.ttl_seconds,
        if_match=parse_if_match(if_match),
        if_none_match=if_none_match is not None,
    )
    response.status_code = 201 if created else 200
    response.headers["ETag"] = etag(entry.version)
    return entry_model(entry)


@router.delete(
    "/{namespace}/{key:path}",
    status_code=204,
    summary="Delete a key",
    responses=problems(404, 412),
)
async def delete_key(
    namespace: Namespace,
    key: Key,
    principal: Editor,
    services: Svc,
    if_match: IfMatch = None,
) -> Response:
    """Delete the entry (404 when absent); conditional with ``If-Match``."""
    await services.kv.delete(principal, namespace, key, if_match=parse_if_match(if_match))
    return Response(status_code=204)
