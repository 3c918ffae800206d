"""``/api/v1/triggers`` (webhook and cron triggers) and ``POST /api/v1/webhook/{key}``.

A workflowdev trigger of type ``webhook`` is a Flowplane webhook trigger (the trigger
service); one of type ``cron`` (or ``schedule``) is a Flowplane schedule (the schedule
service). ``PUT`` and ``DELETE`` find the trigger by id among both.

``POST /api/v1/webhook/{key}`` is open, like ``/v1/webhooks/{key}``: the trigger's key (and
its signature scheme, when it has a secret) is the authentication. It answers
``{executionId, status: "QUEUED"}`` (202) for the execution it starts.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from flowplane.api.deps import ObjectId, require, services_dependency
from flowplane.api.openapi import error_responses
from flowplane.api.webhook_delivery import deliver
from flowplane.api.workflowdev.views import schedule_view, trigger_view
from flowplane.errors import InvalidInput, NotFound
from flowplane.services.caller import Caller
from flowplane.services.container import Services

router = APIRouter(prefix="/api/v1", tags=["workflowdev"])

OPEN_ROUTES: frozenset[tuple[str, str]] = frozenset({("POST", "/api/v1/webhook/{key}")})
"""Routes of this module reachable without credentials (the trigger's key is the auth)."""

Svc = Annotated[Services, Depends(services_dependency)]
Editor = Annotated[Caller, require("editor")]
WebhookKey = Annotated[
    str, Path(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$", description="The trigger's key.")
]
CRON_TYPES = ("cron", "schedule")


class FlowTriggerIn(BaseModel):
    """``POST /api/v1/triggers`` and ``PUT /api/v1/triggers/{id}``."""

    model_config = ConfigDict(extra="forbid")
    flowId: str | None = Field(default=None, max_length=64)
    type: Literal["webhook", "cron", "schedule"] = "webhook"
    name: str | None = Field(default=None, max_length=128)
    key: str | None = Field(default=None, max_length=128)
    webhookKey: str | None = Field(default=None, max_length=128)
    secret: str | None = Field(default=None, max_length=1024)
    scheme: Literal["none", "standard", "github", "stripe"] | None = None
    cron: str | None = Field(default=None, max_length=255)
    schedule: str | None = Field(default=None, max_length=255)
    timezone: str | None = Field(default=None, max_length=64)
    input: Any = None
    enabled: bool = True


def _webhook_values(body: FlowTriggerIn) -> dict[str, Any]:
    values: dict[str, Any] = {"workflow_id": body.flowId, "kind": "run", "enabled": body.enabled}
    key = body.key or body.webhookKey
    if key is not None:
        values["key"] = key
    if body.secret is not None:
        values["secret"] = body.secret
        values["scheme"] = body.scheme or "standard"
    elif body.scheme is not None:
        values["scheme"] = body.scheme
    return values


def _schedule_values(body: FlowTriggerIn) -> dict[str, Any]:
    cron = body.cron or body.schedule
    if not cron:
        raise InvalidInput("a cron trigger needs `cron`, e.g. '*/5 * * * *'")
    values: dict[str, Any] = {"workflow_id": body.flowId, "cron": cron, "enabled": body.enabled}
    for key, value in (("name", body.name), ("timezone", body.timezone), ("input", body.input)):
        if value is not None:
            values[key] = value
    return values


@router.get("/triggers", summary="List triggers")
async def list_triggers(principal: Editor, services: Svc) -> list[dict[str, Any]]:
    """Webhook triggers, then cron triggers (the first 500 of each)."""
    hooks = await services.triggers.list(principal, limit=500)
    schedules = await services.schedules.list(principal, limit=500)
    return [trigger_view(r) for r in hooks.items] + [schedule_view(r) for r in schedules.items]


@router.post(
    "/triggers", status_code=201, summary="Create a trigger", responses=error_responses(404, 409)
)
async def create_trigger(body: FlowTriggerIn, principal: Editor, services: Svc) -> dict[str, Any]:
    """A webhook trigger (``POST /api/v1/webhook/{key}`` starts the flow) or a cron one."""
    if not body.flowId:
        raise InvalidInput("a trigger needs flowId")
    if body.type in CRON_TYPES:
        return schedule_view(await services.schedules.create(principal, _schedule_values(body)))
    return trigger_view(await services.triggers.create(principal, _webhook_values(body)))


async def _kind(services: Services, principal: Caller, trigger_id: str) -> str:
    """``webhook`` or ``cron``: which service holds ``trigger_id``."""
    try:
        await services.triggers.get(principal, trigger_id)
        return "webhook"
    except NotFound:
        await services.schedules.get(principal, trigger_id)
        return "cron"


@router.put("/triggers/{trigger_id}", summary="Update a trigger", responses=error_responses(409))
async def update_trigger(
    trigger_id: ObjectId, body: FlowTriggerIn, principal: Editor, services: Svc
) -> dict[str, Any]:
    """Replace the trigger's settings."""
    if await _kind(services, principal, trigger_id) == "webhook":
        values = _webhook_values(body)
        if body.flowId is None:
            values.pop("workflow_id")
            current = await services.triggers.get(principal, trigger_id)
            values["workflow_id"] = current.workflow_id
        return trigger_view(await services.triggers.replace(principal, trigger_id, values))
    values = _schedule_values(body)
    if body.flowId is None:
        values.pop("workflow_id")
    return schedule_view(await services.schedules.update(principal, trigger_id, values))


@router.delete(
    "/triggers/{trigger_id}",
    status_code=204,
    summary="Delete a trigger",
    responses=error_responses(409),
)
async def delete_trigger(trigger_id: ObjectId, principal: Editor, services: Svc) -> Response:
    """Delete the trigger."""
    if await _kind(services, principal, trigger_id) == "webhook":
        await services.triggers.delete(principal, trigger_id)
    else:
        await services.schedules.delete(principal, trigger_id)
    return Response(status_code=204)


@router.post(
    "/webhook/{key}",
    status_code=202,
    response_model=dict[str, Any],
    responses={
        200: {
            "description": "A replayed delivery id: nothing new happened.",
            "content": {"application/json": {"schema": {"type": "object"}}},
        },
        **error_responses(401, 429),
    },
    summary="Fire a webhook trigger",
    openapi_extra={"security": [], "x-flowplane-public": True},
)
async def fire_webhook(key: WebhookKey, request: Request, services: Svc) -> Response:
    """Start the trigger's flow: 202 ``{executionId, status: "QUEUED"}``.

    The execution's input is ``{body, headers, query}`` of the delivery, as for
    ``/v1/webhooks/{key}`` (see docs/triggers.md); a flow with an
    ``http.webhook_response`` task answers with what that task sets.
    """
    outcome = await deliver(request, services, key)
    if isinstance(outcome, Response):
        return outcome
    body: dict[str, Any] = dict(outcome.body)
    run_id = body.get("runId")
    if isinstance(run_id, str):
        body = {"executionId": run_id, "status": "QUEUED", **body}
    return JSONResponse(body, status_code=outcome.status)
