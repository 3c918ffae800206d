"""Records of runs, node runs, attempts, log lines, frames and approvals.

Every read a service makes of a run, its node runs, attempts, log lines, frames and
approvals comes back as one of these (built as :mod:`.base` says: ``GET /v1/runs/{id}``
builds one record per node run and attempt, so the cost of a build matters).

Statuses are the :mod:`flowplane.status` enums; they compare equal to their wire strings, so
``record.status in TERMINAL_RUN`` and wire models that take a ``str`` keep working.

The engine reads the same records inside its transactions: :class:`RunRecord` (the run it
locked), :class:`NodeRunRecord` (a claimed or read node run), :class:`NodeState` (the light
state columns of a node run), :class:`ApprovalRecord` and :class:`SignalRecord`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any, ClassVar, Self

from flowplane.status import TERMINAL_RUN, NodeStatus, RunStatus
from flowplane.store.records.base import Row
from flowplane.store.records.base import build as _build

__all__ = [
    "ApprovalRecord",
    "AttemptRecord",
    "FrameRecord",
    "LogRecord",
    "NodeRunRecord",
    "NodeState",
    "RunRecord",
    "SignalRecord",
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


@dataclass
class RunRecord:
    """One run. ``document`` is ``None`` when it was read without its pinned workflow.

    Not frozen, unlike the other records: it is also the engine's working copy of the run
    it locked in a transaction (:meth:`Tx.lock_run`). The engine sets ``status`` (and, when
    a run ends its children, a child's ``parent_run_id``) as it writes them, so that every
    later step of that transaction, and the caller it returns the run to, sees the run as
    written (settlement reads the status it set to decide whether to close the run). A
    second, immutable class of the same 25 columns would be two definitions of a run; a
    record handed to services comes from a read of its own and nothing above the engine
    assigns to it.
    """

    # Stored strings turned into the record's types by :class:`~flowplane.store.prepared.
    # Prepared` statements that build records (see :func:`.base.adopt`).
    CONVERT: ClassVar[dict[str, Callable[[Any], Any]]] = {"status": _RUN_STATUS.__getitem__}

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
    trace_context: str | None = None
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
    # The successful attempt kept on the row: its worker ('' for none) and start.
    worker: str | None = None
    attempt_started_ms: int | None = None

    CONVERT: ClassVar[dict[str, Callable[[Any], Any]]] = {"status": _NODE_STATUS.__getitem__}

    @classmethod
    def from_row(cls, row: Row) -> Self:
        """The record of a ``node_runs`` row."""
        return _build(cls, row, status=_NODE_STATUS[row["status"]])


@dataclass(frozen=True)
class NodeState:
    """The state columns of a node run, without its output, error, wait or item (what the
    engine reads to decide successors, settle a run or reset it)."""

    id: int
    node_id: str
    iteration: int
    status: NodeStatus
    attempt: int = 0
    lease_epoch: int = 0
    available_at_ms: int = 0

    CONVERT: ClassVar[dict[str, Callable[[Any], Any]]] = {"status": _NODE_STATUS.__getitem__}

    @classmethod
    def from_row(cls, row: Row) -> Self:
        """The record of a row of state columns."""
        return _build(cls, row, status=_NODE_STATUS[row["status"]])


@dataclass(frozen=True)
class SignalRecord:
    """A signal sent to a run; ``consumed_*`` name the node run that took it, if one did."""

    id: int
    run_id: str
    name: str
    correlation_id: str | None = None
    payload: Any = None
    created_at_ms: int = 0
    consumed_node_id: str | None = None
    consumed_iteration: int | None = None
    consumed_at_ms: int | None = None

    @classmethod
    def from_row(cls, row: Row) -> Self:
        """The record of a ``signals`` row."""
        return _build(cls, row)


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

    def decided(self, status: str, *, by: str | None, note: str | None, at_ms: int) -> Self:
        """This approval as it reads once decided ``status`` at ``at_ms``."""
        return replace(
            self,
            status=status,
            decided_by=by,
            note=note,
            decided_at_ms=at_ms,
            waiting_ms=max(0, at_ms - self.requested_at_ms),
        )

    def of_run(self, workflow_name: str | None, run_status: str | None) -> Self:
        """This approval with its run's workflow name and status (for the inbox)."""
        status = None if run_status is None else _RUN_STATUS[run_status]
        return replace(self, workflow_name=workflow_name, run_status=status)
