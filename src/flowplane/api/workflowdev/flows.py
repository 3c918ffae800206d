"""``/api/v1/flows``: flows CRUD with ``yamlContent``, validate, import/export, revisions.

Each route translates workflowdev's flow (:mod:`flowplane.model.dialects.workflowdev`) into
a Flowplane document and makes one call on the workflow service; the text is stored in the
document's ``source`` and comes back as it was sent.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Header, Path, Query, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from flowplane.api.deps import ObjectId, require, services_dependency
from flowplane.api.openapi import error_responses
from flowplane.api.workflowdev.views import flow_view, revision_view, started_view
from flowplane.errors import DocumentError, InvalidInput, WorkflowInvalid
from flowplane.model.bounds import Version
from flowplane.model.dialects import workflowdev as dialect
from flowplane.model.document import NAME_PATTERN, NAMESPACE_PATTERN
from flowplane.model.yaml import MAX_DOCUMENT_BYTES
from flowplane.services.caller import Caller
from flowplane.services.container import Services
from flowplane.services.workflows import ANY_VERSION, ExpectedVersion

router = APIRouter(prefix="/api/v1/flows", tags=["workflowdev"])

Svc = Annotated[Services, Depends(services_dependency)]
Viewer = Annotated[Caller, require("viewer")]
Executor = Annotated[Caller, require("executor")]
Editor = Annotated[Caller, require("editor")]


class FlowIn(BaseModel):
    """``POST /api/v1/flows``, ``PUT /api/v1/flows/{id}`` and ``POST /flows/import``."""

    model_config = ConfigDict(extra="ignore")
    name: str | None = Field(default=None, pattern=NAME_PATTERN)
    namespace: str | None = Field(default=None, pattern=NAMESPACE_PATTERN)
    description: str | None = Field(default=None, max_length=10_000)
    yamlContent: str | None = Field(default=None, max_length=MAX_DOCUMENT_BYTES)


class ValidateIn(BaseModel):
    """``POST /api/v1/flows/validate``."""

    model_config = ConfigDict(extra="ignore")
    yamlContent: str = Field(max_length=MAX_DOCUMENT_BYTES)


def _document(
    body: FlowIn, *, text: str | None = None, name: str | None = None, namespace: str | None = None
) -> dict[str, Any]:
    yaml_content = body.yamlContent if body.yamlContent is not None else text
    if yaml_content is None:
        raise InvalidInput("yamlContent is required: the flow's YAML (name, tasks)")
    doc = dialect.to_document(
        yaml_content, name=body.name or name, namespace=namespace or body.namespace
    )
    if body.description:
        doc["description"] = body.description
    return doc


def _expected(if_match: str | None) -> ExpectedVersion:
    """workflowdev updates without a version; ``If-Match`` still makes one conditional."""
    if if_match is None:
        return ANY_VERSION
    value = if_match.strip().removeprefix("W/").strip('"')
    if value == "*":
        return ANY_VERSION
    if not value.isdigit():
        raise InvalidInput('If-Match takes a version, e.g. If-Match: "3"')
    return int(value)


@router.get("", summary="List flows")
async def list_flows(
    principal: Viewer,
    services: Svc,
    response: Response,
    namespace: Annotated[list[str] | None, Query()] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
) -> list[dict[str, Any]]:
    """Flows in creation order; ``X-Next-Cursor`` names the next page when there is one."""
    page = await services.workflows.list_workflows(
        principal, namespaces=namespace, limit=limit, cursor=cursor
    )
    if page.next_cursor:
        response.headers["X-Next-Cursor"] = page.next_cursor
    return [flow_view(wf) for wf in page.items]


@router.post("", status_code=201, summary="Create a flow", responses=error_responses(409))
async def create_flow(body: FlowIn, principal: Editor, services: Svc) -> dict[str, Any]:
    """Validate ``yamlContent`` and store it as a new flow (201)."""
    created = await services.workflows.create(principal, _document(body), message="created")
    return flow_view(created)


@router.post("/validate", summary="Validate a flow's YAML")
async def validate_flow(body: ValidateIn, principal: Viewer, services: Svc) -> dict[str, Any]:
    """``{valid, errors}``: every problem, each naming its task (never an error status);
    ``warnings`` when a valid flow names a credential that is not stored yet."""
    try:
        doc = dialect.to_document(body.yamlContent)
    except (DocumentError, WorkflowInvalid) as exc:
        issues = exc.extra.get("errors") or [{"error": exc.detail, "code": exc.code}]
        return {"valid": False, "errors": [_issue(e) for e in issues]}
    report = await services.workflows.validate(principal, doc)
    answer: dict[str, Any] = {"valid": report.valid, "errors": [_issue(e) for e in report.errors]}
    if report.warnings:
        # Not errors: e.g. a credential the flow names that is not stored yet.
        answer["warnings"] = [_issue(w) for w in report.warnings]
    return answer


def _issue(error: dict[str, Any]) -> dict[str, Any]:
    return {
        "task": error.get("node_id"),
        "type": error.get("node_type"),
        "field": error.get("field"),
        "message": error.get("error"),
        "code": error.get("code"),
        "line": error.get("line"),
    }


@router.post(
    "/import",
    status_code=201,
    response_model=dict[str, Any],
    responses={
        **error_responses(409),
        200: {
            "description": "An existing flow of that name was updated.",
            "content": {"application/json": {"schema": {"type": "object"}}},
        },
    },
    summary="Import a flow from JSON",
)
async def import_flow(
    principal: Editor, services: Svc, body: Annotated[dict[str, Any], Body()]
) -> JSONResponse:
    """Create the flow an export holds, or update the one of that name (201 / 200)."""
    flow = FlowIn.model_validate(body)
    items = await services.workflows.import_documents(principal, [_document(flow)])
    view = {**flow_view(items[0].workflow), "action": items[0].action}
    return JSONResponse(view, status_code=201 if items[0].action == "created" else 200)


@router.get("/{workflow_id}", summary="Get a flow")
async def get_flow(workflow_id: ObjectId, principal: Viewer, services: Svc) -> dict[str, Any]:
    """The flow with its ``yamlContent``."""
    return flow_view(await services.workflows.get(principal, workflow_id))


@router.put("/{workflow_id}", summary="Update a flow", responses=error_responses(409, 412))
async def update_flow(
    workflow_id: ObjectId,
    body: FlowIn,
    principal: Editor,
    services: Svc,
    if_match: Annotated[str | None, Header(max_length=64)] = None,
) -> dict[str, Any]:
    """Replace the flow's YAML (or name); the previous version stays as a revision."""
    current = await services.workflows.get(principal, workflow_id)
    doc = _document(
        body,
        text=dialect.from_document(current.document),
        name=current.name,
        namespace=current.namespace,
    )
    if body.description is None and current.description:
        doc.setdefault("description", current.description)
    updated = await services.workflows.update(
        principal, workflow_id, doc, expected_version=_expected(if_match), message="updated"
    )
    return flow_view(updated)


@router.delete("/{workflow_id}", status_code=204, summary="Delete a flow")
async def delete_flow(workflow_id: ObjectId, principal: Editor, services: Svc) -> Response:
    """Delete the flow; its executions keep the version they ran."""
    await services.workflows.delete(principal, workflow_id)
    return Response(status_code=204)


@router.post(
    "/{workflow_id}/execute", summary="Execute a flow", responses=error_responses(422, 503)
)
async def execute_flow(
    workflow_id: ObjectId,
    principal: Executor,
    services: Svc,
    body: Annotated[Any, Body()] = None,
    idempotency_key: Annotated[str | None, Header(max_length=255)] = None,
) -> dict[str, Any]:
    """Queue an execution of the flow's current version: ``{executionId, status, tasksTotal}``.

    A JSON body, when sent, is the execution's input.
    """
    started = await services.workflows.start_run(
        principal, workflow_id, body, idempotency_key=idempotency_key or None
    )
    nodes = (started.run.document or {}).get("nodes") or []
    if not nodes:
        nodes = (await services.runs.document(principal, started.run.id)).get("nodes") or []
    return started_view(started.run, len(nodes))


@router.get("/{workflow_id}/export", response_model=dict[str, Any], summary="Export a flow as JSON")
async def export_flow(workflow_id: ObjectId, principal: Viewer, services: Svc) -> JSONResponse:
    """The flow as JSON that ``POST /flows/import`` takes back."""
    wf = await services.workflows.get(principal, workflow_id)
    view = flow_view(wf)
    exported = {k: view[k] for k in ("name", "namespace", "description", "yamlContent") if view[k]}
    exported["version"] = wf.version
    filename = f"{wf.name}.json"
    return JSONResponse(
        exported, headers={"Content-Disposition": f'attachment; filename="{filename}"'}
    )


@router.get("/{workflow_id}/revisions", summary="List a flow's revisions")
async def list_revisions(
    workflow_id: ObjectId, principal: Viewer, services: Svc
) -> list[dict[str, Any]]:
    """Every saved version of the flow (each YAML update saves one), newest first."""
    revisions = await services.workflows.revisions(principal, workflow_id)
    return [revision_view(r) for r in sorted(revisions, key=lambda r: -r.version)]


@router.get("/{workflow_id}/revisions/{version}", summary="Get one revision of a flow")
async def get_revision(
    workflow_id: ObjectId,
    version: Annotated[Version, Path()],
    principal: Viewer,
    services: Svc,
) -> dict[str, Any]:
    """One revision with its ``yamlContent``."""
    return revision_view(await services.workflows.revision(principal, workflow_id, version))


@router.post("/{workflow_id}/revisions/{version}/restore", summary="Restore a revision")
async def restore_revision(
    workflow_id: ObjectId, version: Annotated[Version, Path()], principal: Editor, services: Svc
) -> dict[str, Any]:
    """Save revision ``version`` as the flow's newest version (history is kept)."""
    return flow_view(await services.workflows.restore(principal, workflow_id, version))
