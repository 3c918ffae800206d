"""``control.approval``: a person approves or denies a node (human in the loop)."""

from __future__ import annotations

from typing import Any

from flowplane.connectors.base import NodeContext, WaitForApproval, connector
from flowplane.errors import ConnectorError


@connector(
    "control.approval",
    name="Approval",
    category="control",
    description=(
        "Pause the node (durably, in waiting-approval) until a person approves or denies it "
        "(POST /v1/runs/{id}/nodes/{nodeId}/approve|deny)."
    ),
    kind="control",
    input_schema={
        "type": "object",
        "required": ["title"],
        "additionalProperties": False,
        "properties": {
            "title": {
                "type": "string",
                "minLength": 1,
                "maxLength": 500,
                "description": "The question shown to the approver.",
            },
            "description": {
                "type": "string",
                "maxLength": 10000,
                "description": "Details for the approver (Markdown).",
            },
            "on_deny": {
                "type": "string",
                "enum": ["fail", "continue"],
                "default": "fail",
                "description": (
                    "fail: a denial fails the node; continue: the node finishes with "
                    "approved=false and the run goes on."
                ),
            },
        },
    },
    output_schema={
        "type": "object",
        "properties": {
            "approved": {"type": "boolean", "description": "Whether it was approved."},
            "note": {"type": ["string", "null"], "description": "The approver's note."},
        },
    },
    examples=[
        {"title": "Refund order {{ input.order_id }}?"},
        {
            "title": "Deploy to production?",
            "description": "Build {{ nodes.build.output.version }} passed all checks.",
            "on_deny": "continue",
        },
    ],
)
async def approval(params: dict[str, Any], ctx: NodeContext) -> WaitForApproval:
    """Return an approval wait."""
    title = params.get("title")
    if not isinstance(title, str) or not title.strip():
        raise ConnectorError("title must be a non-empty string", retryable=False)
    on_deny = params.get("on_deny") or "fail"
    if on_deny not in ("fail", "continue"):
        raise ConnectorError(f"on_deny must be fail or continue, not {on_deny!r}", retryable=False)
    return WaitForApproval(
        title=title,
        description=str(params.get("description") or ""),
        on_deny="continue" if on_deny == "continue" else "fail",
    )
