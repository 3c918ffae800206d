"""A big run's node runs a page at a time, and the capped snapshot of its detail.

``GET /v1/runs/{id}`` lists at most ``FLOWPLANE_MAX_RUN_DETAIL_NODES`` node runs: a run with
more (a ``foreach`` of thousands of items) is read as a :class:`CappedSnapshot` (the first
node runs in full, the state columns of all of them for the summary, a count and the cursor
of the rest), and the rest is read with :func:`read_node_page`
(``GET /v1/runs/{id}/nodes``). A run within the limit is read and answered as before.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import NamedTuple

from flowplane.errors import InvalidInput
from flowplane.services.paging import Page, paginate
from flowplane.status import TERMINAL_NODE, TERMINAL_RUN
from flowplane.store import node_pages
from flowplane.store.records import AttemptRecord, NodeRunRecord, RunRecord
from flowplane.store.tx import Tx

__all__ = [
    "CappedSnapshot",
    "NodeRun",
    "node_level_counts",
    "parse_node_cursor",
    "read_node_page",
]


@dataclass(frozen=True)
class NodeRun:
    """One node run with its attempts."""

    node: NodeRunRecord
    attempts: list[AttemptRecord]


class CappedSnapshot(NamedTuple):
    """A run with more node runs than its detail lists, read in one transaction."""

    run: RunRecord
    nodes: list[NodeRunRecord]
    """The first node runs (by id)."""
    attempts: list[AttemptRecord]
    """The attempts of ``nodes``."""
    statuses: list[tuple[str, int, str]]
    """``(node_id, iteration, status)`` of every node run."""
    node_runs_total: int
    next_cursor: str | None
    unfinished_attempts: int

    @property
    def settled(self) -> bool:
        """Whether nothing but a user action can change the run any more."""
        return (
            self.run.status in TERMINAL_RUN
            and all(status in TERMINAL_NODE for _node, _iteration, status in self.statuses)
            and self.unfinished_attempts == 0
        )


def read_capped(tx: Tx, run: RunRecord, limit: int) -> CappedSnapshot | None:
    """The capped snapshot of ``run``, or ``None`` when it has at most ``limit`` node runs."""
    total = node_pages.node_run_count(tx, run.id)
    if total <= limit:
        return None
    nodes = node_pages.node_rows_after(tx, run.id, 0, limit)
    attempts = node_pages.attempts_of_nodes(tx, run.id, nodes)
    return CappedSnapshot(
        run=run,
        nodes=nodes,
        attempts=attempts,
        statuses=node_pages.node_statuses(tx, run.id),
        node_runs_total=total,
        next_cursor=str(nodes[-1].id),
        unfinished_attempts=node_pages.unfinished_attempts(tx, run.id),
    )


def read_node_page(tx: Tx, run_id: str, cursor: str | None, limit: int) -> Page[NodeRun]:
    """Up to ``limit`` node runs of ``run_id`` after ``cursor``, with their attempts."""
    rows = node_pages.node_rows_after(tx, run_id, parse_node_cursor(cursor), limit + 1)
    page = paginate(rows, limit)
    attempts: dict[tuple[str, int], list[AttemptRecord]] = {}
    for attempt in node_pages.attempts_of_nodes(tx, run_id, page.items):
        attempts.setdefault((attempt.node_id, attempt.iteration), []).append(attempt)
    return page.map(lambda node: NodeRun(node, attempts.get((node.node_id, node.iteration), [])))


def parse_node_cursor(cursor: str | None) -> int:
    """The node run id a cursor of :func:`read_node_page` stands for (0: from the start).

    Raises:
        InvalidInput: ``cursor`` is not one this module returned.
    """
    if not cursor:
        return 0
    if not cursor.isdigit() or len(cursor) > 18:  # a row id, within a signed 64-bit integer
        raise InvalidInput("cursor must be a nodesNextCursor or nextCursor returned before")
    return int(cursor)


def node_level_counts(
    states: Sequence[tuple[str, int, str]],
) -> tuple[dict[str, int], int, int]:
    """``(summary, nodes_total, nodes_executed)`` over ``(node_id, iteration, status)``
    states, as in the detail: counted are node-level ones, a plain node's or a ``foreach``
    node's iteration -1 (its items are counted in ``nodeRunsTotal`` only)."""
    foreach_nodes = {node_id for node_id, iteration, _ in states if iteration == -1}
    summary: dict[str, int] = {}
    total = executed = 0
    for node_id, iteration, status in states:
        if iteration == -1 or node_id not in foreach_nodes:
            total += 1
            summary[status] = summary.get(status, 0) + 1
            if status in ("finished", "failed"):
                executed += 1
    return summary, total, executed
