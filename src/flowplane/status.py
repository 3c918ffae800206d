"""Run and node statuses: the one definition, shared by store, engine, services, API and CLI.

The wire strings are the members' values (``RunStatus.WAITING_APPROVAL == "waiting-approval"``).
The sets below hold the plain strings so that SQL binds and hot-path membership tests stay
as cheap as they were; ``flowplane.client.models`` keeps its own copy (the client installs
without the server), pinned equal to this one by ``tests/unit/test_status.py``.
"""

from __future__ import annotations

from enum import StrEnum

__all__ = [
    "TERMINAL_NODE",
    "TERMINAL_RUN",
    "WAITING_NODE",
    "WAITING_RUN",
    "NodeStatus",
    "RunStatus",
]


class RunStatus(StrEnum):
    """The status of a run."""

    QUEUED = "queued"  # accepted, not started
    RUNNING = "running"  # nodes are ready or in progress
    WAITING_APPROVAL = "waiting-approval"  # nothing runnable; a node waits for a human decision
    WAITING_EVENT = "waiting-event"  # nothing runnable; a node waits for a signal
    WAITING_TIMER = "waiting-timer"  # nothing runnable; a node waits for a timer
    FINISHED = "finished"  # terminal: every node settled without a blocking failure
    FAILED = "failed"  # terminal: a node failed
    CANCELLED = "cancelled"  # terminal: cancelled by a caller
    TIMED_OUT = "timed-out"  # terminal: the whole-run timeout passed


class NodeStatus(StrEnum):
    """The status of a node run (one node, one ``foreach`` iteration)."""

    PENDING = "pending"  # upstream nodes have not settled
    READY = "ready"  # may be claimed by a worker
    IN_PROGRESS = "in-progress"  # a worker holds its lease
    WAITING_APPROVAL = "waiting-approval"  # waits for approve or deny
    WAITING_EVENT = "waiting-event"  # waits for a signal
    WAITING_TIMER = "waiting-timer"  # waits for a timer (retry backoff, sleep)
    FINISHED = "finished"  # terminal: output recorded
    FAILED = "failed"  # terminal: the last attempt failed
    SKIPPED = "skipped"  # terminal: `when` was false or the trigger rule was not met
    CANCELLED = "cancelled"  # terminal: the run was cancelled


TERMINAL_RUN: tuple[str, ...] = tuple(
    s.value
    for s in (RunStatus.FINISHED, RunStatus.FAILED, RunStatus.CANCELLED, RunStatus.TIMED_OUT)
)
"""Run statuses after which nothing more happens (unless the run is resumed)."""
WAITING_RUN: tuple[str, ...] = tuple(
    s.value for s in (RunStatus.WAITING_APPROVAL, RunStatus.WAITING_EVENT, RunStatus.WAITING_TIMER)
)
"""Run statuses of a run that waits for something outside it."""
TERMINAL_NODE: tuple[str, ...] = tuple(
    s.value
    for s in (NodeStatus.FINISHED, NodeStatus.FAILED, NodeStatus.SKIPPED, NodeStatus.CANCELLED)
)
"""Node statuses after which the node run does nothing more."""
WAITING_NODE: tuple[str, ...] = tuple(
    s.value
    for s in (NodeStatus.WAITING_APPROVAL, NodeStatus.WAITING_EVENT, NodeStatus.WAITING_TIMER)
)
"""Node statuses of a node run that waits for something outside the run."""
