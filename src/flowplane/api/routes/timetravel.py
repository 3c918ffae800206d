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

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Response
from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

from flowplane.api.deps import require, services_dependency
from flowplane.api.openapi import error_responses
from flowplane.api.run_views import run_fields, run_model
from flowplane.client.models import DispatchResult, Frame, Run, RunDiff
from flowplane.errors import Forbidden, InvalidInput
from flowplane.services.caller import Caller
from flowplane.services.container import Services
from flowplane.services.runs import RunService
from flowplane.store.tx import Row

router = APIRouter(prefix="/v1/runs", tags=["time travel"])

DEFAULT_FRAME_LIMIT = 50
MAX_FRAME_LIMIT = 1000

Viewer = Annotated[Caller, require("viewer")]
Executor = Annotated[Caller, require("executor")]
Svc = Annotated[Services, Depends(services_dependency)]


class _Body(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid")


class RewindBody(_Body):
    """``POST /v1/runs/{id}/rewind``."""

    frame_no: int = Field(ge=1, description="The frame to go back to (see `/frames`).")


class ForkBody(_Body):
    """``POST /v1/runs/{id}/fork``: give exactly one of ``frameNo`` and ``fromNode``."""

    frame_no: int | None = Field(
        default=None, ge=1, description="Reuse the outputs of nodes finished at this frame."
    )
    from_node: str | None = Field(
        default=None,
        max_length=64,
        description="Re-run this node and everything downstream of it; reuse the rest.",
    )
    input: Any = Field(default=None, description="A new run input (default: the original's).")
    use_latest_version: bool = Field(
        default=False,
        description="Run the workflow's current version; nodes whose definition changed run again.",
    )


# --- views -------------------------------------------------------------------------------


def _frame(raw: dict[str, Any]) -> Frame:
    frame = Frame.model_validate(raw)
    frame.created_at_ms = frame.timestamp_ms
    return frame


async def frame_page(
    runs: RunService,
    run: Row,
    *,
    after_frame_no: int = 0,
    limit: int = DEFAULT_FRAME_LIMIT,
    order: Literal["asc", "desc"] = "asc",
) -> list[Frame]:
    """Return up to ``limit`` frames of ``run`` after ``after_frame_no``.

    ``asc`` pages forward from ``after_frame_no`` (oldest first); ``desc`` returns the newest
    ``limit`` frames after ``after_frame_no``, newest first (Smithers' order).
    """
    start = after_frame_no
    if order == "desc":
        last = int(run.get("frame_no") or 0)
        start = max(after_frame_no, last - limit)
    frames = [_frame(f) for f in await runs.frames(run["id"], start, limit)]
    if order == "desc":
        frames.reverse()
    return frames


def run_diff(raw: dict[str, Any]) -> RunDiff:
    """Build the wire model of :meth:`RunService.diff`'s result."""
    diff = RunDiff.model_validate(raw)
    diff.changed_nodes = sorted({n.node_id for n in diff.nodes if n.changed})
    return diff


def check_owner(principal: Caller, run: Row) -> None:
    """Allow an admin, or the principal that started ``run``; anyone else gets 403."""
    if principal.allows("admin"):
        return
    if run.get("triggered_by") and run.get("triggered_by") == principal.name:
        return
    raise Forbidden("only an admin or the run's owner may rewind it")


# --- routes ------------------------------------------------------------------------------


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
        int, Query(alias="afterFrameNo", ge=-1, description="Frames after this one.")
    ] = 0,
    limit: Annotated[int, Query(ge=1, le=MAX_FRAME_LIMIT)] = DEFAULT_FRAME_LIMIT,
    order: Annotated[
        Literal["asc", "desc"],
        Query(description="`asc` pages forward; `desc` gives the newest frames first."),
    ] = "asc",
) -> list[Frame]:
    """Snapshots of every node run's state after each committed transition (a JSON array)."""
    run = await services.runs.get(run_id, principal.namespaces)
    return await frame_page(
        services.runs, run, after_frame_no=max(after_frame_no, 0), limit=limit, order=order
    )


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
    run = await services.runs.get(run_id, principal.namespaces)
    check_owner(principal, run)
    return run_model(await services.runs.rewind(run_id, body.frame_no))


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
    await services.runs.get(run_id, principal.namespaces)
    if (body.frame_no is None) == (body.from_node is None):
        raise InvalidInput("give exactly one of frameNo and fromNode")
    result = await services.runs.fork(
        run_id,
        frame_no=body.frame_no,
        from_node=body.from_node,
        run_input=body.input,
        use_latest_version=body.use_latest_version,
        triggered_by=principal.name,
    )
    response.headers["Location"] = f"/v1/runs/{result.run['id']}"
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
    await services.runs.get(run_id, principal.namespaces)
    await services.runs.get(other_run_id, principal.namespaces)
    return run_diff(await services.runs.diff(run_id, other_run_id))
