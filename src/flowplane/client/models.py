"""Wire models of the run-lifecycle API, shared by the server's responses and the client.

Python attributes are snake_case; on the wire they are camelCase (``run_id`` <-> ``runId``),
except in the EditOps result, whose wire format is snake_case. Unknown fields from a newer
server are ignored, so an older client keeps working.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

RunStatus = Literal[
    "queued",  # accepted, not started
    "running",  # nodes are ready or in progress
    "waiting-approval",  # nothing runnable; a node waits for a human decision
    "waiting-event",  # nothing runnable; a node waits for a signal
    "waiting-timer",  # nothing runnable; a node waits for a timer
    "finished",  # terminal: every node settled without a blocking failure
    "failed",  # terminal: a node failed
    "cancelled",  # terminal: cancelled by a caller
    "timed-out",  # terminal: the whole-run timeout passed
]
TERMINAL_STATUSES = frozenset({"finished", "failed", "cancelled", "timed-out"})
"""Run statuses after which nothing more happens (unless the run is resumed)."""

TERMINAL_EVENT_TYPES = frozenset({"RunFinished", "RunFailed", "RunCancelled", "RunTimedOut"})
"""Event types after which a run's event stream ends."""


class WireModel(BaseModel):
    """Base of the camelCase wire models."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True)


class Run(WireModel):
    """A run as listed by ``GET /v1/runs`` (no input, output or node states)."""

    run_id: str = Field(description="The run id.")
    namespace: str
    workflow_id: str | None = None
    workflow_name: str
    workflow_version: int | None = None
    status: str = Field(description="One of the run statuses.")
    error: Any = None
    parent_run_id: str | None = None
    forked_from: str | None = Field(default=None, description="The run this one was forked from.")
    trigger: str | None = None
    triggered_by: str | None = None
    created_at_ms: int | None = None
    started_at_ms: int | None = None
    finished_at_ms: int | None = None
    created_at: str | None = Field(default=None, description="ISO-8601 of createdAtMs.")
    finished_at: str | None = Field(default=None, description="ISO-8601 of finishedAtMs.")
    duration_ms: int | None = Field(
        default=None, description="From start to finish (or to now while it runs)."
    )

    @property
    def is_terminal(self) -> bool:
        """Whether the run is in a terminal status."""
        return self.status in TERMINAL_STATUSES


class DispatchResult(Run):
    """The answer to a dispatch: the run, and whether this request created it."""

    created: bool = Field(
        default=True, description="False when an Idempotency-Key or runId named an existing run."
    )


class Attempt(WireModel):
    """One try of a node run."""

    node_id: str
    iteration: int
    attempt: int
    status: str = Field(description="finished | failed | lost | cancelled")
    worker: str | None = None
    started_at_ms: int | None = None
    finished_at_ms: int | None = None
    duration_ms: int | None = None
    error: Any = None


class NodeState(WireModel):
    """The state of one node run (one ``iteration`` of a ``foreach``; -1 is its node level)."""

    node_id: str
    iteration: int
    state: str = Field(description="One of the node statuses.")
    attempt: int = Field(description="How many attempts were started.")
    attempts: list[Attempt] = Field(default_factory=list)
    output: Any = None
    error: Any = None
    wait: Any = None
    started_at_ms: int | None = None
    finished_at_ms: int | None = None
    duration_ms: int | None = None


class RunDetail(Run):
    """``GET /v1/runs/{id}``: the run with its input, output and every node's state."""

    input: Any = None
    output: Any = None
    summary: dict[str, int] = Field(default_factory=dict, description="Node-level count per state.")
    nodes: list[NodeState] = Field(default_factory=list)
    nodes_total: int = 0
    nodes_executed: int = Field(default=0, description="Nodes that finished or failed.")
    node_runs_total: int | None = Field(
        default=None,
        description="Only when `nodes` lists the first node runs of a bigger run "
        "(`FLOWPLANE_MAX_RUN_DETAIL_NODES`): how many node runs it has.",
    )
    nodes_next_cursor: str | None = Field(
        default=None,
        description="Only with `nodeRunsTotal`: the `cursor` of `GET /v1/runs/{id}/nodes` "
        "that reads the node runs after those in `nodes`.",
    )

    def node(self, node_id: str, iteration: int | None = None) -> NodeState:
        """Return a node's state (its node-level row unless ``iteration`` is given)."""
        rows = [n for n in self.nodes if n.node_id == node_id]
        if iteration is not None:
            rows = [n for n in rows if n.iteration == iteration]
        if not rows:
            raise KeyError(node_id)
        return min(rows, key=lambda n: n.iteration)


class NodePage(WireModel):
    """A page of a run's node runs (``GET /v1/runs/{id}/nodes``); ``nextCursor`` reads on."""

    items: list[NodeState]
    next_cursor: str | None = None


class RunList(WireModel):
    """A page of runs and the cursor of the next page."""

    runs: list[Run]
    next_cursor: str | None = None


class LogItem(WireModel):
    """One entry of a run's log: a persisted log line or a recorded attempt."""

    kind: Literal["log", "attempt"]
    node_id: str
    iteration: int
    attempt: int
    ts_ms: int = Field(description="When it was written (attempts: when they ended).")
    level: str | None = None
    message: str | None = None
    status: str | None = None
    worker: str | None = None
    started_at_ms: int | None = None
    error: Any = None


class LogPage(WireModel):
    """A page of log items; pass ``nextCursor`` as ``after`` to read on."""

    items: list[LogItem]
    next_cursor: str | None = None


class Event(WireModel):
    """A run event; type-specific members (``output``, ``error``, ...) are kept as extras."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="allow")
    type: str
    run_id: str
    seq: int
    timestamp_ms: int
    node_id: str | None = None
    iteration: int | None = None

    def get(self, key: str, default: Any = None) -> Any:
        """Return a member by its wire name (``"output"``, ``"attempt"``, ...)."""
        extra = self.model_extra or {}
        if key in extra:
            return extra[key]
        data = self.model_dump(by_alias=True)
        return data.get(key, default)

    @property
    def is_terminal(self) -> bool:
        """Whether this event ends the run's stream."""
        return self.type in TERMINAL_EVENT_TYPES


class Approval(WireModel):
    """An approval request and its decision."""

    id: str
    run_id: str
    namespace: str
    node_id: str
    iteration: int
    title: str
    description: str | None = None
    status: str = Field(description="pending | approved | denied | cancelled")
    requested_at_ms: int
    decided_at_ms: int | None = None
    decided_by: str | None = None
    note: str | None = None
    waiting_ms: int = Field(
        default=0, description="Time waited so far (pending) or until the decision."
    )
    workflow_name: str | None = None
    run_status: str | None = None
    label: str | None = Field(default=None, description="Smithers compatibility: the node id.")
    request_title: str | None = Field(default=None, description="Smithers compatibility.")


class ApprovalList(WireModel):
    """``GET /v1/approvals``: pending first, longest wait first."""

    approvals: list[Approval]


class SignalResult(WireModel):
    """The outcome of sending a signal."""

    run_id: str
    signal: str
    delivered: bool = Field(description="Whether a waiting node consumed it (else it is kept).")
    node_id: str | None = None
    iteration: int | None = None


class FrameNode(WireModel):
    """One node run's state in a frame."""

    node_id: str
    iteration: int
    status: str = Field(description="One of the node statuses.")
    attempt: int = 0


class Frame(WireModel):
    """A snapshot of every node run's state after one committed transition."""

    run_id: str
    frame_no: int = Field(description="1, 2, ... in commit order.")
    seq: int | None = Field(default=None, description="The event seq of the transition.")
    timestamp_ms: int
    created_at_ms: int | None = Field(
        default=None, description="Smithers compatibility: same as timestampMs."
    )
    changes: list[dict[str, Any]] = Field(
        default_factory=list, description="The node runs this transition changed."
    )
    nodes: list[FrameNode] = Field(default_factory=list)


class DiffSide(WireModel):
    """A node run's outcome in one of the two compared runs."""

    status: str
    output: Any = None


class NodeDiff(WireModel):
    """One node run compared across two runs (``None``: absent from that run)."""

    node_id: str
    iteration: int
    original: DiffSide | None = None
    other: DiffSide | None = None
    changed: bool


class RunDiff(WireModel):
    """What differs between a run (typically the original) and another (typically a fork)."""

    run_id: str
    other_run_id: str
    input_changed: bool
    version_changed: bool
    status_changed: bool
    changed_nodes: list[str] = Field(
        default_factory=list, description="Ids of the nodes whose status or output differ."
    )
    nodes: list[NodeDiff] = Field(default_factory=list)


class WorkflowInfo(WireModel):
    """A stored workflow at its current version."""

    id: str
    name: str
    namespace: str
    version: int = Field(description="1 at creation, +1 on every change; the ETag.")
    description: str = ""
    document: dict[str, Any] = Field(default_factory=dict)
    created_at_ms: int | None = None
    updated_at_ms: int | None = None
    created_by: str | None = None


class WorkflowPage(WireModel):
    """A page of workflows and the cursor of the next page."""

    items: list[WorkflowInfo]
    next_cursor: str | None = None


class SkippedItem(BaseModel):
    """An EditOps operation that was not applied, and why."""

    index: int
    op: Any = None
    node_id: str | None = None
    reason_code: str
    reason: str
    details: Any = None


class ValidationIssue(BaseModel):
    """A validation problem of the workflow after an EditOps batch."""

    node_id: str | None = None
    node_type: str | None = None
    field: str | None = None
    value: Any = None
    error: str
    code: str | None = None


class AppliedItem(BaseModel):
    """An EditOps operation that was applied."""

    index: int
    op: str
    node_id: str | None = None
    description: str = ""


class PatchResult(BaseModel):
    """The result of ``POST /v1/workflows/{id}/operations``."""

    ok: bool = Field(description="Nothing was skipped and nothing is invalid.")
    version: int | None = None
    saved: bool | None = Field(default=None, description="Whether a new version was saved.")
    workflow: dict[str, Any] = Field(default_factory=dict)
    validation_errors: list[ValidationIssue] = Field(default_factory=list)
    skipped_items: list[SkippedItem] = Field(default_factory=list)
    applied: list[AppliedItem] = Field(default_factory=list)
    summary: str = ""


class PruneResult(WireModel):
    """What ``POST /v1/admin/prune`` deleted (or, with ``dryRun``, would delete)."""

    dry_run: bool
    deleted: dict[str, int] = Field(default_factory=dict, description="Runs deleted, by namespace.")
    total: int = 0


__all__ = [
    "TERMINAL_EVENT_TYPES",
    "TERMINAL_STATUSES",
    "AppliedItem",
    "Approval",
    "ApprovalList",
    "Attempt",
    "DiffSide",
    "DispatchResult",
    "Event",
    "Frame",
    "FrameNode",
    "LogItem",
    "LogPage",
    "NodeDiff",
    "NodeState",
    "PatchResult",
    "PruneResult",
    "Run",
    "RunDetail",
    "RunDiff",
    "RunList",
    "RunStatus",
    "SignalResult",
    "SkippedItem",
    "ValidationIssue",
    "WireModel",
    "WorkflowInfo",
    "WorkflowPage",
]
