"""Reporting on an edited document: its validation errors and the summary paragraph."""

from __future__ import annotations

import json
from typing import Any

from flowplane.errors import WorkflowInvalid
from flowplane.model.edits.editor import Editor
from flowplane.model.edits.results import AppliedItem, SkippedItem
from flowplane.model.graph import Catalog, ValidationIssue, validate_workflow
from flowplane.model.yaml import parse_workflow

__all__ = ["MAX_LISTED", "summary", "validate"]

MAX_LISTED = 10
"""How many applied ops, skips and errors the summary spells out before "and N more"."""


def _op_json(**values: Any) -> str:
    return json.dumps(values, separators=(", ", ": "))


def _issue_dict(issue: ValidationIssue) -> dict[str, Any]:
    return {
        "node_id": issue.node_id,
        "node_type": issue.node_type,
        "field": issue.field,
        "value": issue.value,
        "error": issue.error,
        "code": issue.code,
    }


def validate(doc: dict[str, Any], catalog: Catalog | None) -> tuple[list[dict[str, Any]], bool]:
    """Return the validation errors of ``doc`` and whether it parsed as a workflow."""
    try:
        wf = parse_workflow(doc)
    except WorkflowInvalid as exc:
        types = {n.get("id"): n.get("type") for n in doc.get("nodes") or [] if isinstance(n, dict)}
        errors = [
            {
                "node_id": err.get("node_id"),
                "node_type": types.get(err.get("node_id")),
                "field": err.get("field") or err.get("path") or None,
                "value": None,
                "error": err.get("error", ""),
                "code": "invalid_document",
            }
            for err in exc.extra.get("errors", [])
        ]
        return errors, False
    return [_issue_dict(issue) for issue in validate_workflow(wf, catalog)], True


def _hint(error: dict[str, Any], editor: Editor) -> str:
    """An actionable next step for one validation error ('' when there is none)."""
    code, node_id, field_ = error.get("code"), error.get("node_id"), error.get("field") or ""
    param = field_.removeprefix("params.").split(".")[0].split("[")[0]
    if code == "not_upstream":
        ref = str(error["value"])
        if node_id is not None and editor.path(ref, node_id) is not None:
            return (
                f"{ref!r} depends on {node_id!r} and runs after it, so {node_id!r} cannot read "
                f"its output: reverse that dependency or drop the reference"
            )
        return "fix: " + _op_json(op="connect", node_id=ref, target_node_id=node_id)
    if code == "missing_param":
        return "fix: " + _op_json(op="edit", node_id=node_id, params={param: "..."})
    if code == "unknown_param":
        return "fix: remove it with " + _op_json(op="edit", node_id=node_id, params={param: None})
    if code == "workflow_empty":
        return "fix: " + _op_json(op="add", node_id="...", type="...", params={})
    if code == "unknown_type":
        return 'fix: an edit op with a registered "type"'
    if code in ("unknown_need", "self_need"):
        return 'fix: an edit op with the right "needs"'
    if code == "cycle":
        return "fix: disconnect one edge of the cycle"
    if code == "unknown_node_reference":
        return "fix: reference an existing node, or add the missing one"
    if code == "undeclared_output":
        return "fix: read one of the declared output fields"
    return ""


def _listed(items: list[str]) -> str:
    shown = "; ".join(items[:MAX_LISTED])
    if len(items) > MAX_LISTED:
        shown += f"; and {len(items) - MAX_LISTED} more"
    return shown


def summary(
    total: int,
    applied: list[AppliedItem],
    skipped: list[SkippedItem],
    errors: list[dict[str, Any]],
    editor: Editor,
    *,
    parsed: bool,
) -> str:
    """The summary paragraph: what applied, what was skipped and why, what is invalid."""
    parts: list[str] = []
    if total == 0:
        parts.append("No operations were given.")
    elif applied:
        described = [f"#{a.index} {a.description}" for a in applied]
        parts.append(f"Applied {len(applied)} of {total} operation(s): {_listed(described)}.")
    else:
        parts.append(f"None of the {total} operation(s) applied; the workflow is unchanged.")
    if editor.materialised:
        parts.append(
            "The workflow's listed-order edges were first written out as explicit needs, "
            "so its execution order is unchanged."
        )
    if skipped:
        described = [
            f"#{s.index} {s.op or 'op'}"
            + (f" {s.node_id!r}" if s.node_id else "")
            + f" [{s.reason_code}]: {s.reason}"
            for s in skipped
        ]
        parts.append(f"Skipped {len(skipped)}: {_listed(described)}.")
    if errors:
        described = []
        for error in errors:
            hint = _hint(error, editor)
            described.append(error["error"] + (f" ({hint})" if hint else ""))
        parts.append(
            f"The resulting workflow has {len(errors)} validation error(s) to fix: "
            f"{_listed(described)}."
        )
        if not parsed:
            parts.append("It is not a structurally valid workflow, so it cannot be saved.")
    else:
        parts.append("The resulting workflow is valid.")
    return " ".join(parts)
