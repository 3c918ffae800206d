"""Views of what the run services return as wire models: runs, details, approvals, logs.

Pure functions from :mod:`flowplane.services.runs` results to :mod:`flowplane.client.models`,
shared by every surface that answers in Flowplane's wire format (REST, RPC, serve mode), so
the shapes are written once.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from flowplane.api.run_pages import CAPPED_FIELDS, attempt_model, capped_detail, node_state
from flowplane.client.models import (
    Approval,
    Attempt,
    Frame,
    LogItem,
    LogPage,
    Run,
    RunDetail,
    RunDiff,
    SignalResult,
)
from flowplane.services.paging import Page
from flowplane.services.run_nodes import CappedSnapshot, node_level_counts
from flowplane.services.runs import (
    ApprovalRecord,
    AttemptRecord,
    LogEntry,
    LogRecord,
    NodeRunRecord,
    RunRecord,
    RunSnapshot,
    duration_ms,
)
from flowplane.status import TERMINAL_RUN

MEDIA_TYPE = "application/json"
"""The media type of a rendered run detail."""


def iso(ms: int | None) -> str | None:
    """An epoch-milliseconds time as ISO-8601 UTC (``...Z``)."""
    if ms is None:
        return None
    return dt.datetime.fromtimestamp(ms / 1000, dt.UTC).isoformat().replace("+00:00", "Z")


def run_fields(run: RunRecord) -> dict[str, Any]:
    """The fields of a run shared by every run model."""
    status = run.status
    return {
        "run_id": run.id,
        "namespace": run.namespace,
        "workflow_id": run.workflow_id,
        "workflow_name": run.workflow_name,
        "workflow_version": run.workflow_version,
        "status": status.value,
        "error": run.error,
        "parent_run_id": run.parent_run_id,
        "forked_from": run.forked_from,
        "trigger": run.trigger,
        "triggered_by": run.triggered_by,
        "created_at_ms": run.created_at_ms,
        "started_at_ms": run.started_at_ms,
        "finished_at_ms": run.finished_at_ms,
        "created_at": iso(run.created_at_ms),
        "finished_at": iso(run.finished_at_ms),
        "duration_ms": duration_ms(
            run.started_at_ms, run.finished_at_ms, status not in TERMINAL_RUN
        ),
    }


def run_model(run: RunRecord) -> Run:
    """Build the list model of a run."""
    return Run(**run_fields(run))


def describe(
    run: RunRecord, nodes: list[NodeRunRecord], attempts: list[AttemptRecord]
) -> RunDetail:
    """Build ``GET /v1/runs/{id}``: the run, a per-state summary and every node run.

    ``summary``, ``nodesTotal`` and ``nodesExecuted`` count node-level rows: a plain node's
    row, or a ``foreach`` node's iteration -1 row (its items are listed in ``nodes`` only).
    """
    by_node: dict[tuple[str, int], list[Attempt]] = {}
    for attempt in attempts:
        by_node.setdefault((attempt.node_id, attempt.iteration), []).append(attempt_model(attempt))
    states = [node_state(node, by_node.get((node.node_id, node.iteration), [])) for node in nodes]
    summary, total, executed = node_level_counts(
        [(node.node_id, node.iteration, node.status.value) for node in nodes]
    )
    return RunDetail(
        **run_fields(run),
        input=run.input,
        output=run.output,
        summary=summary,
        nodes=states,
        nodes_total=total,
        nodes_executed=executed,
    )


def approval_model(approval: ApprovalRecord) -> Approval:
    """Build the wire model of an approval."""
    return Approval(
        id=approval.id,
        run_id=approval.run_id,
        namespace=approval.namespace,
        node_id=approval.node_id,
        iteration=approval.iteration,
        title=approval.title,
        description=approval.description,
        status=approval.status,
        requested_at_ms=approval.requested_at_ms,
        decided_at_ms=approval.decided_at_ms,
        decided_by=approval.decided_by,
        note=approval.note,
        waiting_ms=approval.waiting_ms,
        workflow_name=approval.workflow_name,
        run_status=None if approval.run_status is None else approval.run_status.value,
        label=approval.node_id,
        request_title=approval.title,
    )


def _log_item(line: LogRecord) -> LogItem:
    return LogItem(
        kind="log",
        node_id=line.node_id,
        iteration=line.iteration,
        attempt=line.attempt,
        ts_ms=line.ts_ms,
        level=line.level,
        message=line.message,
    )


def _attempt_item(attempt: AttemptRecord) -> LogItem:
    return LogItem(
        kind="attempt",
        node_id=attempt.node_id,
        iteration=attempt.iteration,
        attempt=attempt.attempt,
        ts_ms=attempt.finished_at_ms,
        status=attempt.status,
        worker=attempt.worker,
        started_at_ms=attempt.started_at_ms,
        error=attempt.error,
    )


def log_page(page: Page[LogEntry]) -> LogPage:
    """The wire model of a page of :meth:`RunService.log_page`."""
    items = [
        _log_item(entry.record)
        if isinstance(entry.record, LogRecord)
        else _attempt_item(entry.record)
        for entry in page.items
    ]
    return LogPage(items=items, next_cursor=page.next_cursor)


def render_detail(snapshot: RunSnapshot | CappedSnapshot) -> bytes:
    """The JSON body of ``GET /v1/runs/{id}`` for a snapshot (what the cache keeps).

    A capped snapshot adds ``nodeRunsTotal`` and ``nodesNextCursor``; other answers leave
    them out (unchanged bytes).
    """
    if isinstance(snapshot, CappedSnapshot):
        return capped_detail(snapshot, describe).model_dump_json(by_alias=True).encode()
    return describe(*snapshot).model_dump_json(by_alias=True, exclude=CAPPED_FIELDS).encode()


def frame_model(raw: dict[str, Any]) -> Frame:
    """The wire model of one frame of :meth:`RunService.frames`."""
    frame = Frame.model_validate(raw)
    frame.created_at_ms = frame.timestamp_ms
    return frame


def diff_model(raw: dict[str, Any]) -> RunDiff:
    """The wire model of :meth:`RunService.diff`'s result."""
    diff = RunDiff.model_validate(raw)
    diff.changed_nodes = sorted({n.node_id for n in diff.nodes if n.changed})
    return diff


def signal_result(run_id: str, name: str, result: dict[str, Any]) -> SignalResult:
    """The wire model of :meth:`RunService.signal`'s result."""
    return SignalResult(
        run_id=run_id,
        signal=name,
        delivered=bool(result.get("delivered")),
        node_id=result.get("nodeId"),
        iteration=result.get("iteration"),
    )
