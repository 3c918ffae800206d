"""The tables. Times are integer milliseconds since the epoch (``*_ms``): cheap to compare,
identical on SQLite and PostgreSQL, and exactly what the wire format's ``...AtMs`` fields need.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB

metadata = sa.MetaData()

JSONType = sa.JSON().with_variant(JSONB(), "postgresql")
Id = sa.String(64)
Ms = sa.BigInteger


workflows = sa.Table(
    "workflows",
    metadata,
    sa.Column("id", Id, primary_key=True),
    sa.Column("namespace", sa.String(64), nullable=False),
    sa.Column("name", sa.String(128), nullable=False),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("document", JSONType, nullable=False),
    sa.Column("created_at_ms", Ms, nullable=False),
    sa.Column("updated_at_ms", Ms, nullable=False),
    sa.Column("deleted_at_ms", Ms, nullable=True),
    sa.Column("created_by", sa.String(128), nullable=True),
    sa.Index(
        "ux_workflows_live_name",
        "namespace",
        "name",
        unique=True,
        sqlite_where=sa.text("deleted_at_ms IS NULL"),
        postgresql_where=sa.text("deleted_at_ms IS NULL"),
    ),
)

workflow_revisions = sa.Table(
    "workflow_revisions",
    metadata,
    sa.Column("workflow_id", Id, primary_key=True),
    sa.Column("version", sa.Integer, primary_key=True),
    sa.Column("document", JSONType, nullable=False),
    sa.Column("created_at_ms", Ms, nullable=False),
    sa.Column("created_by", sa.String(128), nullable=True),
    sa.Column("message", sa.String(500), nullable=True),
)

runs = sa.Table(
    "runs",
    metadata,
    sa.Column("id", Id, primary_key=True),
    sa.Column("namespace", sa.String(64), nullable=False),
    sa.Column("workflow_id", Id, nullable=True),
    sa.Column("workflow_name", sa.String(128), nullable=False),
    sa.Column("workflow_version", sa.Integer, nullable=True),
    sa.Column("document", JSONType, nullable=False),
    sa.Column("input", JSONType, nullable=False),
    sa.Column("status", sa.String(32), nullable=False),
    sa.Column("output", JSONType, nullable=True),
    sa.Column("error", JSONType, nullable=True),
    sa.Column("parent_run_id", Id, nullable=True),
    sa.Column("parent_node_id", sa.String(64), nullable=True),
    sa.Column("parent_iteration", sa.Integer, nullable=True),
    sa.Column("idempotency_key", sa.String(255), nullable=True),
    sa.Column("request_hash", sa.String(64), nullable=True),
    sa.Column("trigger", sa.String(32), nullable=False, server_default="api"),
    sa.Column("triggered_by", sa.String(128), nullable=True),
    sa.Column("source_path", sa.String(1024), nullable=True),
    sa.Column("forked_from", Id, nullable=True),
    sa.Column("frame_no", sa.Integer, nullable=False, server_default="0"),
    sa.Column("created_at_ms", Ms, nullable=False),
    sa.Column("started_at_ms", Ms, nullable=True),
    sa.Column("finished_at_ms", Ms, nullable=True),
    sa.Column("updated_at_ms", Ms, nullable=False),
    sa.Column("deadline_ms", Ms, nullable=True),
    sa.Index("ix_runs_namespace_created", "namespace", "created_at_ms"),
    sa.Index("ix_runs_status", "status"),
    sa.Index("ix_runs_parent", "parent_run_id"),
    sa.Index("ux_runs_idempotency", "namespace", "idempotency_key", unique=True),
)

node_runs = sa.Table(
    "node_runs",
    metadata,
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True),
    sa.Column("run_id", Id, nullable=False),
    sa.Column("node_id", sa.String(64), nullable=False),
    # 0 for a plain node; for a foreach node, -1 is the node-level row and 0..n-1 the items.
    sa.Column("iteration", sa.Integer, nullable=False),
    sa.Column("status", sa.String(32), nullable=False),
    sa.Column("attempt", sa.Integer, nullable=False, server_default="0"),
    sa.Column("available_at_ms", Ms, nullable=False, server_default="0"),
    sa.Column("lease_owner", sa.String(128), nullable=True),
    sa.Column("lease_expires_ms", Ms, nullable=True),
    sa.Column("lease_epoch", sa.Integer, nullable=False, server_default="0"),
    sa.Column("output", JSONType, nullable=True),
    sa.Column("error", JSONType, nullable=True),
    sa.Column("wait", JSONType, nullable=True),
    # The foreach item of this iteration.
    sa.Column("item", JSONType, nullable=True),
    sa.Column("started_at_ms", Ms, nullable=True),
    sa.Column("finished_at_ms", Ms, nullable=True),
    sa.UniqueConstraint("run_id", "node_id", "iteration", name="ux_node_runs_key"),
    sa.Index("ix_node_runs_claim", "status", "available_at_ms"),
    sa.Index("ix_node_runs_run_status", "run_id", "status"),
)

attempts = sa.Table(
    "attempts",
    metadata,
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True),
    sa.Column("run_id", Id, nullable=False),
    sa.Column("node_id", sa.String(64), nullable=False),
    sa.Column("iteration", sa.Integer, nullable=False),
    sa.Column("attempt", sa.Integer, nullable=False),
    # finished | failed | lost | cancelled
    sa.Column("status", sa.String(32), nullable=False),
    sa.Column("worker", sa.String(128), nullable=True),
    sa.Column("started_at_ms", Ms, nullable=True),
    sa.Column("finished_at_ms", Ms, nullable=False),
    sa.Column("error", JSONType, nullable=True),
    sa.UniqueConstraint("run_id", "node_id", "iteration", "attempt", name="ux_attempts_key"),
    # The database itself guarantees a node run's output is recorded exactly once.
    sa.Index(
        "ux_attempts_one_success",
        "run_id",
        "node_id",
        "iteration",
        unique=True,
        sqlite_where=sa.text("status = 'finished'"),
        postgresql_where=sa.text("status = 'finished'"),
    ),
)

events = sa.Table(
    "events",
    metadata,
    # Allocated from event_counter inside the writing transaction: gap-free, commit-ordered.
    sa.Column("seq", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("run_id", Id, nullable=False),
    sa.Column("namespace", sa.String(64), nullable=False),
    sa.Column("type", sa.String(64), nullable=False),
    sa.Column("node_id", sa.String(64), nullable=True),
    sa.Column("ts_ms", Ms, nullable=False),
    sa.Column("payload", JSONType, nullable=False),
    sa.Index("ix_events_run_seq", "run_id", "seq"),
    sa.Index("ix_events_namespace_seq", "namespace", "seq"),
)

event_counter = sa.Table(
    "event_counter",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("seq", sa.BigInteger, nullable=False),
)

frames = sa.Table(
    "frames",
    metadata,
    sa.Column("run_id", Id, primary_key=True),
    sa.Column("frame_no", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("seq", sa.BigInteger, nullable=False),
    sa.Column("ts_ms", Ms, nullable=False),
    # The node states that changed in this transition: [{nodeId, iteration, status, attempt}].
    sa.Column("changes", JSONType, nullable=False),
)

logs = sa.Table(
    "logs",
    metadata,
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True),
    sa.Column("run_id", Id, nullable=False),
    sa.Column("node_id", sa.String(64), nullable=False),
    sa.Column("iteration", sa.Integer, nullable=False),
    sa.Column("attempt", sa.Integer, nullable=False),
    sa.Column("level", sa.String(16), nullable=False),
    sa.Column("message", sa.Text, nullable=False),
    sa.Column("ts_ms", Ms, nullable=False),
    sa.Index("ix_logs_run", "run_id", "id"),
)

approvals = sa.Table(
    "approvals",
    metadata,
    sa.Column("id", Id, primary_key=True),
    sa.Column("run_id", Id, nullable=False),
    sa.Column("namespace", sa.String(64), nullable=False),
    sa.Column("node_id", sa.String(64), nullable=False),
    sa.Column("iteration", sa.Integer, nullable=False),
    sa.Column("title", sa.String(500), nullable=False),
    sa.Column("description", sa.Text, nullable=True),
    sa.Column("on_deny", sa.String(16), nullable=False, server_default="fail"),
    # pending | approved | denied | cancelled
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("requested_at_ms", Ms, nullable=False),
    sa.Column("decided_at_ms", Ms, nullable=True),
    sa.Column("decided_by", sa.String(128), nullable=True),
    sa.Column("note", sa.Text, nullable=True),
    sa.UniqueConstraint("run_id", "node_id", "iteration", name="ux_approvals_key"),
    sa.Index("ix_approvals_status", "status", "requested_at_ms"),
)

signals = sa.Table(
    "signals",
    metadata,
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True),
    sa.Column("run_id", Id, nullable=False),
    sa.Column("name", sa.String(128), nullable=False),
    sa.Column("correlation_id", sa.String(255), nullable=True),
    sa.Column("payload", JSONType, nullable=True),
    sa.Column("created_at_ms", Ms, nullable=False),
    sa.Column("consumed_node_id", sa.String(64), nullable=True),
    sa.Column("consumed_iteration", sa.Integer, nullable=True),
    sa.Column("consumed_at_ms", Ms, nullable=True),
    sa.Index("ix_signals_run_name", "run_id", "name"),
)
