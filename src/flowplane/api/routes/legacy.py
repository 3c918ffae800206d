"""Smithers' older paths, which its server still serves for existing clients.

| path | the route mounted there |
|---|---|
| ``POST /signal/{runId}/{name}`` | ``POST /v1/runs/{runId}/signals/{name}`` |
| ``GET /v1/approval/list``, ``GET /approval/list``, ``GET /approvals`` | ``GET /v1/approvals`` |

Each path mounts the same endpoint function as the route it repeats: the same role, the
same service call, the same answer (marked deprecated in the OpenAPI document).
"""

from __future__ import annotations

from fastapi import APIRouter

from flowplane.api.openapi import error_responses
from flowplane.api.routes import approvals, runs
from flowplane.client.models import ApprovalList, SignalResult

router = APIRouter(tags=["smithers"])

router.add_api_route(
    "/signal/{run_id}/{name}",
    runs.send_signal,
    methods=["POST"],
    response_model=SignalResult,
    summary="Send a signal to a run (Smithers' older path)",
    deprecated=True,
    responses=error_responses(400, 404, 409),
    name="send_signal_legacy",
)
for path in ("/v1/approval/list", "/approval/list", "/approvals"):
    router.add_api_route(
        path,
        approvals.list_approvals,
        methods=["GET"],
        response_model=ApprovalList,
        summary="List approvals (Smithers' older path)",
        deprecated=True,
        responses=error_responses(400),
        name=f"list_approvals_legacy{path.replace('/', '_')}",
    )
