"""Time travel: a run's frames, rewinding it, forking it, and comparing two runs.

- ``GET /v1/runs/{id}/frames?limit=&afterFrameNo=&order=`` — snapshots of every node run's
  state after each committed transition (Smithers' ``getFrames`` reads the same route).
- ``POST /v1/runs/{id}/rewind`` ``{frameNo}`` — reset the run to that frame and re-execute
  what follows, in place (an admin or the run's owner only).
- ``POST /v1/runs/{id}/fork`` ``{frameNo | fromNode, input?, useLatestVersion?}`` — a new run
  that reuses the recorded outputs before that point and runs the rest.
- ``GET /v1/runs/{id}/diff/{otherRunId}`` — what differs between two runs, node by node.

See ``docs/time-travel.md``.
"""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query, Response

from flowplane.api.deps import require, services_dependency
from flowplane.api.models.runs import ForkBody, RewindBody
from flowplane.api.openapi import error_responses
from flowplane.api.run_views import diff_model, frame_model, run_fields, run_model
from flowplane.client.models import DispatchResult, Frame, Run, RunDiff
from flowplane.model.bounds import FrameNo
from flowplane.services.caller import Caller
from flowplane.services.container import Services

router = APIRouter(prefix="/v1/runs", tags=["time travel"])

DEFAULT_FRAME_LIMIT = 50
MAX_FRAME_LIMIT = 1000

Viewer = Annotated[Caller, require("viewer")]
Executor = Annotated[Caller, require("executor")]
Svc = Annotated[Services, Depends(services_dependency)]


@router.get(
    "/{run_id}/frames",
    response_model=list[Frame],
    summary="List a run's frames",
    responses=error_responses(400, 404),
)
async def list_frames(
    run_id: str,
    principal: Viewer,
    services: Svc,
    after_frame_no: Annotated[
        FrameNo, Query(alias="afterFrameNo", ge=-1, description="Frames after this one.")
    ] = 0,
    limit: Annotated[int, Query(ge=1, le=MAX_FRAME_LIMIT)] = DEFAULT_FRAME_LIMIT,
    order: Annotated[
        Literal["asc", "desc"],
        Query(description="`asc` pages forward; `desc` gives the newest frames first."),
    ] = "asc",
) -> list[Frame]:
    """Snapshots of every node run's state after each committed transition (a JSON array)."""
    frames = await services.runs.frames(principal, run_id, after_frame_no, limit=limit, order=order)
    return [frame_model(frame) for frame in frames]


@router.post(
    "/{run_id}/rewind",
    response_model=Run,
    summary="Rewind a run to a frame",
    responses=error_responses(400, 403, 404),
)
async def rewind_run(run_id: str, body: RewindBody, principal: Executor, services: Svc) -> Run:
    """Reset the run to frame ``frameNo`` and re-execute what follows.

    Node runs finished at that frame keep their recorded outputs (their connectors are not
    called again); everything after it is reset and runs again. Only an admin or the run's
    owner (the caller that started it) may rewind a run.
    """
    return run_model(await services.runs.rewind(principal, run_id, body.frame_no))


@router.post(
    "/{run_id}/fork",
    response_model=DispatchResult,
    status_code=201,
    summary="Fork a run from a frame or a node",
    responses=error_responses(400, 404),
)
async def fork_run(
    run_id: str, body: ForkBody, response: Response, principal: Executor, services: Svc
) -> DispatchResult:
    """Start a new run that reuses the original's recorded outputs before a point.

    The point is ``frameNo`` (nodes finished at that frame are reused) or ``fromNode`` (that
    node and everything downstream run again; the rest is reused). ``input`` replaces the
    run input; ``useLatestVersion`` runs the workflow's current version, where nodes whose
    definition changed run again.
    """
    result = await services.runs.fork(
        principal,
        run_id,
        frame_no=body.frame_no,
        from_node=body.from_node,
        run_input=body.input,
        use_latest_version=body.use_latest_version,
        triggered_by=principal.name,
    )
    response.headers["Location"] = f"/v1/runs/{result.run.id}"
    return DispatchResult(**run_fields(result.run), created=result.created)


@router.get(
    "/{run_id}/diff/{other_run_id}",
    response_model=RunDiff,
    summary="Compare two runs",
    responses=error_responses(404),
)
async def diff_runs(run_id: str, other_run_id: str, principal: Viewer, services: Svc) -> RunDiff:
    """What differs between two runs (typically an original and its fork), node by node.

    A node is ``changed`` when its status or output differ; ``changedNodes`` lists them.
    """
    return diff_model(await services.runs.diff(principal, run_id, other_run_id))
