"""``/v1/triggers`` (editor) and ``POST /v1/webhooks/{key}`` (open: the signature is the auth).

``POST /v1/webhooks/{key}`` is the one API route reachable without a token besides the
health checks: the security gate lists it in ``OPEN_PATTERNS``, and :data:`OPEN_ROUTES` here
names it for the auth matrix test. A trigger with a secret verifies its scheme's HMAC over
the raw body; a trigger **without** a secret (``scheme: none``) accepts any caller who knows
its key, so give such keys the entropy of a password (the generated ones have 144 bits).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import Counter

from flowplane.api.deps import require, services_dependency
from flowplane.api.models.triggers import (
    TriggerIn,
    TriggerList,
    TriggerOut,
    WebhookAccepted,
    trigger_out,
)
from flowplane.api.openapi import error_responses
from flowplane.api.paging import OwnedListing, owned_listing
from flowplane.api.webhook_limits import webhook_limits_of
from flowplane.errors import SignatureInvalid
from flowplane.services import webhook_reply
from flowplane.services.caller import Caller
from flowplane.services.container import Services
from flowplane.services.triggers import Delivery

router = APIRouter(tags=["triggers"])

OPEN_ROUTES: frozenset[tuple[str, str]] = frozenset({("POST", "/v1/webhooks/{key}")})
"""Routes of this module reachable without an API key (the webhook signature is the auth)."""

Editor = Annotated[Caller, require("editor")]
Svc = Annotated[Services, Depends(services_dependency)]
WebhookKey = Annotated[
    str, Path(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$", description="The trigger's key.")
]


def signature_failures(request: Request) -> Counter | None:
    """``flowplane_webhook_signature_failures_total{scheme,reason}`` in the app's registry."""
    state = request.app.state
    counter: Counter | None = getattr(state, "webhook_signature_failures", None)
    metrics = getattr(state, "metrics", None)
    if counter is None and metrics is not None:
        counter = Counter(
            "flowplane_webhook_signature_failures",
            "Webhook deliveries refused because their signature did not verify.",
            ["scheme", "reason"],
            registry=metrics.registry,
        )
        state.webhook_signature_failures = counter
    return counter


@router.post(
    "/v1/triggers",
    status_code=201,
    response_model=TriggerOut,
    summary="Create a webhook trigger",
    responses=error_responses(404, 409),
)
async def create_trigger(
    body: TriggerIn, response: Response, principal: Editor, services: Svc
) -> TriggerOut:
    """Create a trigger; its deliveries go to ``url``."""
    row = await services.triggers.create(principal, body.model_dump(exclude_unset=True))
    response.headers["Location"] = f"/v1/triggers/{row.id}"
    return trigger_out(row)


@router.get("/v1/triggers", response_model=TriggerList, summary="List triggers")
async def list_triggers(
    principal: Editor, services: Svc, query: Annotated[OwnedListing, Depends(owned_listing)]
) -> TriggerList:
    """List triggers by id, a page at a time."""
    page = await services.triggers.list(
        principal,
        namespaces=query.namespaces,
        workflow_id=query.workflow_id,
        cursor=query.cursor,
        limit=query.limit,
    )
    return TriggerList(items=[trigger_out(r) for r in page.items], next_cursor=page.next_cursor)


@router.get("/v1/triggers/{trigger_id}", response_model=TriggerOut, summary="Get a trigger")
async def get_trigger(trigger_id: str, principal: Editor, services: Svc) -> TriggerOut:
    """Return a trigger (never its secret)."""
    return trigger_out(await services.triggers.get(principal, trigger_id))


@router.put(
    "/v1/triggers/{trigger_id}",
    response_model=TriggerOut,
    summary="Replace a trigger",
    responses=error_responses(409),
)
async def put_trigger(
    trigger_id: str, body: TriggerIn, principal: Editor, services: Svc
) -> TriggerOut:
    """Replace a trigger's settings; a workflow's own trigger takes ``secret``/``enabled`` only."""
    row = await services.triggers.replace(
        principal, trigger_id, body.model_dump(exclude_unset=True)
    )
    return trigger_out(row)


@router.delete(
    "/v1/triggers/{trigger_id}",
    status_code=204,
    summary="Delete a trigger",
    responses=error_responses(409),
)
async def delete_trigger(trigger_id: str, principal: Editor, services: Svc) -> Response:
    """Delete an API-created trigger and its delivery log."""
    await services.triggers.delete(principal, trigger_id)
    return Response(status_code=204)


@router.post(
    "/v1/webhooks/{key}",
    status_code=202,
    summary="Deliver a webhook",
    response_model=WebhookAccepted,
    response_model_exclude_none=True,
    responses={
        200: {
            "description": "A replayed delivery id: nothing new happened.",
            "model": WebhookAccepted,
        },
        **error_responses(401, 404, 429),
    },
    openapi_extra={
        "security": [],
        "x-flowplane-public": True,
        "requestBody": {
            "required": False,
            "content": {"*/*": {"schema": {}}},
            "description": "Any body; JSON and forms are parsed into `input.body`.",
        },
    },
)
async def receive_webhook(key: WebhookKey, request: Request, services: Svc) -> Response:
    """Verify the signature over the raw body, then start a run (202 ``{runId}``) or signal
    the waiting runs the correlation expression matches (202 ``{delivered, runIds}``).

    A run whose workflow has an ``http.webhook_response`` node answers instead with the
    status, headers and body that node sets, once it finishes (202 ``{runId}`` if it does not
    within `FLOWPLANE_WEBHOOK_REPLY_TIMEOUT_SECONDS`); see docs/triggers.md.

    The run input is ``{body, headers, query}``; secret-looking headers are dropped.
    Deliveries are limited per client address and per trigger (429; see docs/triggers.md).
    """
    limits = webhook_limits_of(request.app, services.settings)
    await limits.admit_client(request)  # before the body is even read
    delivery = Delivery(
        body=await request.body(),
        headers=dict(request.headers),
        query=list(request.query_params.multi_items()),
        content_type=request.headers.get("content-type", ""),
    )
    try:
        outcome = await services.triggers.receive(key, delivery, admit=limits.admit_trigger)
    except SignatureInvalid as exc:
        counter = signature_failures(request)
        if counter is not None:
            counter.labels(str(exc.extra.get("scheme", "")), str(exc.extra.get("reason", ""))).inc()
        raise
    run_id = outcome.body.get("runId")
    if outcome.status == 202 and isinstance(run_id, str):
        timeout = services.settings.webhook_reply_timeout_seconds
        reply = await webhook_reply.await_reply(services.runs, run_id, timeout)
        if reply is not None:
            return Response(reply.body, status_code=reply.status, headers=reply.headers)
    return JSONResponse(outcome.body, status_code=outcome.status)
