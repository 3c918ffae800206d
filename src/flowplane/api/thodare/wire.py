"""@thodare/api's wire format and Flowplane's, translated both ways (no rules here).

thodare's EditOps name a node a *block* (``operation_type``, ``block_id``,
``target_block_id``); its workflows are ``{blocks, connections}``; its templates read
``{{trigger.x}}`` (the run input) and ``{{block.field}}`` (a block's output); its runs
have a ``state``. Each function here maps one of those onto Flowplane's words and back.
"""

from __future__ import annotations

import datetime as dt
import itertools
import re
from collections.abc import Mapping
from typing import Any

from flowplane.model.edits import OPS, PatchResult, SkippedItem
from flowplane.services.run_reads import LogEntry, RunSnapshot
from flowplane.services.workflows import StoredWorkflow
from flowplane.status import RunStatus

__all__ = [
    "OPERATION_TYPES",
    "TRIGGER_PREFIX",
    "iso",
    "log_item",
    "patch_answer",
    "run_state",
    "run_view",
    "translate_ops",
    "trigger_manifest",
    "trigger_summary",
    "workflow_answer",
    "workflow_view",
]

OPERATION_TYPES = ("add", "edit", "delete", "connect", "disconnect")
"""thodare's ``operation_type`` values; each has a Flowplane op of the same name (and
Flowplane's ``rename`` and ``set`` are accepted under ``operation_type`` too)."""
TRIGGER_PREFIX = "trigger_"
"""thodare's entry blocks (``trigger_webhook``, ...): the node whose output is the input."""
TRIGGER_NODE_TYPE = "util.set"
TRIGGER_OUTPUT = "{{ input }}"
_CONTEXT_ROOTS = frozenset({"input", "nodes", "secrets", "run", "workflow", "item", "index"})
_REFERENCE = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_-]*)((?:\.[A-Za-z0-9_-]+)*)\s*\}\}")
_SKIP_CODES = {
    "node_already_exists": "block_already_exists",
    "node_type_not_registered": "block_type_not_registered",
    "node_not_found": "block_not_found",
}
_STATES: dict[str, str] = {
    "queued": "pending",
    "running": "running",
    "waiting-approval": "sleeping",
    "waiting-event": "sleeping",
    "waiting-timer": "sleeping",
    "finished": "completed",
    "failed": "failed",
    "timed-out": "failed",
    "cancelled": "canceled",
}


# --- EditOps ---------------------------------------------------------------------------


def _template(text: str) -> str:
    """``{{trigger.x}}`` -> ``{{ input.x }}``; ``{{blk.f}}`` -> ``{{ nodes.blk.output.f }}``."""

    def swap(match: re.Match[str]) -> str:
        head, rest = match.group(1), match.group(2)
        if head == "trigger":
            return "{{ input" + rest + " }}"
        if head in _CONTEXT_ROOTS:
            return match.group(0)
        return "{{ nodes." + head + ".output" + rest + " }}"

    return _REFERENCE.sub(swap, text)


def _params(value: Any) -> Any:
    """thodare params with every template reference in Flowplane's words."""
    if isinstance(value, str):
        return _template(value)
    if isinstance(value, list):
        return [_params(v) for v in value]
    if isinstance(value, dict):
        return {k: _params(v) for k, v in value.items()}
    return value


def _one_op(op: Any) -> tuple[dict[str, Any] | Any, str | None]:
    """One thodare op as one Flowplane op, and the reason to give if Flowplane refuses it.

    An op written with Flowplane's ``op`` key passes unchanged (the summary's fix hints
    are written that way). Anything Flowplane will skip as ``invalid_op`` gets a reason in
    thodare's words (the second value).
    """
    if not isinstance(op, dict):
        return op, None
    if "operation_type" not in op and "op" in op:
        return op, None
    kind = op.get("operation_type")
    allowed = ", ".join(OPS)
    if kind not in OPS:  # thodare's five, and Flowplane's rename and set under this key
        reason = (
            f"unknown operation_type {kind!r}; operation_type is one of {allowed}"
            if kind is not None
            else f"the op has no operation_type; give one of {allowed}"
        )
        # Not an op Flowplane has: it skips it as invalid_op, with this reason instead.
        return {"op": kind if isinstance(kind, str) else None}, reason
    out: dict[str, Any] = {"op": kind}
    rename = {"block_id": "node_id", "target_block_id": "target_node_id"}
    for key, value in op.items():
        if key in ("operation_type", "op"):
            continue
        out[rename.get(str(key), str(key))] = _params(value) if key == "params" else value
    if kind == "add":
        # Only connections make edges in thodare: a new block is a root until connected
        # (explicit needs, not Flowplane's listed order).
        out.setdefault("needs", [])
    if kind == "add" and isinstance(op.get("type"), str) and op["type"].startswith(TRIGGER_PREFIX):
        # A trigger block is the workflow's entry: its output is what started the run.
        out["type"] = TRIGGER_NODE_TYPE
        out["params"] = {"value": TRIGGER_OUTPUT}
        out.setdefault("description", f"{op['type']}: the run input (a thodare trigger block)")
    edge_op = kind in ("connect", "disconnect")
    extra = sorted(set(out) - {"op", "node_id", "target_node_id"}) if edge_op else []
    if extra:
        return out, (
            f"{kind} takes block_id and target_block_id only; {', '.join(extra)} "
            "(source_handle, condition) are not supported: put a condition on the target "
            'block with {"op": "edit", "node_id": "<target>", "when": "{{ ... }}"}'
        )
    return out, None


def translate_ops(ops: list[Any]) -> tuple[list[Any], dict[int, str]]:
    """thodare ops -> Flowplane ops (one for one, same indexes) and thodare reasons by index."""
    translated: list[Any] = []
    reasons: dict[int, str] = {}
    for index, op in enumerate(ops):
        out, reason = _one_op(op)
        translated.append(out)
        if reason is not None:
            reasons[index] = reason
    return translated, reasons


def _skip(item: SkippedItem, original: Any, reasons: Mapping[int, str]) -> dict[str, Any]:
    op = original if isinstance(original, dict) else {}
    reason = (
        reasons.get(item.index, item.reason) if item.reason_code == "invalid_op" else item.reason
    )
    details = dict(item.details)
    if item.index in reasons and "allowed_ops" in details:
        details["allowed_operation_types"] = list(OPS)
    return {
        "index": item.index,
        "operation_type": op.get("operation_type", item.op if item.index not in reasons else None),
        "block_id": op.get("block_id", item.node_id),
        "reason_code": _SKIP_CODES.get(item.reason_code, item.reason_code),
        "reason": reason,
        "details": details,
        "code": item.reason_code,
    }


def _trigger_notes(result: PatchResult, ops: list[Any]) -> list[str]:
    """What a trigger block with a ``path`` asks for, said where it applied."""
    notes: list[str] = []
    for item in result.applied:
        op = ops[item.index] if item.index < len(ops) else None
        if not (isinstance(op, dict) and str(op.get("type", "")).startswith(TRIGGER_PREFIX)):
            continue
        params = op.get("params") if isinstance(op.get("params"), dict) else {}
        path = params.get("path") if isinstance(params, dict) else None
        notes.append(
            f"{op.get('block_id')!r} ({op['type']}) is the workflow's entry: its output is the "
            "run input, so blocks after it read {{trigger.x}}."
            + (
                f" A webhook at {path!r} is a Flowplane trigger: create it with POST "
                f'/v1/triggers {{"key": "{str(path).strip("/")}", "workflowId": ...}}, '
                f"then POST /api/webhooks/{str(path).strip('/')} starts this workflow."
                if isinstance(path, str) and path.strip("/")
                else ""
            )
        )
    return notes


def patch_answer(
    result: PatchResult, stored: StoredWorkflow, ops: list[Any], reasons: Mapping[int, str]
) -> dict[str, Any]:
    """The answer of ``POST /api/workflows/:id/operations`` (thodare's keys first)."""
    summary = result.summary
    for item in result.skipped_items:
        if item.index in reasons and item.reason_code == "invalid_op":
            summary = summary.replace(item.reason, reasons[item.index])
    notes = _trigger_notes(result, ops)
    if notes:
        summary = " ".join([summary, *notes])
    errors = [
        {
            "block_id": e.get("node_id"),
            "block_type": e.get("node_type"),
            "field": e.get("field"),
            "value": e.get("value"),
            "error": e.get("error"),
            "code": e.get("code"),
        }
        for e in result.validation_errors
    ]
    return {
        "ok": result.ok,
        "version": stored.version,
        "workflow": workflow_view(stored, result.workflow),
        "validation_errors": errors,
        "skipped_items": [
            _skip(s, ops[s.index] if s.index < len(ops) else None, reasons)
            for s in result.skipped_items
        ],
        "summary": summary,
        "applied": [a.to_dict() for a in result.applied],
    }


# --- the catalogue ---------------------------------------------------------------------


def trigger_manifest(type_: str = "trigger_webhook") -> dict[str, Any]:
    """The catalogue entry of a thodare trigger block (what ``add`` makes of it)."""
    return {
        "type": type_,
        "name": "Webhook Trigger" if type_ == "trigger_webhook" else type_,
        "category": "trigger",
        "description": "Workflow entrypoint: its output is the run input (a webhook's body, "
        "a schedule's payload, the input of POST /api/workflows/:id/run). Blocks after it "
        "read {{trigger.x}}. On Flowplane it is a util.set node of {{ input }}.",
        "kind": "trigger",
        "inputSchema": {
            "type": "object",
            "properties": {
                "path": {
                    "type": "string",
                    "description": "The webhook key to create as a Flowplane trigger "
                    "(POST /v1/triggers); the block itself keeps no params.",
                }
            },
        },
        "outputSchema": {"type": "object", "description": "The run input."},
        "secrets": [],
        "examples": [{}],
    }


def trigger_summary() -> dict[str, Any]:
    """:func:`trigger_manifest` in ``?detail=summary`` form."""
    full = trigger_manifest()
    return {k: full[k] for k in ("type", "name", "category", "description")}


# --- workflows -------------------------------------------------------------------------


def _connections(nodes: list[dict[str, Any]]) -> list[dict[str, str]]:
    if all(n.get("needs") is None for n in nodes):
        ids = [str(n.get("id")) for n in nodes]
        return [{"source": a, "target": b} for a, b in itertools.pairwise(ids)]
    out: list[dict[str, str]] = []
    for node in nodes:
        needs = node.get("needs")
        for need in [needs] if isinstance(needs, str) else needs or []:
            out.append({"source": str(need), "target": str(node.get("id"))})
    return out


def workflow_view(stored: StoredWorkflow, document: dict[str, Any] | None = None) -> dict[str, Any]:
    """A stored workflow as thodare's ``SerializedWorkflow`` (the document rides along)."""
    doc = document if document is not None else stored.document
    nodes = [n for n in doc.get("nodes") or [] if isinstance(n, dict)]
    blocks = [
        {
            "id": n.get("id"),
            "type": n.get("type"),
            **({"name": n["name"]} if n.get("name") else {}),
            "enabled": True,
            "params": n.get("params") or {},
        }
        for n in nodes
    ]
    metadata = {"name": doc.get("name", stored.name), "description": doc.get("description", "")}
    return {
        "version": "1.0.0",
        "metadata": metadata,
        "blocks": blocks,
        "connections": _connections(nodes),
    }


def workflow_answer(stored: StoredWorkflow) -> dict[str, Any]:
    """``{id, workflow, version}`` plus Flowplane's name, namespace and document."""
    return {
        "id": stored.id,
        "workflow": workflow_view(stored),
        "version": stored.version,
        "name": stored.name,
        "namespace": stored.namespace,
        "document": stored.document,
    }


# --- runs ------------------------------------------------------------------------------


def run_state(status: RunStatus | str) -> str:
    """A Flowplane run status as a thodare run state."""
    return _STATES.get(str(getattr(status, "value", status)), "running")


def iso(ms: int | None) -> str | None:
    """Milliseconds as an ISO-8601 UTC instant (``None`` stays ``None``)."""
    if ms is None:
        return None
    return dt.datetime.fromtimestamp(ms / 1000, dt.UTC).isoformat().replace("+00:00", "Z")


def _outputs(snapshot: RunSnapshot) -> dict[str, Any]:
    by_node: dict[str, list[tuple[int, Any]]] = {}
    for node in snapshot.nodes:
        if str(getattr(node.status, "value", node.status)) == "finished":
            by_node.setdefault(node.node_id, []).append((node.iteration, node.output))
    out: dict[str, Any] = {}
    for node_id, items in by_node.items():
        items.sort(key=lambda i: i[0])
        out[node_id] = items[0][1] if len(items) == 1 else [o for _, o in items]
    return out


def run_view(snapshot: RunSnapshot) -> dict[str, Any]:
    """thodare's run description ``{id, state, output?, error?, ...}`` (+ Flowplane's)."""
    run = snapshot.run
    state = run_state(run.status)
    view: dict[str, Any] = {"id": run.id, "state": state}
    if state == "completed":
        view["output"] = {"outputs": _outputs(snapshot)}
    if run.error:
        error = run.error
        view["error"] = error.get("message", str(error)) if isinstance(error, dict) else str(error)
    for key, ms in (("startedAt", run.started_at_ms), ("endedAt", run.finished_at_ms)):
        if ms is not None:
            view[key] = iso(ms)
    view["attempts"] = len(snapshot.attempts)
    view.update(
        status=str(getattr(run.status, "value", run.status)),
        workflowId=run.workflow_id,
        workflowVersion=run.workflow_version,
        outputs=_outputs(snapshot),
    )
    return view


def log_item(entry: LogEntry, run_id: str) -> dict[str, Any]:
    """One item of ``GET /api/runs/:id/logs``: a step attempt (thodare's) or a log line."""
    record: Any = entry.record
    if entry.kind == "attempt":
        return {
            "id": f"attempt-{record.id}",
            "workflowRunId": run_id,
            "kind": "attempt",
            "name": record.node_id,
            "stepName": record.node_id,
            "status": record.status,
            "attempt": record.attempt,
            "iteration": record.iteration,
            "error": record.error,
            "startedAt": iso(record.started_at_ms),
            "finishedAt": iso(record.finished_at_ms),
        }
    return {
        "id": f"log-{record.id}",
        "workflowRunId": run_id,
        "kind": "log",
        "name": record.node_id,
        "stepName": record.node_id,
        "level": record.level,
        "message": record.message,
        "attempt": record.attempt,
        "iteration": record.iteration,
        "createdAt": iso(record.ts_ms),
    }
