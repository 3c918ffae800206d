"""Flowplane's run and node statuses in workflowdev's words: the one table of each.

workflowdev names an execution's end ``SUCCESS``, ``FAILED``, ``CANCELLED`` or
``TIMED_OUT`` and its way there ``QUEUED`` and ``RUNNING``; Flowplane's waits keep their
meaning under workflowdev-style names.
"""

from __future__ import annotations

from flowplane.status import NodeStatus, RunStatus

__all__ = ["NODE_STATUS", "RUN_STATUS", "run_statuses_of"]

RUN_STATUS: dict[RunStatus, str] = {
    RunStatus.QUEUED: "QUEUED",
    RunStatus.RUNNING: "RUNNING",
    RunStatus.WAITING_APPROVAL: "WAITING_APPROVAL",
    RunStatus.WAITING_EVENT: "WAITING_EVENT",
    RunStatus.WAITING_TIMER: "WAITING_TIMER",
    RunStatus.FINISHED: "SUCCESS",
    RunStatus.FAILED: "FAILED",
    RunStatus.CANCELLED: "CANCELLED",
    RunStatus.TIMED_OUT: "TIMED_OUT",
}
"""An execution's status for each run status."""

NODE_STATUS: dict[NodeStatus, str] = {
    NodeStatus.PENDING: "PENDING",
    NodeStatus.READY: "QUEUED",
    NodeStatus.IN_PROGRESS: "RUNNING",
    NodeStatus.WAITING_APPROVAL: "WAITING_APPROVAL",
    NodeStatus.WAITING_EVENT: "WAITING_EVENT",
    NodeStatus.WAITING_TIMER: "WAITING_TIMER",
    NodeStatus.FINISHED: "SUCCESS",
    NodeStatus.FAILED: "FAILED",
    NodeStatus.SKIPPED: "SKIPPED",
    NodeStatus.CANCELLED: "CANCELLED",
}
"""A task's status for each node status."""


def run_statuses_of(names: list[str]) -> list[str]:
    """The Flowplane run statuses behind workflowdev status names (a filter's values);
    unknown names match nothing (the service is given an impossible status)."""
    wanted = {name.strip().upper() for name in names if name.strip()}
    found = [status.value for status, name in RUN_STATUS.items() if name in wanted]
    return found or ["-"]
