"""``/v1/triggers`` (editor) and ``POST /v1/webhooks/{key}`` (open: the signature is the auth).

``POST /v1/webhooks/{key}`` is the one API route reachable without a token besides the
health checks: the security gate lists it in ``OPEN_PATTERNS``, and :data:`OPEN_ROUTES` here
names it for the auth matrix test. A trigger with a secret verifies its scheme's HMAC over
the raw body; a trigger **without** a secret (``scheme: none``) accepts any caller who knows
its key, so give such keys the entropy of a password (the generated ones have 144 bits).
"""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Path, Query, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import Counter
from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

from flowplane.api.deps import require, services_dependency
from flowplane.api.openapi import error_responses
from flowplane.api.paging import Cursor, NamespaceFilter, PageSize
from flowplane.api.webhook_limits import webhook_limits_of
from flowplane.client.models import WireModel
from flowplane.errors import SignatureInvalid
from flowplane.model.document import NAMESPACE_PATTERN
from flowplane.services import webhook_reply
from flowplane.services.caller import Caller
from flowplane.services.container import Services
from flowplane.services.paging import paginate
from flowplane.services.triggers import MAX_SECRET_CHARS, Delivery
from flowplane.store.tx import Row

router = APIRouter(tags=["triggers"])

OPEN_ROUTES: frozenset[tuple[str, str]] = frozenset({("POST", "/v1/webhooks/{key}")})
"""Routes of this module reachable without an API key (the webhook signature is the auth)."""

Editor = Annotated[Caller, require("editor")]
Svc = Annotated[Services, Depends(services_dependency)]
WebhookKey = Annotated[
    str, Path(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$", description="The trigger's key.")
]


def _failures_counter(request: Request) -> Counter | None:
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


# --- models ------------------------------------------------------------------------------


class TriggerIn(BaseModel):
    """``POST /v1/triggers`` and ``PUT /v1/triggers/{id}``."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid")

    workflow_id: str | None = Field(
        default=None, max_length=64, description="The workflow to run (kind `run`)."
    )
    workflow: str | None = Field(
        default=None, max_length=128, description="A workflow name (with `namespace`)."
    )
    namespace: str | None = Field(default=None, pattern=NAMESPACE_PATTERN)
    key: str | None = Field(
        default=None,
        pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$",
        description="The URL key: `POST /v1/webhooks/{key}` (generated when omitted).",
    )
    kind: Literal["run", "signal"] = "run"
    signal_name: str | None = Field(default=None, max_length=128)
    correlation: str | None = Field(
        default=None,
        max_length=1000,
        description="Kind `signal`: an expression over `body`, `headers`, `query` giving the "
        "correlation id, e.g. `body.order.id`.",
    )
    scheme: Literal["none", "standard", "github", "stripe"] = "none"
    secret: str | None = Field(
        default=None,
        min_length=1,
        max_length=MAX_SECRET_CHARS,
        description="Write-only. On PUT, omit it to keep the current one.",
    )
    enabled: bool = True


class TriggerOut(WireModel):
    """A trigger (never its secret)."""

    id: str
    namespace: str
    workflow_id: str | None
    key: str
    url: str = Field(description="The path deliveries are posted to.")
    kind: str
    signal_name: str | None
    correlation: str | None
    scheme: str
    has_secret: bool
    enabled: bool
    owner: str = Field(description="`api`, or `workflow` when declared in its `triggers:`.")
    created_at_ms: int
    updated_at_ms: int
    created_by: str | None = None


class TriggerList(WireModel):
    """A page of triggers; pass ``nextCursor`` as ``cursor`` for the next page."""

    items: list[TriggerOut]
    next_cursor: str | None = None


def trigger_out(row: Row) -> TriggerOut:
    """The wire form of a trigger row."""
    return TriggerOut(
        id=row["id"],
        namespace=row["namespace"],
        workflow_id=row["workflow_id"],
        key=row["key"],
        url=f"/v1/webhooks/{row['key']}",
        kind=row["kind"],
        signal_name=row["signal_name"],
        correlation=row["correlation"],
        scheme=row["scheme"],
        has_secret=bool(row["secret"]),
        enabled=bool(row["enabled"]),
        owner=row["owner"],
        created_at_ms=row["created_at_ms"],
        updated_at_ms=row["updated_at_ms"],
        created_by=row.get("created_by"),
    )


# --- routes ------------------------------------------------------------------------------


@router.post(
    "/v1/triggers",
    status_code=201,
    response_model=TriggerOut,
    summary="Create a webhook trigger",
    responses=error_responses(409),
)
async def create_trigger(
    body: TriggerIn, response: Response, principal: Editor, services: Svc
) -> TriggerOut:
    """Create a trigger; its deliveries go to ``url``."""
    row = await services.triggers.create(
        body.model_dump(exclude_unset=True),
        namespaces=principal.visible(),
        created_by=principal.name,
    )
    response.headers["Location"] = f"/v1/triggers/{row['id']}"
    return trigger_out(row)


@router.get("/v1/triggers", response_model=TriggerList, summary="List triggers")
async def list_triggers(
    principal: Editor,
    services: Svc,
    namespace: NamespaceFilter = None,
    workflow_id: Annotated[str | None, Query(alias="workflowId")] = None,
    limit: PageSize = 50,
    cursor: Cursor = None,
) -> TriggerList:
    """List triggers by id, a page at a time."""
    visible = principal.visible(namespace)
    if visible is not None and not visible:
        return TriggerList(items=[])
    rows = await services.triggers.list_triggers(
        namespaces=visible, workflow_id=workflow_id, cursor=cursor, limit=limit + 1
    )
    page = paginate(rows, limit)
    return TriggerList(items=[trigger_out(r) for r in page.items], next_cursor=page.next_cursor)


@router.get("/v1/triggers/{trigger_id}", response_model=TriggerOut, summary="Get a trigger")
async def get_trigger(trigger_id: str, principal: Editor, services: Svc) -> TriggerOut:
    """Return a trigger (never its secret)."""
    return trigger_out(await services.triggers.get(trigger_id, principal.visible()))


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
        trigger_id, body.model_dump(exclude_unset=True), namespaces=principal.visible()
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
    await services.triggers.delete(trigger_id, namespaces=principal.visible())
    return Response(status_code=204)


class WebhookAccepted(BaseModel):
    """What a webhook delivery did: a run started, runs signalled, or a replay ignored."""

    model_config = ConfigDict(extra="forbid")
    runId: str | None = None
    delivered: int | None = None
    runIds: list[str] | None = None
    correlationId: str | None = None
    duplicate: bool | None = None


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
    limits.admit_client(request)  # before the body is even read
    delivery = Delivery(
        body=await request.body(),
        headers=dict(request.headers),
        query=list(request.query_params.multi_items()),
        content_type=request.headers.get("content-type", ""),
    )
    try:
        outcome = await services.triggers.receive(key, delivery, admit=limits.admit_trigger)
    except SignatureInvalid as exc:
        counter = _failures_counter(request)
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
