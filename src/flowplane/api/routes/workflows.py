"""``/v1/workflows``: stored workflows, their revisions, EditOps, import/export and dispatch.

Routes are thin: they read the body (JSON, or YAML with ``Content-Type: application/yaml``),
translate ``ETag``/``If-Match`` to versions, and call :class:`WorkflowService`. Workflows use
camelCase on the wire; the EditOps result uses the snake_case keys of DESIGN.md.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Header, Path, Query, Request, Response
from pydantic import BaseModel, ConfigDict, Field, WithJsonSchema
from pydantic.alias_generators import to_camel
from starlette.exceptions import HTTPException

from flowplane.api.deps import require, services_dependency
from flowplane.api.openapi import error_responses
from flowplane.api.paging import Cursor, NamespaceFilter, PageSize
from flowplane.api.run_views import run_model
from flowplane.client.models import DispatchResult
from flowplane.errors import InvalidInput
from flowplane.model.document import Workflow
from flowplane.model.edits import OPS, SkipCode
from flowplane.services.caller import Caller
from flowplane.services.container import Services
from flowplane.services.workflows import (
    ANY_VERSION,
    ExpectedVersion,
    PatchOutcome,
    Revision,
    StoredWorkflow,
    WorkflowService,
    split_documents,
)

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

MAX_OPS = 1000
JSON_TYPES = ("application/json",)
YAML_TYPES = ("application/yaml", "text/yaml", "application/x-yaml", "text/x-yaml")


# --- schemas -----------------------------------------------------------------------------


def _inline(schema: Any, defs: dict[str, Any]) -> Any:
    """Replace ``{"$ref": "#/$defs/X"}`` by X (the document model has no recursion)."""
    if isinstance(schema, dict):
        ref = schema.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/$defs/"):
            return _inline(defs[ref.removeprefix("#/$defs/")], defs)
        return {k: _inline(v, defs) for k, v in schema.items() if k != "$defs"}
    if isinstance(schema, list):
        return [_inline(item, defs) for item in schema]
    return schema


def _document_schema() -> dict[str, Any]:
    raw = Workflow.model_json_schema()
    schema: dict[str, Any] = _inline(raw, raw.get("$defs", {}))
    schema["title"] = "WorkflowDocument"
    return schema


DOCUMENT_SCHEMA = _document_schema()
YAML_SCHEMA: dict[str, Any] = {"type": "string", "description": "The document as YAML."}
DocumentJson = Annotated[dict[str, Any], WithJsonSchema(DOCUMENT_SCHEMA)]


def _body(description: str, json_schema: dict[str, Any]) -> dict[str, Any]:
    """``openapi_extra`` for a raw body given as JSON or as YAML."""
    content: dict[str, Any] = {"application/json": {"schema": json_schema}}
    content.update({t: {"schema": YAML_SCHEMA} for t in YAML_TYPES[:2]})
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


class _Wire(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True)


class _Request(_Wire):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid")


class WorkflowOut(_Wire):
    """A stored workflow at its current version."""

    id: str
    name: str
    namespace: str
    version: int = Field(description="1 at creation, +1 on every change; the ETag.")
    description: str
    document: DocumentJson = Field(description="The workflow document (no `version` key).")
    created_at_ms: int
    updated_at_ms: int
    created_at: str = Field(description="ISO-8601 of createdAtMs.")
    updated_at: str = Field(description="ISO-8601 of updatedAtMs.")
    created_by: str | None = None


class WorkflowList(_Wire):
    """A page of workflows; pass ``nextCursor`` as ``cursor`` for the next page."""

    items: list[WorkflowOut]
    next_cursor: str | None = None


class RevisionOut(_Wire):
    """One saved version of a workflow (``document`` only when asked for one revision)."""

    workflow_id: str
    version: int
    created_at_ms: int
    created_at: str
    created_by: str | None = None
    message: str | None = None
    document: DocumentJson | None = None


class RevisionList(_Wire):
    """Every revision, newest first."""

    items: list[RevisionOut]


class ImportedOut(_Wire):
    """What the import did with one document."""

    id: str
    name: str
    namespace: str
    version: int
    action: Literal["created", "updated", "unchanged"]


class ImportOut(_Wire):
    """The result of an import, in the order of the documents."""

    items: list[ImportedOut]
    created: int
    updated: int
    unchanged: int


class ValidationErrorOut(BaseModel):
    """One problem of a workflow (snake_case, like the EditOps result)."""

    node_id: str | None = None
    node_type: str | None = None
    field: str | None = None
    value: Any = None
    error: str
    code: str | None = Field(default=None, description="A stable machine code.")
    path: str | None = Field(default=None, description="Where in the document (parse errors).")
    line: int | None = Field(default=None, description="1-based line (parse errors).")


class ValidationOut(BaseModel):
    """The result of ``POST /v1/workflows/validate``."""

    valid: bool
    errors: list[ValidationErrorOut]
    document: DocumentJson | None = Field(
        default=None, description="The canonical document, when it parsed."
    )


class SkippedItemOut(BaseModel):
    """An op that was not applied."""

    index: int
    op: str | None
    node_id: str | None
    reason_code: SkipCode
    reason: str
    details: dict[str, Any]


class AppliedItemOut(BaseModel):
    """An op that was applied."""

    index: int
    op: str
    node_id: str | None
    description: str


class PatchOut(BaseModel):
    """The result of an EditOps batch."""

    ok: bool = Field(description="Nothing was skipped and nothing is invalid.")
    version: int = Field(description="The version after the batch.")
    saved: bool = Field(description="Whether a new version was saved.")
    workflow: DocumentJson = Field(description="The document after the batch.")
    validation_errors: list[ValidationErrorOut]
    skipped_items: list[SkippedItemOut]
    applied: list[AppliedItemOut]
    summary: str = Field(description="One paragraph for a person or an LLM.")


_OP_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["op"],
    "properties": {
        "op": {"type": "string", "enum": list(OPS)},
        "node_id": {"type": "string"},
        "target_node_id": {"type": "string"},
        "new_id": {"type": "string"},
        "type": {"type": "string"},
        "params": {"type": "object"},
        "needs": {"type": "array", "items": {"type": "string"}},
        "field": {"type": "string"},
        "value": {},
    },
    "additionalProperties": True,
    "description": "An EditOp; ops that cannot apply are returned in skipped_items.",
}


class OperationsBody(BaseModel):
    """``POST /v1/workflows/{id}/operations``: exactly ``{"ops": [...]}``."""

    model_config = ConfigDict(extra="forbid")
    ops: Annotated[
        list[Any], WithJsonSchema({"type": "array", "items": _OP_SCHEMA, "maxItems": MAX_OPS})
    ] = Field(max_length=MAX_OPS)


class WorkflowRunBody(_Request):
    """``POST /v1/workflows/{id}/runs``."""

    input: Any = Field(default=None, description="The run input (validated at dispatch).")
    idempotency_key: str | None = Field(
        default=None, max_length=255, description="Same as the Idempotency-Key header."
    )
    run_id: str | None = Field(
        default=None, max_length=64, pattern=r"^[A-Za-z0-9_.:-]+$", description="Own run id."
    )


# --- helpers -----------------------------------------------------------------------------


def _iso(ms: int) -> str:
    return dt.datetime.fromtimestamp(ms / 1000, dt.UTC).isoformat().replace("+00:00", "Z")


def workflow_out(wf: StoredWorkflow) -> WorkflowOut:
    """Build the wire model of a stored workflow."""
    return WorkflowOut(
        id=wf.id,
        name=wf.name,
        namespace=wf.namespace,
        version=wf.version,
        description=wf.description,
        document=wf.document,
        created_at_ms=wf.created_at_ms,
        updated_at_ms=wf.updated_at_ms,
        created_at=_iso(wf.created_at_ms),
        updated_at=_iso(wf.updated_at_ms),
        created_by=wf.created_by,
    )


def _revision_out(rev: Revision) -> RevisionOut:
    return RevisionOut(
        workflow_id=rev.workflow_id,
        version=rev.version,
        created_at_ms=rev.created_at_ms,
        created_at=_iso(rev.created_at_ms),
        created_by=rev.created_by,
        message=rev.message,
        document=rev.document,
    )


def etag(version: int) -> str:
    """The ETag of a workflow version."""
    return f'"{version}"'


def parse_if_match(value: str | None) -> ExpectedVersion:
    """``If-Match`` -> the expected version (``None`` when absent, ``*`` for any).

    A value that names no version (``"abc"``) can never match: it becomes 0.
    """
    if value is None or not value.strip():
        return None
    text = value.split(",")[0].strip()
    if text == ANY_VERSION:
        return ANY_VERSION
    text = text.removeprefix("W/").strip('"')
    return int(text) if text.isdigit() else 0


async def _document_body(request: Request) -> bytes:
    """The raw request body, when its media type is JSON or YAML (else 415)."""
    media = request.headers.get("content-type", "application/json").split(";")[0].strip().lower()
    if media not in JSON_TYPES + YAML_TYPES and not media.endswith("+json"):
        raise HTTPException(
            415, f"send the document as application/json or application/yaml, not {media}"
        )
    return await request.body()


def _workflows(services: Services) -> WorkflowService:
    return services.workflows


# --- routes ------------------------------------------------------------------------------


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
    wf = await _workflows(services).create(
        body, namespaces=principal.namespaces, created_by=principal.name
    )
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
    visible = principal.visible(namespace)
    if visible is not None and not visible:
        return WorkflowList(items=[], next_cursor=None)
    page = await _workflows(services).list_workflows(namespaces=visible, limit=limit, cursor=cursor)
    return WorkflowList(items=[workflow_out(w) for w in page.items], next_cursor=page.next_cursor)


@router.post(
    "/validate",
    response_model=ValidationOut,
    summary="Validate a workflow document",
    responses=_problems(413, 415),
    openapi_extra=_body("The workflow document, as JSON or YAML.", DOCUMENT_SCHEMA),
)
async def validate_workflow(request: Request, principal: Viewer, services: Svc) -> ValidationOut:
    """Check a document without storing it: ``valid`` and every problem found."""
    body = await _document_body(request)
    report = _workflows(services).validate(body)
    return ValidationOut(
        valid=report.valid,
        errors=[ValidationErrorOut(**e) for e in report.errors],
        document=report.document,
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
    items = await _workflows(services).import_documents(
        list(documents), namespaces=principal.namespaces, imported_by=principal.name
    )
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
    wf = await _workflows(services).resolve(
        workflow_id, namespace=namespace, namespaces=principal.namespaces
    )
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
    wf = await _workflows(services).update(
        workflow_id,
        body,
        expected_version=parse_if_match(if_match),
        namespaces=principal.namespaces,
        updated_by=principal.name,
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
    await _workflows(services).delete(
        workflow_id, expected_version=parse_if_match(if_match), namespaces=principal.namespaces
    )
    return Response(status_code=204)


def _patch_out(outcome: PatchOutcome) -> PatchOut:
    result = outcome.result
    return PatchOut(
        ok=outcome.ok,
        version=outcome.version,
        saved=outcome.saved,
        workflow=result.workflow,
        validation_errors=[ValidationErrorOut(**e) for e in result.validation_errors],
        skipped_items=[SkippedItemOut(**s.to_dict()) for s in result.skipped_items],
        applied=[AppliedItemOut(**a.to_dict()) for a in result.applied],
        summary=result.summary,
    )


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
    outcome = await _workflows(services).patch(
        workflow_id,
        body.ops,
        expected_version=parse_if_match(if_match),
        namespaces=principal.namespaces,
        edited_by=principal.name,
    )
    response.headers["ETag"] = etag(outcome.version)
    return _patch_out(outcome)


@router.get(
    "/{workflow_id}/export",
    response_class=Response,
    summary="Export a workflow document",
    responses={
        200: {
            "description": "The document; importing it gives back the same document.",
            "content": {
                "application/yaml": {"schema": YAML_SCHEMA},
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
    text, wf = await _workflows(services).export(
        workflow_id, format, namespaces=principal.namespaces
    )
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
    revisions = await _workflows(services).revisions(workflow_id, namespaces=principal.namespaces)
    return RevisionList(items=[_revision_out(r) for r in revisions])


@router.get(
    "/{workflow_id}/revisions/{version}",
    response_model=RevisionOut,
    summary="Get one revision",
    responses=_problems(404),
)
async def get_revision(
    workflow_id: WorkflowRef,
    version: Annotated[int, Path(ge=1)],
    principal: Viewer,
    services: Svc,
) -> RevisionOut:
    """One saved version with its document."""
    revision = await _workflows(services).revision(
        workflow_id, version, namespaces=principal.namespaces
    )
    return _revision_out(revision)


@router.post(
    "/{workflow_id}/revisions/{version}/restore",
    response_model=WorkflowOut,
    summary="Restore a revision as a new version",
    responses=_with_etag(200, 404, 409, 412),
)
async def restore_revision(
    workflow_id: WorkflowRef,
    version: Annotated[int, Path(ge=1)],
    response: Response,
    principal: Editor,
    services: Svc,
    if_match: IfMatch = None,
) -> WorkflowOut:
    """Save the document of ``version`` as the next version (history is kept)."""
    wf = await _workflows(services).restore(
        workflow_id,
        version,
        expected_version=parse_if_match(if_match),
        namespaces=principal.namespaces,
        restored_by=principal.name,
    )
    response.headers["ETag"] = etag(wf.version)
    return workflow_out(wf)


def run_request_hash(workflow_id: str, body: WorkflowRunBody) -> str:
    """A stable hash of what a dispatch asks for (the idempotency key left out)."""
    data = {"workflowId": workflow_id, "input": body.input, "runId": body.run_id}
    canonical = json.dumps(data, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


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
    workflow_id: WorkflowRef,
    response: Response,
    principal: Executor,
    services: Svc,
    body: WorkflowRunBody | None = None,
    idempotency_key: Annotated[str | None, Header(alias="Idempotency-Key", max_length=255)] = None,
) -> DispatchResult:
    """Start a run of the workflow's current version.

    The same ``Idempotency-Key`` (header or ``idempotencyKey``) with the same body returns
    the same run (200); with another body it is 422 ``idempotency_key_reused``.
    """
    body = body or WorkflowRunBody()
    if idempotency_key and body.idempotency_key and idempotency_key != body.idempotency_key:
        raise InvalidInput("the Idempotency-Key header and idempotencyKey differ")
    result = await _workflows(services).start_run(
        workflow_id,
        body.input,
        namespaces=principal.namespaces,
        idempotency_key=idempotency_key or body.idempotency_key,
        request_hash=run_request_hash(workflow_id, body),
        run_id=body.run_id,
        triggered_by=principal.name,
    )
    response.status_code = 201 if result.created else 200
    return DispatchResult(**run_model(result.run).model_dump(), created=result.created)
