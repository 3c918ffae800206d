"""EditOps: apply a batch of small edits to a workflow document, keeping what works.

This is the engine of ``POST /v1/workflows/{id}/operations``, built for LLM agents: a batch
is never rejected as a whole. Each op either applies (in order, seeing the effects of the
ops before it) or is returned as a typed :class:`SkippedItem`; the resulting document is then
validated and every problem is listed with the node, field and value concerned. The
``summary`` paragraph says what applied, what was skipped and why, and how to fix what is
invalid, with the exact op to send where one exists.

Ops (``node_id`` is always the node the op is about)::

    {"op": "add", "node_id", "type", "params"?, "needs"?, "when"?, ...any node field}
    {"op": "edit", "node_id", "params"? (merged; a null value removes a key), "type"?, ...}
    {"op": "delete", "node_id"}                      # removes its edges
    {"op": "connect", "node_id", "target_node_id"}   # target now needs node_id
    {"op": "disconnect", "node_id", "target_node_id"}
    {"op": "rename", "node_id", "new_id"}            # rewrites needs and nodes.<id> references
    {"op": "set", "field", "value"}                  # workflow-level fields; null removes

Edges follow the document rule: when no node declares ``needs`` the nodes run in listed
order. An op that changes edges explicitly (``connect``, ``disconnect``, ``needs`` on
``add``/``edit``) first writes those implicit edges out as ``needs``, so the order the
workflow had is kept. ``add`` without ``needs`` appends the node: in a listed-order document
it runs last, in a document with explicit ``needs`` it is a root.

The package: ``ops`` (the op vocabulary and shape check), ``editor`` (what each op does to
the document), ``references`` (rewriting ``nodes.<id>`` on rename), ``report`` (validation
and the summary paragraph) and ``results`` (the records returned).
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

from flowplane.model.edits import report
from flowplane.model.edits.editor import Editor
from flowplane.model.edits.ops import OPS, check_shape
from flowplane.model.edits.references import rewrite_references
from flowplane.model.edits.results import (
    SKIP_CODES,
    AppliedItem,
    PatchResult,
    Skip,
    SkipCode,
    SkippedItem,
)
from flowplane.model.graph import Catalog

__all__ = [
    "OPS",
    "SKIP_CODES",
    "AppliedItem",
    "PatchResult",
    "SkipCode",
    "SkippedItem",
    "apply_ops",
    "rewrite_references",
]


def apply_ops(workflow_doc: dict[str, Any], ops: list[Any], catalog: Catalog | None) -> PatchResult:
    """Apply ``ops`` in order to a copy of ``workflow_doc``, skipping those that cannot apply.

    Args:
        workflow_doc: a workflow document (JSON form); not modified.
        ops: the EditOps (see the module docstring); anything else is skipped as
            ``invalid_op``.
        catalog: the connector catalog for type checks and validation (``None`` skips
            type and params checks).

    Returns:
        The edited document with what applied, what was skipped, its validation errors
        and a summary paragraph.
    """
    doc = copy.deepcopy(workflow_doc)
    editor = Editor(doc, catalog)
    handlers: dict[str, Callable[[dict[str, Any]], str]] = {
        "add": editor.add,
        "edit": editor.edit,
        "delete": editor.delete,
        "connect": editor.connect,
        "disconnect": editor.disconnect,
        "rename": editor.rename,
        "set": editor.set,
    }
    applied: list[AppliedItem] = []
    skipped: list[SkippedItem] = []
    for index, raw in enumerate(ops):
        name = raw.get("op") if isinstance(raw, dict) else None
        node_id = raw.get("node_id") if isinstance(raw, dict) else None
        try:
            name, op = check_shape(raw)
            description = handlers[name](op)
        except Skip as skip:
            skipped.append(
                SkippedItem(
                    index=index,
                    op=name if isinstance(name, str) else None,
                    node_id=node_id if isinstance(node_id, str) else None,
                    reason_code=skip.code,
                    reason=skip.reason,
                    details=skip.details,
                )
            )
            continue
        applied.append(AppliedItem(index, name, node_id, description))
    errors, parsed = report.validate(doc, catalog)
    summary = report.summary(len(ops), applied, skipped, errors, editor, parsed=parsed)
    return PatchResult(
        workflow=doc,
        applied=applied,
        skipped_items=skipped,
        validation_errors=errors,
        summary=summary,
        changed=doc != workflow_doc,
        parsed=parsed,
    )
