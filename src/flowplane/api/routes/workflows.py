"""``/v1/workflows``: stored workflows, their revisions, EditOps, import/export and dispatch.

Routes are thin: they read the body (JSON, or YAML with ``Content-Type: application/yaml``),
translate ``ETag``/``If-Match`` to versions, and call :class:`WorkflowService`. Workflows use
camelCase on the wire; the EditOps result uses the snake_case keys of DESIGN.md.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Header, Path, Query, Request, Response
from starlette.exceptions import HTTPException

from flowplane.api.deps import get_services, require, services_dependency
from flowplane.api.models.workflows import (
    DOCUMENT_SCHEMA,
    JSON_TYPES,
    YAML_TYPES,
    ImportedOut,
    ImportOut,
    OperationsBody,
    PatchOut,
    RevisionList,
    RevisionOut,
    ValidationErrorOut,
    ValidationOut,
    WorkflowList,
    WorkflowOut,
    WorkflowRunBody,
    etag,
    parse_if_match,
    patch_out,
    revision_out,
    run_request_hash,
    workflow_out,
)
from flowplane.api.openapi import error_responses
from flowplane.api.paging import Cursor, NamespaceFilter, PageSize
from flowplane.api.run_views import run_fields
from flowplane.client.models import DispatchResult
from flowplane.errors import InvalidInput
from flowplane.model.bounds import Version
from flowplane.services.caller import Caller
from flowplane.services.container import Services
from flowplane.services.runs import StartResult
from flowplane.services.workflows import split_documents

router = APIRouter(prefix="/v1/workflows", tags=["workflows"])

Svc = Annotated[Services, Depends(services_dependency)]
Viewer = Annotated[Caller, require("viewer")]
Executor = Annotated[Caller, require("executor")]
Editor = Annotated[Caller, require("editor")]
IfMatch = Annotated[
    str | None,
    Header(alias="If-Match", description='The version you read, as its ETag: `"3"`, or `*`.'),
]
WorkflowRef = Annotated[str, Path(description="The workflow id.")]


def _body(description: str, json_schema: dict[str, Any]) -> dict[str, Any]:
    """``openapi_extra`` for a raw body given as JSON or as YAML.

    The YAML media types have the JSON one's schema: it describes the value the YAML text
    encodes (a schema of ``type: string`` would say the body is one YAML string).
    """
    content: dict[str, Any] = {t: {"schema": json_schema} for t in JSON_TYPES + YAML_TYPES[:2]}
    return {"requestBody": {"required": True, "description": description, "content": content}}


def _problems(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses=`` entries for this route's problem documents (the app adds the
    statuses every route shares: 401, 403, 429, ...)."""
    return error_responses(*statuses)


def _with_etag(status: int, *statuses: int) -> dict[int | str, dict[str, Any]]:
    """``responses=``: the success response carries an ``ETag``, then the problems."""
    header = {
        "ETag": {
            "description": 'The workflow version, quoted: `"3"`.',
            "schema": {"type": "string"},
        }
    }
    return {status: {"headers": header}, **_problems(*statuses)}


async def _document_body(request: Request) -> bytes:
    """The raw request body, when its media type is JSON or YAML (else 415)."""
    media = request.headers.get("content-type", "application/json").split(";")[0].strip().lower()
    if media not in JSON_TYPES + YAML_TYPES and not media.endswith("+json"):
        raise HTTPException(
            415, f"send the document as application/json or application/yaml, not {media}"
        )
    return await request.body()


# Starting a run comes first: FastAPI tries a router's routes in order, and this is the
# most requested route of the router.
@router.post(
    "/{workflow_id}/runs",
    response_model=DispatchResult,
    status_code=201,
    summary="Run a workflow",
    responses={
        200: {"model": DispatchResult, "description": "An existing run (idempotent replay)."},
        **_problems(400, 404, 409, 422),
    },
)
async def run_workflow(
    request: Request,
    workflow_id: WorkflowRef,
    response: Response,
    principal: Executor,
    body: WorkflowRunBody | None = None,
    idempotency_key: Annotated[str | None, Header(alias="Idempotency-Key", max_length=255)] = None,
) -> DispatchResult:
    """Start a run of the workflow's current version.

    The same ``Idempotency-Key`` (header or ``idempotencyKey``) with the same body returns
    the same run (200); with another body it is 422 ``idempotency_key_reused``.
    """
    result = await start_workflow_run(request, workflow_id, principal, body, idempotency_key)
    response.status_code = 201 if result.created else 200
    return DispatchResult(**run_fields(result.run), created=result.created)


async def start_workflow_run(
    request: Request,
    workflow_id: str,
    principal: Caller,
    body: WorkflowRunBody | None,
    idempotency_key: str | None,
) -> StartResult:
    """What :func:`run_workflow` does, before rendering (shared with
    :mod:`flowplane.api.start_shortcut`)."""
    body = body or WorkflowRunBody()
    if idempotency_key and body.idempotency_key and idempotency_key != body.idempotency_key:
        raise InvalidInput("the Idempotency-Key header and idempotencyKey differ")
    services = get_services(request)  # not a dependency: one less for FastAPI to solve
    return await services.workflows.start_run(
        principal,
        workflow_id,
        body.input,
        idempotency_key=idempotency_key or body.idempotency_key,
        request_hash=run_request_hash(workflow_id, body),
        run_id=body.run_id,
    )


@router.post(
    "",
    response_model=WorkflowOut,
    status_code=201,
    summary="Create a workflow",
    responses=_with_etag(201, 400, 409, 413, 415),
    openapi_extra=_body("The workflow document, as JSON or YAML.", DOCUMENT_SCHEMA),
)
async def create_workflow(
    request: Request, response: Response, principal: Editor, services: Svc
) -> WorkflowOut:
    """Validate and store a new workflow (version 1). Its namespace comes from the document."""
    body = await _document_body(request)
    wf = await services.workflows.create(principal, body)
    response.headers["ETag"] = etag(wf.version)
    response.headers["Location"] = f"/v1/workflows/{wf.id}"
    return workflow_out(wf)


@router.get(
    "",
    response_model=WorkflowList,
    summary="List workflows",
    responses=_problems(400),
)
async def list_workflows(
    principal: Viewer,
    services: Svc,
    namespace: NamespaceFilter = None,
    limit: PageSize = 50,
    cursor: Cursor = None,
) -> WorkflowList:
    """List live workflows in creation order, a page at a time."""
    page = await services.workflows.list_workflows(
        principal, namespaces=namespace, limit=limit, cursor=cursor
    )
    return WorkflowList(items=[workflow_out(w) for w in page.items], next_cursor=page.next_cursor)


@router.post(
    "/validate",
    response_model=ValidationOut,
    summary="Validate a workflow document",
    responses=_problems(413, 415),
    openapi_extra=_body(
        "Any JSON or YAML value: what is not a valid workflow document is reported in the "
        "answer's `errors` (200 with `valid: false`), not refused.",
        {"description": "Meant to be a workflow document (see `WorkflowDocument`)."},
    ),
)
async def validate_workflow(request: Request, principal: Viewer, services: Svc) -> ValidationOut:
    """Check a document without storing it: ``valid`` and every problem found."""
    body = await _document_body(request)
    report = await services.workflows.validate(principal, body)
    return ValidationOut(
        valid=report.valid,
        errors=[ValidationErrorOut(**e) for e in report.errors],
        document=report.document,
        warnings=[ValidationErrorOut(**e) for e in report.warnings],
    )


@router.post(
    "/import",
    response_model=ImportOut,
    summary="Import workflows",
    responses=_problems(400, 413, 415),
    openapi_extra=_body(
        "A JSON array of documents, `{workflows: [...]}`, or a YAML stream of documents "
        "separated by `---`.",
        {
            "oneOf": [
                {"type": "array", "items": DOCUMENT_SCHEMA},
                {
                    "type": "object",
                    "required": ["workflows"],
                    "properties": {"workflows": {"type": "array", "items": DOCUMENT_SCHEMA}},
                    "additionalProperties": False,
                },
                DOCUMENT_SCHEMA,
            ]
        },
    ),
)
async def import_workflows(request: Request, principal: Editor, services: Svc) -> ImportOut:
    """Create or update workflows by namespace and name, all or nothing.

    A document equal to the stored one is left unchanged (no new version), so importing an
    export is a no-op.
    """
    body = await _document_body(request)
    documents = split_documents(body)
    items = await services.workflows.import_documents(principal, list(documents))
    out = [
        ImportedOut(
            id=i.workflow.id,
            name=i.workflow.name,
            namespace=i.workflow.namespace,
            version=i.workflow.version,
            action=i.action,
        )
        for i in items
    ]
    return ImportOut(
        items=out,
        created=sum(i.action == "created" for i in out),
        updated=sum(i.action == "updated" for i in out),
        unchanged=sum(i.action == "unchanged" for i in out),
    )


@router.get(
    "/{workflow_id}",
    response_model=WorkflowOut,
    summary="Get a workflow",
    responses=_with_etag(200, 404),
)
async def get_workflow(
    workflow_id: Annotated[str, Path(description="The workflow id, or its name.")],
    response: Response,
    principal: Viewer,
    services: Svc,
    namespace: Annotated[
        str | None, Query(description="Namespace of a workflow named in the path.")
    ] = None,
) -> WorkflowOut:
    """Return the workflow (by id, or by name in ``namespace``) with its ``ETag``."""
    wf = await services.workflows.resolve(principal, workflow_id, namespace=namespace)
    response.headers["ETag"] = etag(wf.version)
    return workflow_out(wf)


@router.put(
    "/{workflow_id}",
    response_model=WorkflowOut,
    summary="Replace a workflow",
    responses=_with_etag(200, 400, 404, 409, 412, 413, 415, 428),
    openapi_extra=_body("The new workflow document, as JSON or YAML.", DOCUMENT_SCHEMA),
)
async def update_workflow(
    workflow_id: WorkflowRef,
    request: Request,
    response: Response,
    principal: Editor,
    services: Svc,
    if_match: IfMatch = None,
) -> WorkflowOut:
    """Save a new version. ``If-Match`` is required (428 without, 412 when stale)."""
    body = await _document_body(request)
    wf = await services.workflows.update(
        principal, workflow_id, body, expected_version=parse_if_match(if_match)
    )
    response.headers["ETag"] = etag(wf.version)
    return workflow_out(wf)


@router.delete(
    "/{workflow_id}",
    status_code=204,
    response_class=Response,
    summary="Delete a workflow",
    responses=_problems(404, 412),
)
async def delete_workflow(
    workflow_id: WorkflowRef, principal: Editor, services: Svc, if_match: IfMatch = None
) -> Response:
    """Soft-delete the workflow; its runs keep the document they pinned."""
    await services.workflows.delete(
        principal, workflow_id, expected_version=parse_if_match(if_match)
    )
    return Response(status_code=204)


@router.post(
    "/{workflow_id}/operations",
    response_model=PatchOut,
    summary="Edit a workflow with EditOps",
    responses=_with_etag(200, 400, 404, 409, 412),
)
async def apply_operations(
    workflow_id: WorkflowRef,
    body: OperationsBody,
    response: Response,
    principal: Editor,
    services: Svc,
    if_match: IfMatch = None,
) -> PatchOut:
    """Apply a batch of EditOps; ops that cannot apply are skipped, never the whole batch.

    A new version is saved when something changed. ``ok`` is true when nothing was skipped
    and the result is valid; ``summary`` says what to do next.
    """
    outcome = await services.workflows.patch(
        principal, workflow_id, body.ops, expected_version=parse_if_match(if_match)
    )
    response.headers["ETag"] = etag(outcome.version)
    return patch_out(outcome)


@router.get(
    "/{workflow_id}/export",
    response_class=Response,
    summary="Export a workflow document",
    responses={
        200: {
            "description": "The document, as YAML (`format=yaml`, the default) or JSON "
            "(`format=json`); importing it gives back the same document.",
            "content": {
                "application/yaml": {"schema": DOCUMENT_SCHEMA},
                "application/json": {"schema": DOCUMENT_SCHEMA},
            },
        },
        **_problems(400, 404),
    },
)
async def export_workflow(
    workflow_id: WorkflowRef,
    principal: Viewer,
    services: Svc,
    format: Annotated[Literal["yaml", "json"], Query()] = "yaml",
) -> Response:
    """Return the document as YAML (default) or JSON."""
    text, wf = await services.workflows.export(principal, workflow_id, format)
    media = "application/yaml" if format == "yaml" else "application/json"
    return Response(
        content=text.encode("utf-8"),
        media_type=f"{media}; charset=utf-8",
        headers={
            "ETag": etag(wf.version),
            "Content-Disposition": f'attachment; filename="{wf.name}.{format}"',
        },
    )


@router.get(
    "/{workflow_id}/revisions",
    response_model=RevisionList,
    summary="List a workflow's revisions",
    responses=_problems(404),
)
async def list_revisions(
    workflow_id: WorkflowRef, principal: Viewer, services: Svc
) -> RevisionList:
    """Every saved version, newest first, without documents."""
    revisions = await services.workflows.revisions(principal, workflow_id)
    return RevisionList(items=[revision_out(r) for r in revisions])


@router.get(
    "/{workflow_id}/revisions/{version}",
    response_model=RevisionOut,
    summary="Get one revision",
    responses=_problems(404),
)
async def get_revision(
    workflow_id: WorkflowRef,
    version: Annotated[Version, Path()],
    principal: Viewer,
    services: Svc,
) -> RevisionOut:
    """One saved version with its document."""
    return revision_out(await services.workflows.revision(principal, workflow_id, version))


@router.post(
    "/{workflow_id}/revisions/{version}/restore",
    response_model=WorkflowOut,
    summary="Restore a revision as a new version",
    responses=_with_etag(200, 404, 409, 412),
)
async def restore_revision(
    workflow_id: WorkflowRef,
    version: Annotated[Version, Path()],
    response: Response,
    principal: Editor,
    services: Svc,
    if_match: IfMatch = None,
) -> WorkflowOut:
    """Save the document of ``version`` as the next version (history is kept)."""
    wf = await services.workflows.restore(
        principal, workflow_id, version, expected_version=parse_if_match(if_match)
    )
    response.headers["ETag"] = etag(wf.version)
    return workflow_out(wf)
