"""Views of run rows as wire models: runs, node states, attempts, approvals and log pages.

Pure functions from store rows (``dict``) to :mod:`flowplane.client.models`, so the routes
stay thin and the shapes are tested once.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from flowplane.client.models import Approval, Attempt, LogItem, LogPage, NodeState, Run, RunDetail
from flowplane.errors import InvalidInput
from flowplane.ids import now_ms
from flowplane.store.tx import TERMINAL_NODE, TERMINAL_RUN, Row


def iso(ms: int | None) -> str | None:
    if ms is None:
        return None
    return dt.datetime.fromtimestamp(ms / 1000, dt.UTC).isoformat().replace("+00:00", "Z")


def duration_ms(started: int | None, finished: int | None, running: bool) -> int | None:
    if started is None:
        return None
    if finished is None:
        return max(0, now_ms() - started) if running else None
    return max(0, finished - started)


def run_fields(row: Row) -> dict[str, Any]:
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


def parse_log_cursor(value: str | None) -> tuple[int, int]:
    """Split a log cursor ``"<last log id>.<last attempt id>"`` (a bare number = log id)."""
    if not value:
        return 0, 0
    try:
        parts = [int(p) for p in value.split(".")]
    except ValueError:
        raise InvalidInput("after must be a cursor returned as nextCursor") from None
    if len(parts) == 1:
        return parts[0], 0
    if len(parts) != 2 or min(parts) < 0:
        raise InvalidInput("after must be a cursor returned as nextCursor")
    return parts[0], parts[1]


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


def log_page(
    logs: list[Row], attempts: list[Row], *, after: tuple[int, int], limit: int
) -> LogPage:
    """Merge log lines and attempts (each in id order, after the cursor) into one page.

    Items are taken in time order from the front of each list, so the next cursor is simply
    the last log id and the last attempt id taken: no item is skipped or repeated. ``logs``
    should hold up to ``limit + 1`` rows so that a further page is detected.
    """
    after_log, after_attempt = after
    items: list[LogItem] = []
    li = ai = 0
    while len(items) < limit and (li < len(logs) or ai < len(attempts)):
        take_log = ai >= len(attempts) or (
            li < len(logs) and logs[li]["ts_ms"] <= attempts[ai]["finished_at_ms"]
        )
        if take_log:
            after_log = logs[li]["id"]
            items.append(_log_item(logs[li]))
            li += 1
        else:
            after_attempt = attempts[ai]["id"]
            items.append(_attempt_item(attempts[ai]))
            ai += 1
    more = li < len(logs) or ai < len(attempts)
    return LogPage(items=items, next_cursor=f"{after_log}.{after_attempt}" if more else None)
