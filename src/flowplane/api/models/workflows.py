"""Wire models of ``/v1/workflows``: bodies in and out, the document schema, ETags.

Workflows use camelCase on the wire; the EditOps result uses the snake_case keys of
DESIGN.md. The document schema is the model's own, inlined (OpenAPI tools handle it better).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, WithJsonSchema
from pydantic.alias_generators import to_camel

from flowplane.model.document import Workflow
from flowplane.model.edits import OPS, SkipCode
from flowplane.services.workflows import (
    ANY_VERSION,
    ExpectedVersion,
    PatchOutcome,
    Revision,
    StoredWorkflow,
)

MAX_OPS = 1000
JSON_TYPES = ("application/json",)
YAML_TYPES = ("application/yaml", "text/yaml", "application/x-yaml", "text/x-yaml")


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
DocumentJson = Annotated[dict[str, Any], WithJsonSchema(DOCUMENT_SCHEMA)]


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
    warnings: list[ValidationErrorOut] = Field(
        default_factory=list,
        description="Problems that do not make it invalid: a credential it uses that is not "
        "stored yet (`credential_missing`; its runs would fail).",
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
        default=None,
        min_length=1,  # an empty key was stored as one: its second use was a 503
        max_length=255,
        description="Same as the Idempotency-Key header.",
    )
    run_id: str | None = Field(
        default=None, max_length=64, pattern=r"^[A-Za-z0-9_.:-]+$", description="Own run id."
    )


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


def revision_out(rev: Revision) -> RevisionOut:
    """The wire form of a revision."""
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


def patch_out(outcome: PatchOutcome) -> PatchOut:
    """The wire form of an EditOps outcome."""
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


def run_request_hash(workflow_id: str, body: WorkflowRunBody) -> str:
    """A stable hash of what a dispatch asks for (the idempotency key left out)."""
    data = {"workflowId": workflow_id, "input": body.input, "runId": body.run_id}
    canonical = json.dumps(data, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()
