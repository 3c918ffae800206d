"""``/v1/ws`` (the WebSocket gateway) and ``POST /v1/rpc/{method}`` (its methods over HTTP).

Both run the methods of :data:`flowplane.api.rpc.METHODS` with the roles of the REST routes
they mirror. Over HTTP the body is the method's params object; the answer is the payload
(200) or a problem document with the error's status and ``code`` (``unknown_method`` is a
404). Stream methods answer one page of events: ``{events, lastSeq, more}``.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Path, Request, WebSocket
from fastapi.responses import JSONResponse

from flowplane.api import rpc
from flowplane.api.deps import require, services_dependency
from flowplane.api.gateway import gateway_of
from flowplane.api.metrics import Metrics
from flowplane.api.openapi import error_responses
from flowplane.services.caller import Caller
from flowplane.services.container import Services

router = APIRouter(tags=["gateway"])


@router.websocket("/v1/ws")
async def websocket_gateway(websocket: WebSocket) -> None:
    """The WebSocket gateway (see ``docs/events.md``)."""
    services: Services = websocket.app.state.services
    await gateway_of(websocket.app, services).serve(websocket, services)


@router.post(
    "/v1/rpc/{method}",
    summary="Call a gateway method over HTTP",
    response_class=JSONResponse,
    responses={
        200: {
            "content": {"application/json": {"schema": {"description": "Any JSON value."}}},
            "description": "The method's payload (what the WebSocket `res` frame carries).",
        },
        **error_responses(400, 403, 404, 409, 422),
    },
)
async def call_method(
    request: Request,
    method: Annotated[str, Path(max_length=64, description="A method name, e.g. `getRun`.")],
    principal: Annotated[Caller, require("viewer")],
    services: Annotated[Services, Depends(services_dependency)],
    params: Annotated[dict[str, Any] | None, Body(description="The method's params.")] = None,
) -> JSONResponse:
    """Run one gateway method; each method needs the role of the REST route it mirrors."""
    metrics: Metrics | None = getattr(request.app.state, "metrics", None)
    result = await rpc.call(services, principal, method, params, metrics)
    if isinstance(result, rpc.StreamSpec):
        result = await rpc.page(services, result)
    return JSONResponse(result)
