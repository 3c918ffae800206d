"""``/api/v1/credentials``: sealed credentials (admin); a value is never given back."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Response

from flowplane.api.deps import ObjectId, require, services_dependency
from flowplane.api.models.credentials import CredentialCreate, CredentialUpdate
from flowplane.api.openapi import error_responses
from flowplane.api.workflowdev.views import credential_view
from flowplane.services.caller import Caller
from flowplane.services.container import Services
from flowplane.services.credentials import KEEP

router = APIRouter(prefix="/api/v1/credentials", tags=["workflowdev"])

Svc = Annotated[Services, Depends(services_dependency)]
Admin = Annotated[Caller, require("admin")]


@router.get("", summary="List credentials")
async def list_credentials(
    principal: Admin,
    services: Svc,
    response: Response,
    namespace: Annotated[list[str] | None, Query()] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    cursor: Annotated[str | None, Query(max_length=300)] = None,
) -> list[dict[str, Any]]:
    """Names and metadata, by namespace and name (the values stay encrypted)."""
    page = await services.credentials.list(
        principal, namespaces=namespace, cursor=cursor, limit=limit
    )
    if page.next_cursor:
        response.headers["X-Next-Cursor"] = page.next_cursor
    return [credential_view(c) for c in page.items]


@router.post(
    "", status_code=201, summary="Create a credential", responses=error_responses(409, 503)
)
async def create_credential(
    body: CredentialCreate, principal: Admin, services: Svc
) -> dict[str, Any]:
    """Seal the value (AES-256-GCM) and store it; reference it as ``${NAME}``."""
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
    return credential_view(created)


@router.get("/{credential_id}", summary="Get a credential")
async def get_credential(
    credential_id: ObjectId, principal: Admin, services: Svc
) -> dict[str, Any]:
    """The credential's metadata."""
    return credential_view(await services.credentials.get(principal, credential_id))


@router.put("/{credential_id}", summary="Update a credential", responses=error_responses(412, 503))
async def update_credential(
    credential_id: ObjectId, body: CredentialUpdate, principal: Admin, services: Svc
) -> dict[str, Any]:
    """Replace the value, type, description or use policy."""
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
    )
    return credential_view(updated)


@router.delete("/{credential_id}", status_code=204, summary="Delete a credential")
async def delete_credential(credential_id: ObjectId, principal: Admin, services: Svc) -> Response:
    """Delete the credential."""
    await services.credentials.delete(principal, credential_id)
    return Response(status_code=204)
