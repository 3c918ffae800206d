"""``/v1/credentials``: write-only secret values for workflows (admin).

A credential is referenced by name in a workflow (``{{ secrets.NAME }}`` or ``${NAME}``)
and resolved only inside the worker when a node runs, as far as its use policy
(``allowedWorkflows``, ``allowedConnectors``, ``templateUse``; admins only) allows.
Responses show the name, type, namespace, version, policy and timestamps, never the value.
Without ``FLOWPLANE_SECRET_KEY`` the server refuses to store values (503
``secret_key_missing``).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Header, Query, Response

from flowplane.api.deps import ObjectId, require, services_dependency
from flowplane.api.models.common import etag, parse_if_match, problems
from flowplane.api.models.credentials import (
    CredentialCreate,
    CredentialList,
    CredentialOut,
    CredentialUpdate,
    credential_model,
)
from flowplane.services.caller import Caller
from flowplane.services.container import Services
from flowplane.services.credentials import (
    KEEP,
    MAX_LIST_LIMIT,
)

router = APIRouter(prefix="/v1/credentials", tags=["credentials"])

Admin = Annotated[Caller, require("admin")]
Svc = Annotated[Services, Depends(services_dependency)]
IfMatch = Annotated[
    str | None,
    Header(alias="If-Match", description='The version you read, as its ETag: `"3"`.'),
]


@router.post(
    "",
    status_code=201,
    response_model=CredentialOut,
    summary="Create a credential",
    responses=problems(400, 404, 409, 503),
)
async def create_credential(
    body: CredentialCreate, response: Response, principal: Admin, services: Svc
) -> CredentialOut:
    """Seal the value with the master key and store it; the response omits the value."""
    created = await services.credentials.create(
        principal,
        body.namespace,
        body.name,
        body.value,
        type_=body.type,
        description=body.description,
        allowed_workflows=body.allowed_workflows,
        allowed_connectors=body.allowed_connectors,
        template_use=body.template_use,
    )
    response.headers["ETag"] = etag(created.version)
    response.headers["Location"] = f"/v1/credentials/{created.id}"
    return credential_model(created)


@router.get(
    "",
    response_model=CredentialList,
    summary="List credentials",
    responses=problems(400),
)
async def list_credentials(
    principal: Admin,
    services: Svc,
    namespace: Annotated[list[str] | None, Query()] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_LIST_LIMIT)] = 100,
    cursor: Annotated[str | None, Query(max_length=300)] = None,
) -> CredentialList:
    """Credentials ordered by namespace and name (names and metadata only)."""
    page = await services.credentials.list(
        principal, namespaces=namespace, cursor=cursor, limit=limit
    )
    return CredentialList(
        items=[credential_model(c) for c in page.items], next_cursor=page.next_cursor
    )


@router.get(
    "/{credential_id}",
    response_model=CredentialOut,
    summary="Describe a credential",
    responses=problems(404),
)
async def get_credential(
    credential_id: ObjectId, response: Response, principal: Admin, services: Svc
) -> CredentialOut:
    """The credential's metadata, with its version as ``ETag``."""
    found = await services.credentials.get(principal, credential_id)
    response.headers["ETag"] = etag(found.version)
    return credential_model(found)


@router.put(
    "/{credential_id}",
    response_model=CredentialOut,
    summary="Update a credential",
    responses=problems(400, 404, 412, 503),
)
async def update_credential(
    credential_id: ObjectId,
    body: CredentialUpdate,
    response: Response,
    principal: Admin,
    services: Svc,
    if_match: IfMatch = None,
) -> CredentialOut:
    """Replace the value (re-sealed with a new nonce), type, description or use policy.

    Policy fields left out of the body are kept; a list set to ``null`` allows any.
    """
    given = body.model_fields_set
    updated = await services.credentials.update(
        principal,
        credential_id,
        value=body.value,
        type_=body.type,
        description=body.description,
        allowed_workflows=body.allowed_workflows if "allowed_workflows" in given else KEEP,
        allowed_connectors=body.allowed_connectors if "allowed_connectors" in given else KEEP,
        template_use=body.template_use,
        if_match=parse_if_match(if_match),
    )
    response.headers["ETag"] = etag(updated.version)
    return credential_model(updated)


@router.delete(
    "/{credential_id}",
    status_code=204,
    summary="Delete a credential",
    responses=problems(404, 412),
)
async def delete_credential(
    credential_id: ObjectId,
    principal: Admin,
    services: Svc,
    if_match: IfMatch = None,
) -> Response:
    """Delete the credential; runs that reference it fail to resolve it from then on."""
    await services.credentials.delete(principal, credential_id, if_match=parse_if_match(if_match))
    return Response(status_code=204)
