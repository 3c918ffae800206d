"""Records of runs, node runs, attempts, log lines, frames and approvals.

Every read a service makes of a run, its node runs, attempts, log lines, frames and
approvals comes back as one of these (built as :mod:`.base` says: ``GET /v1/runs/{id}``
builds one record per node run and attempt, so the cost of a build matters).

Statuses are the :mod:`flowplane.status` enums; they compare equal to their wire strings, so
``record.status in TERMINAL_RUN`` and wire models that take a ``str`` keep working.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Self

from flowplane.status import TERMINAL_RUN, NodeStatus, RunStatus
from flowplane.store.records.base import Row
from flowplane.store.records.base import build as _build

__all__ = [
    "ApprovalRecord",
    "AttemptRecord",
    "FrameRecord",
    "LogRecord",
    "NodeRunRecord",
    "RunRecord",
]

# A dict lookup is several times cheaper than ``RunStatus(value)`` (EnumType.__call__).
_RUN_STATUS: dict[str, RunStatus] = {s.value: s for s in RunStatus}
_NODE_STATUS: dict[str, NodeStatus] = {s.value: s for s in NodeStatus}


def run_status(value: str) -> RunStatus:
    """The :class:`RunStatus` of a stored status string."""
    return _RUN_STATUS[value]


def node_status(value: str) -> NodeStatus:
    """The :class:`NodeStatus` of a stored status string."""
    return _NODE_STATUS[value]


@dataclass(frozen=True)
class RunRecord:
    """One run. ``document`` is ``None`` when it was read without its pinned workflow."""

    id: str
    namespace: str
    workflow_name: str
    status: RunStatus
    input: Any
    workflow_id: str | None = None
    workflow_version: int | None = None
    output: Any = None
    error: Any = None
    parent_run_id: str | None = None
    parent_node_id: str | None = None
    parent_iteration: int | None = None
    idempotency_key: str | None = None
    request_hash: str | None = None
    trigger: str | None = None
    triggered_by: str | None = None
    source_path: str | None = None
    forked_from: str | None = None
    frame_no: int = 0
    created_at_ms: int | None = None
    started_at_ms: int | None = None
    finished_at_ms: int | None = None
    updated_at_ms: int | None = None
    deadline_ms: int | None = None
    document: dict[str, Any] | None = None

    @classmethod
    def from_row(cls, row: Row) -> Self:
        """The record of a ``runs`` row (any subset of columns holding the required ones)."""
        return _build(cls, row, status=_RUN_STATUS[row["status"]])

    @property
    def terminal(self) -> bool:
        """Whether the run has ended (unless it is resumed)."""
        return self.status in TERMINAL_RUN


@dataclass(frozen=True)
class NodeRunRecord:
    """One node run: a node, or one ``foreach`` iteration of it (-1 is the node level)."""

    id: int
    run_id: str
    node_id: str
    iteration: int
    status: NodeStatus
    attempt: int = 0
    available_at_ms: int = 0
    lease_owner: str | None = None
    lease_expires_ms: int | None = None
    lease_epoch: int = 0
    output: Any = None
    error: Any = None
    wait: Any = None
    item: Any = None
    started_at_ms: int | None = None
    finished_at_ms: int | None = None

    @classmethod
    def from_row(cls, row: Row) -> Self:
        """The record of a ``node_runs`` row."""
        return _build(cls, row, status=_NODE_STATUS[row["status"]])


@dataclass(frozen=True)
class AttemptRecord:
    """One finished attempt of a node run.

    ``status`` is an attempt outcome (``finished``, ``failed``, ``lost``, ``superseded``),
    not a node status.
    """

    id: int
    run_id: str
    node_id: str
    iteration: int
    attempt: int
    status: str
    finished_at_ms: int
    worker: str | None = None
    started_at_ms: int | None = None
    error: Any = None

    @classmethod
    def from_row(cls, row: Row) -> Self:
        """The record of an ``attempts`` row."""
        return _build(cls, row)


@dataclass(frozen=True)
class LogRecord:
    """One log line a node wrote during an attempt."""

    id: int
    run_id: str
    node_id: str
    iteration: int
    attempt: int
    level: str
    message: str
    ts_ms: int

    @classmethod
    def from_row(cls, row: Row) -> Self:
        """The record of a ``logs`` row."""
        return _build(cls, row)


@dataclass(frozen=True)
class FrameRecord:
    """The node state changes one transaction committed to a run (time travel)."""

    run_id: str
    frame_no: int
    seq: int
    ts_ms: int
    changes: list[dict[str, Any]]

    @classmethod
    def from_row(cls, row: Row) -> Self:
        """The record of a ``frames`` row."""
        return _build(cls, row)


@dataclass(frozen=True)
class ApprovalRecord:
    """An approval request of a node run, with what the inbox shows of it.

    ``waiting_ms`` (how long it waited or has waited), ``workflow_name`` and ``run_status``
    are filled in by the reads that list or decide approvals.
    """

    id: str
    run_id: str
    namespace: str
    node_id: str
    iteration: int
    title: str
    status: str
    requested_at_ms: int
    description: str | None = None
    on_deny: str = "fail"
    decided_at_ms: int | None = None
    decided_by: str | None = None
    note: str | None = None
    waiting_ms: int = 0
    workflow_name: str | None = None
    run_status: RunStatus | None = None

    @classmethod
    def from_row(
        cls,
        row: Row,
        *,
        now_ms: int,
        workflow_name: str | None = None,
        run_status: str | None = None,
    ) -> Self:
        """The record of an ``approvals`` row; ``waiting_ms`` counts to ``now_ms`` while it
        is pending, and to its decision after."""
        get = row.get
        requested = get("requested_at_ms") or 0
        decided = get("decided_at_ms")
        end = decided if row["status"] != "pending" else None
        return cls(
            id=row["id"],
            run_id=row["run_id"],
            namespace=row["namespace"],
            node_id=row["node_id"],
            iteration=row["iteration"],
            title=row["title"],
            status=row["status"],
            requested_at_ms=requested,
            description=get("description"),
            on_deny=get("on_deny") or "fail",
            decided_at_ms=decided,
            decided_by=get("decided_by"),
            note=get("note"),
            waiting_ms=max(0, (end or now_ms) - requested),
            workflow_name=workflow_name,
            run_status=None if run_status is None else _RUN_STATUS[run_status],
        )
