"""The gateway's routes: WebSocket at ``/v1/ws`` and ``/``, RPC over HTTP, Smithers webhooks.

- ``/v1/ws`` and ``/`` (WebSocket): one protocol, two dialects chosen by ``connect``
  (:mod:`flowplane.api.gateway`): Flowplane's methods, or the Smithers Gateway's.
- ``POST /v1/rpc/{method}``: Flowplane's methods (:data:`flowplane.api.rpc.METHODS`), with
  the roles of the REST routes they mirror. The body is the method's params object; the
  answer is the payload (200) or a problem document with the error's status and ``code``
  (``unknown_method`` is a 404). Stream methods answer one page of events.
- ``POST /rpc``: the Smithers Gateway's stateless RPC: the body is a request frame
  ``{id?, method, params?}``, the answer Smithers' response frame ``{type: "res", id, ok,
  payload | error}`` with the error's HTTP status.
- ``POST /webhooks/{key}``: Smithers' webhook route over Flowplane's triggers: the trigger
  ``key`` verifies the delivery, the JSON body *is* the run input (or signal payload), and
  the answer is Smithers' ``{ok, workflow, verified, delivered, matchedRunIds, started}``.
"""

from __future__ import annotations

import json
import re
import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Path, Request, WebSocket
from fastapi.responses import JSONResponse

from flowplane.api import gateway_methods, rpc
from flowplane.api.deps import require, services_dependency
from flowplane.api.gateway import gateway_of
from flowplane.api.metrics import Metrics
from flowplane.api.openapi import error_responses, problem_content
from flowplane.api.routes.triggers import WebhookKey, signature_failures
from flowplane.api.webhook_limits import webhook_limits_of
from flowplane.errors import FlowplaneError, InvalidInput, SignatureInvalid
from flowplane.services.caller import Caller
from flowplane.services.container import Services
from flowplane.services.triggers import Delivery

router = APIRouter(tags=["gateway"])
Svc = Annotated[Services, Depends(services_dependency)]


FRAME_ERRORS = "x-error-content"
FRAME_ERROR_CONTENT = {**problem_content(), "application/json": {"schema": {"type": "object"}}}
"""The errors of the frame routes: their own JSON frames, and the problems of the security
gate and body limits in front of them."""
METHOD_NAME = re.compile(r"^[a-z][a-zA-Z0-9]*(?:\.[a-z][a-zA-Z0-9]*)*$")
"""Smithers' method names (at most 64 characters)."""
MAX_FRAME_ID_CHARS = 128


@router.websocket("/v1/ws")
async def websocket_gateway(websocket: WebSocket) -> None:
    """The WebSocket gateway (see ``docs/events.md`` and ``docs/surfaces/gateway.md``)."""
    services: Services = websocket.app.state.services
    await gateway_of(websocket.app, services).serve(websocket, services)


@router.websocket("/")
async def websocket_gateway_root(websocket: WebSocket) -> None:
    """The same gateway at ``/``, where Smithers' Gateway clients open it."""
    services: Services = websocket.app.state.services
    await gateway_of(websocket.app, services).serve(websocket, services)


def _frame_answer(frame_id: Any, exc: BaseException | None, payload: Any = None) -> JSONResponse:
    if exc is None:
        return JSONResponse({"type": "res", "id": frame_id, "ok": True, "payload": payload})
    error = gateway_methods.error_body(exc)
    body = {"type": "res", "id": frame_id, "ok": False, "error": error}
    return JSONResponse(body, status_code=error["status"])


class InvalidJson(InvalidInput):
    """A ``POST /rpc`` body that is not JSON."""

    code = "INVALID_JSON"


@router.post(
    "/rpc",
    summary="Call a Smithers Gateway method over HTTP",
    response_class=JSONResponse,
    responses={
        200: {
            "content": {"application/json": {"schema": {"type": "object"}}},
            "description": "Smithers' response frame `{type: res, id, ok, payload}`.",
        },
        **error_responses(400, 403, 404, 409),
    },
    openapi_extra={
        FRAME_ERRORS: FRAME_ERROR_CONTENT,
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": {"type": "object"}}},
            "description": "A request frame: `{id?, method, params?}`.",
        },
    },
)
async def smithers_rpc(
    request: Request,
    principal: Annotated[Caller, require("viewer")],
    services: Annotated[Services, Depends(services_dependency)],
) -> JSONResponse:
    """Run one Smithers Gateway method (``docs/surfaces/gateway.md``); the answer is a
    response frame, with the error's HTTP status when it failed."""
    frame_id: Any = request.headers.get("x-request-id") or uuid.uuid4().hex
    try:
        try:
            body = json.loads(await request.body())
        except ValueError:
            raise InvalidJson("Gateway RPC payload must be valid JSON.") from None
        if not isinstance(body, dict):
            raise InvalidInput("RPC body must be a JSON object")
        if isinstance(body.get("id"), str) and len(body["id"]) <= MAX_FRAME_ID_CHARS:
            frame_id = body["id"]
        method = body.get("method")
        if not isinstance(method, str) or len(method) > 64 or not METHOD_NAME.match(method):
            raise InvalidInput("Gateway method name is invalid.")
        metrics: Metrics | None = getattr(request.app.state, "metrics", None)
        payload = await gateway_methods.call(
            services, principal, method, body.get("params"), metrics
        )
        if isinstance(payload, rpc.StreamSpec):
            payload = await rpc.page(services, payload)
    except FlowplaneError as exc:
        return _frame_answer(frame_id, exc)
    return _frame_answer(frame_id, None, payload)


def _smithers_webhook_error(exc: FlowplaneError) -> JSONResponse:
    if isinstance(exc, SignatureInvalid):
        code, message = "UNAUTHORIZED", "Webhook signature verification failed"
    else:
        code, message = gateway_methods.error_code(exc)[0], exc.detail
    body = {"ok": False, "error": {"code": code, "message": message}}
    return JSONResponse(body, status_code=exc.status, headers=getattr(exc, "headers", None))


@router.post(
    "/webhooks/{key}",
    summary="Deliver a webhook (Smithers Gateway form)",
    response_class=JSONResponse,
    responses={
        200: {
            "content": {"application/json": {"schema": {"type": "object"}}},
            "description": "`{ok, workflow, verified, delivered, matchedRunIds, started}`.",
        },
        **error_responses(401, 404, 429),
    },
    openapi_extra={
        FRAME_ERRORS: FRAME_ERROR_CONTENT,
        "security": [],
        "x-flowplane-public": True,
        "requestBody": {
            "required": False,
            "content": {"*/*": {"schema": {}}},
            "description": "A JSON object: the run input (or signal payload) as sent.",
        },
    },
)
async def smithers_webhook(key: WebhookKey, request: Request, services: Svc) -> JSONResponse:
    """The trigger ``key`` verifies the delivery (its scheme: ``github`` is Smithers'
    ``X-Hub-Signature-256: sha256=<hex>``); a run trigger starts a run whose input is the
    body as sent, a signal trigger signals the runs waiting for it."""
    limits = webhook_limits_of(request.app, services.settings)
    delivery = Delivery(
        body=await request.body(),
        headers=dict(request.headers),
        query=list(request.query_params.multi_items()),
        content_type=request.headers.get("content-type", ""),
    )
    try:
        await limits.admit_client(request)
        outcome = await services.triggers.receive(
            key, delivery, admit=limits.admit_trigger, input_shape="body"
        )
    except SignatureInvalid as exc:
        counter = signature_failures(request)
        if counter is not None:
            counter.labels(str(exc.extra.get("scheme", "")), str(exc.extra.get("reason", ""))).inc()
        return _smithers_webhook_error(exc)
    except FlowplaneError as exc:
        return _smithers_webhook_error(exc)
    found = outcome.body
    run_ids = [r for r in found.get("runIds", []) if isinstance(r, str)]
    delivered = [{"runId": r, "correlationId": found.get("correlationId")} for r in run_ids]
    started = None
    if "runIds" not in found and isinstance(found.get("runId"), str):
        started = {"workflow": key, "runId": found["runId"]}
        if found.get("duplicate"):
            started["duplicate"] = True
    body = {
        "ok": True,
        "workflow": key,
        "verified": True,
        "delivered": delivered,
        "matchedRunIds": run_ids,
        "started": started,
    }
    return JSONResponse(body)


@router.post(
    "/v1/rpc/{method}",
    summary="Call a gateway method over HTTP",
    response_class=JSONResponse,
    responses={
        200: {
            "content": {"application/json": {"schema": {"type": "object"}}},
            "description": "Smithers' response frame `{type: res, id, ok, payload}`.",
        },
        **error_responses(400, 403, 404, 409, 422),
    },
    openapi_extra={FRAME_ERRORS: FRAME_ERROR_CONTENT},
)
async def call_method(
    request: Request,
    method: Annotated[str, Path(max_length=64, description="A method name, e.g. `getRun`.")],
    principal: Annotated[Caller, require("viewer")],
    services: Annotated[Services, Depends(services_dependency)],
    params: Annotated[dict[str, Any] | None, Body(description="The method's params.")] = None,
) -> JSONResponse:
    """Run one gateway method: the Smithers Gateway's (``runs.create``, ``launchRun``, ...)
    or Flowplane's own (``cancelRun``, ``rewindRun``, ...). The answer is Smithers' response
    frame (``docs/surfaces/gateway.md``); stream methods answer one page of events."""
    metrics: Metrics | None = getattr(request.app.state, "metrics", None)
    frame_id = request.headers.get("x-request-id") or uuid.uuid4().hex
    try:
        result = await gateway_methods.call(services, principal, method, params, metrics)
        if isinstance(result, rpc.StreamSpec):
            result = await rpc.page(services, result)
    except FlowplaneError as exc:
        return _frame_answer(frame_id, exc)
    return _frame_answer(frame_id, None, result)
