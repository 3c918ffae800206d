"""Views of what the run services return as wire models: runs, details, approvals, logs.

Pure functions from :mod:`flowplane.services.runs` results to :mod:`flowplane.client.models`,
shared by every surface that answers in Flowplane's wire format (REST, RPC, serve mode), so
the shapes are written once.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from flowplane.api.run_pages import CAPPED_FIELDS, capped_detail
from flowplane.client.models import (
    Approval,
    Attempt,
    Frame,
    LogItem,
    LogPage,
    NodeState,
    Run,
    RunDetail,
    RunDiff,
    SignalResult,
)
from flowplane.services.paging import Page
from flowplane.services.run_nodes import CappedSnapshot
from flowplane.services.runs import LogEntry, Row, RunSnapshot, duration_ms
from flowplane.status import TERMINAL_NODE, TERMINAL_RUN

MEDIA_TYPE = "application/json"
"""The media type of a rendered run detail."""


def iso(ms: int | None) -> str | None:
    """An epoch-milliseconds time as ISO-8601 UTC (``...Z``)."""
    if ms is None:
        return None
    return dt.datetime.fromtimestamp(ms / 1000, dt.UTC).isoformat().replace("+00:00", "Z")


def run_fields(row: Row) -> dict[str, Any]:
    """The fields of a run row shared by every run model."""
    return {
        "run_id": row["id"],
        "namespace": row["namespace"],
        "workflow_id": row.get("workflow_id"),
        "workflow_name": row["workflow_name"],
        "workflow_version": row.get("workflow_version"),
        "status": row["status"],
        "error": row.get("error"),
        "parent_run_id": row.get("parent_run_id"),
        "forked_from": row.get("forked_from"),
        "trigger": row.get("trigger"),
        "triggered_by": row.get("triggered_by"),
        "created_at_ms": row.get("created_at_ms"),
        "started_at_ms": row.get("started_at_ms"),
        "finished_at_ms": row.get("finished_at_ms"),
        "created_at": iso(row.get("created_at_ms")),
        "finished_at": iso(row.get("finished_at_ms")),
        "duration_ms": duration_ms(
            row.get("started_at_ms"),
            row.get("finished_at_ms"),
            row["status"] not in TERMINAL_RUN,
        ),
    }


def run_model(row: Row) -> Run:
    """Build the list model of a run row."""
    return Run(**run_fields(row))


def _attempt_model(row: Row) -> Attempt:
    return Attempt(
        node_id=row["node_id"],
        iteration=row["iteration"],
        attempt=row["attempt"],
        status=row["status"],
        worker=row.get("worker"),
        started_at_ms=row.get("started_at_ms"),
        finished_at_ms=row.get("finished_at_ms"),
        duration_ms=duration_ms(row.get("started_at_ms"), row.get("finished_at_ms"), False),
        error=row.get("error"),
    )


def describe(run: Row, nodes: list[Row], attempts: list[Row]) -> RunDetail:
    """Build ``GET /v1/runs/{id}``: the run, a per-state summary and every node run.

    ``summary``, ``nodesTotal`` and ``nodesExecuted`` count node-level rows: a plain node's
    row, or a ``foreach`` node's iteration -1 row (its items are listed in ``nodes`` only).
    """
    by_node: dict[tuple[str, int], list[Attempt]] = {}
    for row in attempts:
        by_node.setdefault((row["node_id"], row["iteration"]), []).append(_attempt_model(row))
    foreach_nodes = {row["node_id"] for row in nodes if row["iteration"] == -1}
    states: list[NodeState] = []
    summary: dict[str, int] = {}
    executed = 0
    total = 0
    for row in nodes:
        status = row["status"]
        states.append(
            NodeState(
                node_id=row["node_id"],
                iteration=row["iteration"],
                state=status,
                attempt=row["attempt"],
                attempts=by_node.get((row["node_id"], row["iteration"]), []),
                output=row.get("output"),
                error=row.get("error"),
                wait=row.get("wait"),
                started_at_ms=row.get("started_at_ms"),
                finished_at_ms=row.get("finished_at_ms"),
                duration_ms=duration_ms(
                    row.get("started_at_ms"),
                    row.get("finished_at_ms"),
                    status not in TERMINAL_NODE,
                ),
            )
        )
        node_level = row["iteration"] == -1 or row["node_id"] not in foreach_nodes
        if node_level:
            total += 1
            summary[status] = summary.get(status, 0) + 1
            if status in ("finished", "failed"):
                executed += 1
    return RunDetail(
        **run_fields(run),
        input=run.get("input"),
        output=run.get("output"),
        summary=summary,
        nodes=states,
        nodes_total=total,
        nodes_executed=executed,
    )


def approval_model(row: Row) -> Approval:
    """Build the wire model of an approval row."""
    return Approval(
        id=row["id"],
        run_id=row["run_id"],
        namespace=row["namespace"],
        node_id=row["node_id"],
        iteration=row["iteration"],
        title=row["title"],
        description=row.get("description"),
        status=row["status"],
        requested_at_ms=row["requested_at_ms"],
        decided_at_ms=row.get("decided_at_ms"),
        decided_by=row.get("decided_by"),
        note=row.get("note"),
        waiting_ms=int(row.get("waiting_ms") or 0),
        workflow_name=row.get("workflow_name"),
        run_status=row.get("run_status"),
        label=row["node_id"],
        request_title=row["title"],
    )


def _log_item(row: Row) -> LogItem:
    return LogItem(
        kind="log",
        node_id=row["node_id"],
        iteration=row["iteration"],
        attempt=row["attempt"],
        ts_ms=row["ts_ms"],
        level=row["level"],
        message=row["message"],
    )


def _attempt_item(row: Row) -> LogItem:
    return LogItem(
        kind="attempt",
        node_id=row["node_id"],
        iteration=row["iteration"],
        attempt=row["attempt"],
        ts_ms=row["finished_at_ms"],
        status=row["status"],
        worker=row.get("worker"),
        started_at_ms=row.get("started_at_ms"),
        error=row.get("error"),
    )


def log_page(page: Page[LogEntry]) -> LogPage:
    """The wire model of a page of :meth:`RunService.log_page`."""
    items = [
        _log_item(entry.row) if entry.kind == "log" else _attempt_item(entry.row)
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
