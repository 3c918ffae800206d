"""Wire models of the run-lifecycle API, shared by the server's responses and the client.

Python attributes are snake_case; on the wire they are camelCase (``run_id`` <-> ``runId``),
except in the EditOps result, whose wire format is snake_case. Unknown fields from a newer
server are ignored, so an older client keeps working.
"""

from __future__ import annotations

from typing import Any, Generic, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

ItemT = TypeVar("ItemT")

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


class Page(WireModel, Generic[ItemT]):
    """A page of a listing: its ``items`` and the ``next_cursor`` that reads the next page
    (``None`` on the last page). Every listing of the client answers one."""

    items: list[ItemT]
    next_cursor: str | None = None


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
    status: str = Field(alias="state", description="One of the node statuses.")
    attempt: int = Field(description="How many attempts were started.")
    attempts: list[Attempt] = Field(default_factory=list)
    output: Any = None
    error: Any = None
    wait: Any = None
    started_at_ms: int | None = None
    finished_at_ms: int | None = None
    duration_ms: int | None = None

    @property
    def state(self) -> str:
        """Deprecated: the same as :attr:`status` (the wire name of the field)."""
        return self.status


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


class NodePage(Page[NodeState]):
    """A page of a run's node runs (``GET /v1/runs/{id}/nodes``); ``nextCursor`` reads on."""


class RunList(Page[Run]):
    """A page of runs, newest first, and the cursor of the next page."""

    @property
    def runs(self) -> list[Run]:
        """Deprecated: the same as :attr:`items`."""
        return self.items


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


class LogPage(Page[LogItem]):
    """A page of log items; pass ``nextCursor`` as ``after`` to read on."""


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


class WorkflowPage(Page[WorkflowInfo]):
    """A page of workflows and the cursor of the next page."""


class SkippedItem(BaseModel):
    """An EditOps operation that was not applied, and why."""

    index: int
    op: Any = None
    node_id: str | None = None
    reason_code: str
    reason: str
    details: Any = None


class ValidationIssue(BaseModel):
    """A validation problem of a workflow (``validate``, or after an EditOps batch)."""

    node_id: str | None = None
    node_type: str | None = None
    field: str | None = None
    value: Any = None
    error: str
    code: str | None = None
    path: str | None = Field(default=None, description="Where in the document (parse errors).")
    line: int | None = Field(default=None, description="1-based line (parse errors).")


class ValidationResult(BaseModel):
    """The answer of ``POST /v1/workflows/validate``: every problem at once."""

    valid: bool
    errors: list[ValidationIssue] = Field(default_factory=list)
    warnings: list[ValidationIssue] = Field(
        default_factory=list,
        description="Not errors: e.g. a credential it uses that is not stored yet.",
    )
    document: dict[str, Any] | None = Field(
        default=None, description="The canonical document, when it parsed."
    )


class ImportedWorkflow(WireModel):
    """What an import did with one document."""

    id: str
    name: str
    namespace: str
    version: int
    action: Literal["created", "updated", "unchanged"]


class ImportResult(WireModel):
    """The answer of ``POST /v1/workflows/import``, in the order of the documents."""

    items: list[ImportedWorkflow]
    created: int = 0
    updated: int = 0
    unchanged: int = 0


class Revision(WireModel):
    """One saved version of a workflow (``document`` only when one revision is read)."""

    workflow_id: str
    version: int
    created_at_ms: int
    created_at: str | None = None
    created_by: str | None = None
    message: str | None = None
    document: dict[str, Any] | None = None


class RevisionPage(Page[Revision]):
    """A workflow's revisions, newest first."""


class ScheduleFire(WireModel):
    """One slot a schedule fired (or failed to)."""

    slot_ms: int
    slot_at: str | None = None
    run_id: str | None = None
    fired_at_ms: int
    status: str
    error: dict[str, Any] | None = None


class Schedule(WireModel):
    """A cron schedule that starts runs of a workflow."""

    id: str
    namespace: str
    workflow_id: str
    name: str
    cron: str
    timezone: str
    input: dict[str, Any] | None = None
    enabled: bool
    start_at_ms: int | None = None
    end_at_ms: int | None = None
    catchup: str
    catchup_window_seconds: int
    next_fire_at_ms: int | None = None
    next_fire_at: str | None = None
    last_fired_slot_ms: int | None = None
    last_fired_at: str | None = None
    owner: str = Field(description="`api`, or `workflow` when declared in its `triggers:`.")
    created_at_ms: int
    updated_at_ms: int
    created_by: str | None = None
    recent_fires: list[ScheduleFire] | None = None


class SchedulePage(Page[Schedule]):
    """A page of schedules."""


class Trigger(WireModel):
    """A webhook trigger: ``POST /v1/webhooks/{key}`` starts or signals runs."""

    id: str
    namespace: str
    workflow_id: str | None = None
    key: str
    url: str = Field(description="The path deliveries are posted to.")
    kind: str
    signal_name: str | None = None
    correlation: str | None = None
    scheme: str
    has_secret: bool
    enabled: bool
    owner: str
    created_at_ms: int
    updated_at_ms: int
    created_by: str | None = None


class TriggerPage(Page[Trigger]):
    """A page of triggers."""


class Credential(WireModel):
    """A stored credential: its name and metadata (never its value)."""

    id: str
    namespace: str
    name: str
    type: str
    description: str | None = None
    version: int
    key_id: str
    created_at_ms: int
    updated_at_ms: int
    created_by: str | None = None
    updated_by: str | None = None
    allowed_workflows: list[str] | None = None
    allowed_connectors: list[str] | None = None
    template_use: str = "exact"


class CredentialPage(Page[Credential]):
    """A page of credentials."""


class KVEntry(WireModel):
    """A key-value entry."""

    namespace: str
    key: str
    value: Any = None
    version: int
    expires_at_ms: int | None = None
    created_at_ms: int
    updated_at_ms: int


class KVPage(Page[KVEntry]):
    """A page of key-value entries, by key."""


class Connector(BaseModel):
    """A connector of the catalogue (the detail fields only with ``detail="full"``)."""

    model_config = ConfigDict(extra="allow")
    type: str
    name: str
    category: str
    description: str
    kind: str | None = None
    secrets: list[str] | None = None
    examples: list[dict[str, Any]] | None = None


class ConnectorPage(Page[Connector]):
    """The connectors that matched (the catalogue is one page)."""


class ConnectorCategory(BaseModel):
    """A catalogue category and how many connectors it holds."""

    name: str
    count: int


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
    "Connector",
    "ConnectorCategory",
    "ConnectorPage",
    "Credential",
    "CredentialPage",
    "DiffSide",
    "DispatchResult",
    "Event",
    "Frame",
    "FrameNode",
    "ImportResult",
    "ImportedWorkflow",
    "KVEntry",
    "KVPage",
    "LogItem",
    "LogPage",
    "NodeDiff",
    "NodeState",
    "Page",
    "PatchResult",
    "PruneResult",
    "Revision",
    "RevisionPage",
    "Run",
    "RunDetail",
    "RunDiff",
    "RunList",
    "RunStatus",
    "Schedule",
    "ScheduleFire",
    "SchedulePage",
    "SignalResult",
    "SkippedItem",
    "Trigger",
    "TriggerPage",
    "ValidationIssue",
    "ValidationResult",
    "WireModel",
    "WorkflowInfo",
    "WorkflowPage",
]
