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
from flowplane.services.runs import AttemptRecord, NodeRunRecord, RunRecord
from flowplane.status import TERMINAL_NODE

__all__ = ["CAPPED_FIELDS", "attempt_model", "capped_detail", "node_page", "node_state"]

CAPPED_FIELDS: set[str] = {"node_runs_total", "nodes_next_cursor"}
"""The fields of a run detail that only a capped detail carries."""


def capped_detail(
    snapshot: CappedSnapshot,
    describe: Callable[[RunRecord, list[NodeRunRecord], list[AttemptRecord]], RunDetail],
) -> RunDetail:
    """The detail of a capped snapshot: ``describe`` of its first node runs, with the
    summary and counts over all of them, ``nodeRunsTotal`` and ``nodesNextCursor``."""
    detail = describe(snapshot.run, snapshot.nodes, snapshot.attempts)
    summary, total, executed = node_level_counts(snapshot.statuses)
    detail.summary, detail.nodes_total, detail.nodes_executed = summary, total, executed
    detail.node_runs_total = snapshot.node_runs_total
    detail.nodes_next_cursor = snapshot.next_cursor
    return detail


def attempt_model(attempt: AttemptRecord) -> Attempt:
    """The wire model of an attempt."""
    return Attempt(
        node_id=attempt.node_id,
        iteration=attempt.iteration,
        attempt=attempt.attempt,
        status=attempt.status,
        worker=attempt.worker,
        started_at_ms=attempt.started_at_ms,
        finished_at_ms=attempt.finished_at_ms,
        duration_ms=duration_ms(attempt.started_at_ms, attempt.finished_at_ms, False),
        error=attempt.error,
    )


def node_state(node: NodeRunRecord, attempts: list[Attempt]) -> NodeState:
    """The wire model of a node run (an entry of the detail's ``nodes`` and of a page)."""
    status = node.status.value
    running = status not in TERMINAL_NODE
    return NodeState(
        node_id=node.node_id,
        iteration=node.iteration,
        status=status,
        attempt=node.attempt,
        attempts=attempts,
        output=node.output,
        error=node.error,
        wait=node.wait,
        started_at_ms=node.started_at_ms,
        finished_at_ms=node.finished_at_ms,
        duration_ms=duration_ms(node.started_at_ms, node.finished_at_ms, running),
    )


def node_page(page: Page[NodeRun]) -> NodePage:
    """The wire model of a page of :meth:`RunReader.node_page`."""
    items = [node_state(n.node, [attempt_model(a) for a in n.attempts]) for n in page.items]
    return NodePage(items=items, next_cursor=page.next_cursor)
