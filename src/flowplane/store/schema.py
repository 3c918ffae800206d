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
CLAIMABLE = "(status = 'ready' OR status = 'waiting-timer' OR status = 'in-progress')"
"""The node runs a worker may claim or the lease reaper looks at: the predicate of the
partial index ``ix_node_runs_claim``, evaluated by SQLite for every insert of a node run and
every update of its status. Written with ``OR``, not ``IN``: SQLite builds a temporary
b-tree of the values of a constant ``IN`` list of more than two each time a statement runs
(~2.4 µs a row, half the cost of inserting a node run), and compares ``OR`` terms in place
(migration 0011)."""
DEADLINED = (
    "deadline_ms IS NOT NULL AND status <> 'finished' AND status <> 'failed' "
    "AND status <> 'cancelled' AND status <> 'timed-out'"
)
"""The runs the run-timeout sweep looks at (active, with a deadline): the predicate of the
partial index ``ix_runs_deadline``. Its statuses are ``status.TERMINAL_RUN`` (a test holds
them equal); ``<>`` rather than ``NOT IN``, as for :data:`CLAIMABLE`."""


def partial_index(name: str, *columns: str, where: str, unique: bool = False) -> sa.Index:
    """An index of the rows ``where`` holds, on both backends (SQLite uses it only for a
    query whose WHERE holds ``where``'s terms word for word)."""
    predicate = sa.text(where)
    return sa.Index(
        name, *columns, unique=unique, sqlite_where=predicate, postgresql_where=predicate
    )


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
    partial_index(
        "ux_workflows_live_name", "namespace", "name", unique=True, where="deleted_at_ms IS NULL"
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
    # The W3C traceparent of the run's span (tracing on): workers continue its trace.
    sa.Column("trace_context", sa.String(256), nullable=True),
    sa.Index("ix_runs_namespace_created", "namespace", "created_at_ms"),
    # A namespace's runs newest first (the run list of a caller limited to namespaces).
    sa.Index("ix_runs_namespace_id", "namespace", "id"),
    # Runs of a status newest first (a run list filtered by status; any status lookup).
    sa.Index("ix_runs_status_id", "status", "id"),
    # A workflow's runs newest first, by name and by id (a run list filtered by workflow).
    sa.Index("ix_runs_workflow_name_id", "workflow_name", "id"),
    sa.Index("ix_runs_workflow_id_id", "workflow_id", "id"),
    # Only child runs and runs started with an Idempotency-Key are indexed by these (a
    # lookup names a value, which implies the predicate; migration 0011).
    partial_index("ix_runs_parent", "parent_run_id", where="parent_run_id IS NOT NULL"),
    partial_index(
        "ux_runs_idempotency",
        "namespace",
        "idempotency_key",
        unique=True,
        where="idempotency_key IS NOT NULL",
    ),
    # The active runs with a deadline, by deadline (the run-timeout sweep; migration 0011).
    partial_index("ix_runs_deadline", "deadline_ms", where=DEADLINED),
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
    # The node run's successful attempt is kept on its row, not in ``attempts``: the worker
    # that ran it ('' when none did: a waiting node settled by an approval, signal or child
    # run) and when that attempt started (its end is ``finished_at_ms``). Set by the fenced
    # update that finishes the node run, so it is recorded exactly once, with the output;
    # NULL when the node run did not finish by an attempt (a foreach node's level row).
    sa.Column("worker", sa.String(128), nullable=True),
    sa.Column("attempt_started_ms", Ms, nullable=True),
    sa.UniqueConstraint("run_id", "node_id", "iteration", name="ux_node_runs_key"),
    # Only the statuses claims and the lease reaper look for: most rows are settled.
    partial_index("ix_node_runs_claim", "status", "available_at_ms", where=CLAIMABLE),
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
    # failed | lost | superseded (re-run by a rewind). A node run's successful attempt is
    # kept on its node_runs row (see there): rows here say "finished" only in a database
    # migrated from before 0008 where one could not be folded.
    sa.Column("status", sa.String(32), nullable=False),
    sa.Column("worker", sa.String(128), nullable=True),
    sa.Column("started_at_ms", Ms, nullable=True),
    sa.Column("finished_at_ms", Ms, nullable=False),
    sa.Column("error", JSONType, nullable=True),
    sa.UniqueConstraint("run_id", "node_id", "iteration", "attempt", name="ux_attempts_key"),
)

# The event log: one row per (transaction, run) holding that transaction's events of the
# run, seqs ``last_seq - size + 1 .. last_seq`` (allocated from event_counter inside the
# writing transaction: gap-free, commit-ordered), and the run's frame when the transaction
# committed one (its ``FrameCommitted`` event is then the row's last seq). The stored events
# are compact (``[type, nodeId, payload]``): the wire body's ``type``, ``runId``, ``seq``,
# ``timestampMs`` and ``nodeId`` come from the row (see flowplane.store.event_codec).
event_batches = sa.Table(
    "event_batches",
    metadata,
    # (INTEGER on SQLite: the rowid itself, no separate primary key index.)
    sa.Column(
        "last_seq",
        sa.BigInteger().with_variant(sa.Integer, "sqlite"),
        primary_key=True,
        autoincrement=False,
    ),
    sa.Column("size", sa.Integer, nullable=False),
    sa.Column("run_id", Id, nullable=False),
    sa.Column("namespace", sa.String(64), nullable=False),
    sa.Column("ts_ms", Ms, nullable=False),
    # JSON text, not JSONB, on PostgreSQL: half the size, and never queried into. (Written
    # from a JSONB parameter there, so what it holds is JSONB's normal form, as before.)
    sa.Column("events", sa.JSON, nullable=False),
    # The frame this transaction committed (time travel): NULL when it changed no node.
    sa.Column("frame_no", sa.Integer, nullable=True),
    # The node states that changed: [[nodeId, iteration, status, attempt], ...].
    sa.Column("changes", sa.JSON, nullable=True),
    sa.Index("ix_event_batches_run", "run_id", "last_seq"),
    sa.Index("ix_event_batches_namespace", "namespace", "last_seq"),
)

event_counter = sa.Table(
    "event_counter",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("seq", sa.BigInteger, nullable=False),
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

users = sa.Table(
    "users",
    metadata,
    sa.Column("id", Id, primary_key=True),
    sa.Column("username", sa.String(128), nullable=False),
    sa.Column("password_hash", sa.String(255), nullable=False),
    sa.Column("role", sa.String(16), nullable=False),
    # NULL: every namespace; otherwise a JSON list of namespace names.
    sa.Column("namespaces", JSONType, nullable=True),
    # Bumped on every password change; login tokens carry it, so old ones stop working.
    sa.Column("token_version", sa.Integer, nullable=False, server_default="1"),
    sa.Column("disabled", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("created_at_ms", Ms, nullable=False),
    sa.Column("updated_at_ms", Ms, nullable=False),
    sa.Column("password_changed_at_ms", Ms, nullable=False),
    sa.Column("created_by", sa.String(128), nullable=True),
    sa.UniqueConstraint("username", name="ux_users_username"),
)

api_keys = sa.Table(
    "api_keys",
    metadata,
    sa.Column("id", Id, primary_key=True),
    sa.Column("name", sa.String(128), nullable=False),
    # The first characters of the key, for lookup and display; the key itself is not stored.
    sa.Column("prefix", sa.String(32), nullable=False),
    sa.Column("key_hash", sa.String(64), nullable=False),
    sa.Column("role", sa.String(16), nullable=False),
    sa.Column("namespaces", JSONType, nullable=True),
    sa.Column("rate_limit_per_minute", sa.Integer, nullable=True),
    sa.Column("expires_at_ms", Ms, nullable=True),
    sa.Column("created_at_ms", Ms, nullable=False),
    sa.Column("last_used_at_ms", Ms, nullable=True),
    sa.Column("revoked_at_ms", Ms, nullable=True),
    sa.Column("created_by", sa.String(128), nullable=True),
    sa.UniqueConstraint("key_hash", name="ux_api_keys_hash"),
    sa.Index("ix_api_keys_prefix", "prefix"),
)

server_secrets = sa.Table(
    "server_secrets",
    metadata,
    # Values every process of an installation must agree on (the generated JWT key) and
    # one-time markers (the first admin key); a unique name makes creation race-free.
    sa.Column("name", sa.String(64), primary_key=True),
    sa.Column("value", sa.Text, nullable=False),
    sa.Column("created_at_ms", Ms, nullable=False),
)

schedules = sa.Table(
    "schedules",
    metadata,
    sa.Column("id", Id, primary_key=True),
    sa.Column("namespace", sa.String(64), nullable=False),
    sa.Column("workflow_id", Id, nullable=False),
    sa.Column("name", sa.String(128), nullable=False),
    sa.Column("cron", sa.String(255), nullable=False),
    sa.Column("timezone", sa.String(64), nullable=False, server_default="UTC"),
    sa.Column("input", JSONType, nullable=True),
    sa.Column("enabled", sa.Boolean, nullable=False, server_default=sa.true()),
    sa.Column("start_at_ms", Ms, nullable=True),
    sa.Column("end_at_ms", Ms, nullable=True),
    # skip | latest | all: what to do with slots missed while no process was ticking.
    sa.Column("catchup", sa.String(16), nullable=False, server_default="latest"),
    sa.Column("catchup_window_seconds", sa.Integer, nullable=False, server_default="3600"),
    # The first slot not yet handled; NULL when the schedule has no slot left (past end_at).
    sa.Column("next_fire_ms", Ms, nullable=True),
    sa.Column("last_fired_slot_ms", Ms, nullable=True),
    # api: created through /v1/schedules; workflow: declared in a workflow's `triggers:`.
    sa.Column("owner", sa.String(16), nullable=False, server_default="api"),
    sa.Column("created_at_ms", Ms, nullable=False),
    sa.Column("updated_at_ms", Ms, nullable=False),
    sa.Column("created_by", sa.String(128), nullable=True),
    sa.UniqueConstraint("workflow_id", "name", name="ux_schedules_workflow_name"),
    sa.Index("ix_schedules_due", "enabled", "next_fire_ms"),
    sa.Index("ix_schedules_namespace", "namespace", "id"),
)

schedule_fires = sa.Table(
    "schedule_fires",
    metadata,
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True),
    sa.Column("schedule_id", Id, nullable=False),
    sa.Column("slot_ms", Ms, nullable=False),
    sa.Column("run_id", Id, nullable=True),
    sa.Column("fired_at_ms", Ms, nullable=False),
    # fired | failed
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("error", JSONType, nullable=True),
    # Every process may try a slot; this constraint lets exactly one of them fire it.
    sa.UniqueConstraint("schedule_id", "slot_ms", name="ux_schedule_fires_slot"),
)

triggers = sa.Table(
    "triggers",
    metadata,
    sa.Column("id", Id, primary_key=True),
    sa.Column("namespace", sa.String(64), nullable=False),
    # NULL only for signal triggers that address waiting runs of any workflow.
    sa.Column("workflow_id", Id, nullable=True),
    sa.Column("key", sa.String(128), nullable=False),
    # run: start a run; signal: deliver a signal to waiting runs.
    sa.Column("kind", sa.String(16), nullable=False, server_default="run"),
    sa.Column("signal_name", sa.String(128), nullable=True),
    sa.Column("correlation", sa.String(1000), nullable=True),
    # none | standard | github | stripe
    sa.Column("scheme", sa.String(16), nullable=False, server_default="none"),
    # An AES-GCM envelope when a master key is configured, else "plain:<secret>".
    sa.Column("secret", sa.Text, nullable=True),
    sa.Column("enabled", sa.Boolean, nullable=False, server_default=sa.true()),
    sa.Column("owner", sa.String(16), nullable=False, server_default="api"),
    sa.Column("created_at_ms", Ms, nullable=False),
    sa.Column("updated_at_ms", Ms, nullable=False),
    sa.Column("created_by", sa.String(128), nullable=True),
    sa.UniqueConstraint("key", name="ux_triggers_key"),
    sa.Index("ix_triggers_namespace", "namespace", "id"),
    sa.Index("ix_triggers_workflow", "workflow_id"),
)

webhook_deliveries = sa.Table(
    "webhook_deliveries",
    metadata,
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True),
    sa.Column("trigger_id", Id, nullable=False),
    sa.Column("delivery_id", sa.String(255), nullable=False),
    sa.Column("received_at_ms", Ms, nullable=False),
    sa.Column("run_id", Id, nullable=True),
    sa.UniqueConstraint("trigger_id", "delivery_id", name="ux_webhook_deliveries_id"),
    sa.Index("ix_webhook_deliveries_received", "received_at_ms"),
)

credentials = sa.Table(
    "credentials",
    metadata,
    sa.Column("id", Id, primary_key=True),
    sa.Column("namespace", sa.String(64), nullable=False),
    sa.Column("name", sa.String(128), nullable=False),
    sa.Column("type", sa.String(32), nullable=False, server_default="generic"),
    sa.Column("description", sa.String(500), nullable=True),
    # "v1:<key id>:<b64 nonce>:<b64 ciphertext>" (security/crypto.py): never the plaintext.
    sa.Column("envelope", sa.Text, nullable=False),
    # The key id of the envelope, so key rotation finds what is left to re-encrypt.
    sa.Column("key_id", sa.String(32), nullable=False),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("created_at_ms", Ms, nullable=False),
    sa.Column("updated_at_ms", Ms, nullable=False),
    sa.Column("created_by", sa.String(128), nullable=True),
    sa.Column("updated_by", sa.String(128), nullable=True),
    # The use policy (services/credentials.py, engine/secrets.py): NULL lists allow any
    # workflow / connector; template_use is none | exact | any.
    sa.Column("allowed_workflows", JSONType, nullable=True),
    sa.Column("allowed_connectors", JSONType, nullable=True),
    sa.Column("template_use", sa.String(8), nullable=False, server_default="exact"),
    sa.UniqueConstraint("namespace", "name", name="ux_credentials_name"),
    sa.Index("ix_credentials_key_id", "key_id"),
)

kv = sa.Table(
    "kv",
    metadata,
    sa.Column("namespace", sa.String(64), primary_key=True),
    sa.Column("key", sa.String(512), primary_key=True),
    sa.Column("value", JSONType, nullable=False),
    # 1 on creation, +1 per write: the ETag and the compare-and-set token.
    sa.Column("version", sa.Integer, nullable=False),
    # Expired entries are invisible to readers and deleted by the next writer or a purge.
    sa.Column("expires_at_ms", Ms, nullable=True),
    sa.Column("created_at_ms", Ms, nullable=False),
    sa.Column("updated_at_ms", Ms, nullable=False),
    sa.Column("updated_by", sa.String(128), nullable=True),
    sa.Index("ix_kv_expires", "expires_at_ms"),
)

audit = sa.Table(
    "audit",
    metadata,
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True),
    sa.Column("ts_ms", Ms, nullable=False),
    sa.Column("actor", sa.String(128), nullable=False),
    # api_key | user | workflow | cli | system
    sa.Column("actor_kind", sa.String(16), nullable=False),
    sa.Column("actor_id", sa.String(64), nullable=True),
    sa.Column("action", sa.String(64), nullable=False),
    sa.Column("namespace", sa.String(64), nullable=True),
    sa.Column("target_type", sa.String(32), nullable=False),
    sa.Column("target_id", sa.String(600), nullable=False),
    sa.Column("before_version", sa.Integer, nullable=True),
    sa.Column("after_version", sa.Integer, nullable=True),
    sa.Column("request_id", sa.String(128), nullable=True),
    # Small facts about the change; never a secret value (store/audit.py scrubs them).
    sa.Column("details", JSONType, nullable=True),
    sa.Index("ix_audit_ts", "ts_ms"),
    sa.Index("ix_audit_namespace_id", "namespace", "id"),
)
