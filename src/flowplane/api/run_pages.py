"""Wire views of a big run's node runs: the capped detail and the pages of node runs.

``GET /v1/runs/{id}`` of a run with more node runs than ``FLOWPLANE_MAX_RUN_DETAIL_NODES``
lists the first ones, with the run's summary over all of them, ``nodeRunsTotal`` and
``nodesNextCursor``; ``GET /v1/runs/{id}/nodes`` pages through all of them
(:meth:`flowplane.services.run_reads.RunReader.node_page`).
"""

from __future__ import annotations

from collections.abc import Callable

from flowplane.client.models import Attempt, NodePage, NodeState, RunDetail
from flowplane.services.paging import Page
from flowplane.services.run_nodes import CappedSnapshot, NodeRun, node_level_counts
from flowplane.services.run_reads import duration_ms
from flowplane.services.runs import Row
from flowplane.status import TERMINAL_NODE

__all__ = ["CAPPED_FIELDS", "capped_detail", "node_page"]

CAPPED_FIELDS: set[str] = {"node_runs_total", "nodes_next_cursor"}
"""The fields of a run detail that only a capped detail carries."""


def capped_detail(
    snapshot: CappedSnapshot, describe: Callable[[Row, list[Row], list[Row]], RunDetail]
) -> RunDetail:
    """The detail of a capped snapshot: ``describe`` of its first node runs, with the
    summary and counts over all of them, ``nodeRunsTotal`` and ``nodesNextCursor``."""
    detail = describe(snapshot.run, snapshot.nodes, snapshot.attempts)
    summary, total, executed = node_level_counts(snapshot.statuses)
    detail.summary, detail.nodes_total, detail.nodes_executed = summary, total, executed
    detail.node_runs_total = snapshot.node_runs_total
    detail.nodes_next_cursor = snapshot.next_cursor
    return detail


def _attempt(row: Row) -> Attempt:
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


def _node_state(node: NodeRun) -> NodeState:
    # The same shape as the entries of the detail's ``nodes`` (run_views.describe); a test
    # pins that both list the same states.
    row = node.row
    return NodeState(
        node_id=row["node_id"],
        iteration=row["iteration"],
        state=row["status"],
        attempt=row["attempt"],
        attempts=[_attempt(a) for a in node.attempts],
        output=row.get("output"),
        error=row.get("error"),
        wait=row.get("wait"),
        started_at_ms=row.get("started_at_ms"),
        finished_at_ms=row.get("finished_at_ms"),
        duration_ms=duration_ms(
            row.get("started_at_ms"),
            row.get("finished_at_ms"),
            row["status"] not in TERMINAL_NODE,
        ),
    )


def node_page(page: Page[NodeRun]) -> NodePage:
    """The wire model of a page of :meth:`RunReader.node_page`."""
    return NodePage(items=[_node_state(n) for n in page.items], next_cursor=page.next_cursor)
