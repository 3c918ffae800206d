"""partial indexes: the claim predicate with OR, two run indexes partial, runs by deadline

Three indexes cost every start of a run more than they had to, and the run-timeout sweep
read every run.

* ``ix_node_runs_claim`` is partial: only the node runs a worker may claim (``ready``,
  ``waiting-timer``) or the lease reaper looks at (``in-progress``). Its predicate was
  ``status IN ('ready', 'waiting-timer', 'in-progress')``. SQLite evaluates it for every
  insert of a node run and every update of its status, and for a constant ``IN`` list of
  more than two values it builds a temporary b-tree of the values each time a statement
  runs: ~2.4 µs a row, about half of what inserting a node run cost (a start of a 5-node run
  inserts five). The same predicate with ``OR`` is compared in place. The index holds the
  same rows; queries that use it hold the new predicate word for word
  (``statements.CLAIMABLE_ROWS``), as SQLite needs to use a partial index.
* ``ix_runs_parent`` and ``ux_runs_idempotency`` indexed every run, though only child runs
  have a parent and only runs started with an ``Idempotency-Key`` have a key: each start
  wrote an entry of ``NULL`` into both. They are now partial (``IS NOT NULL``): a lookup by
  parent or by key names a value, which implies it on both backends, and uniqueness is
  unchanged (``NULL`` keys never collided).
* ``ix_runs_deadline`` (new): the active runs that have a deadline (a workflow's
  ``timeout``), by deadline. Every worker's maintenance loop looks for runs past
  their deadline every ``reaper_interval_seconds`` (5 s); with no index on ``deadline_ms``
  that was a scan of every run ever kept: 38 ms on SQLite (on the event loop: writes there
  are inline) and 31-35 ms on PostgreSQL with 200,000 runs. The sweep's query holds the
  predicate word for word (``statements.DEADLINED_ROWS``), so it reads only the runs
  it times out. The predicate is written with ``<>``, not ``NOT IN``, for the reason
  above; a run without a deadline stops at its first term.

Rebuilt on PostgreSQL too, so that both backends keep one schema.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-08 03:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

OLD_CLAIMABLE = "status IN ('ready', 'waiting-timer', 'in-progress')"
NEW_CLAIMABLE = "(status = 'ready' OR status = 'waiting-timer' OR status = 'in-progress')"
DEADLINED = (
    "deadline_ms IS NOT NULL AND status <> 'finished' AND status <> 'failed' "
    "AND status <> 'cancelled' AND status <> 'timed-out'"
)


def _where(predicate: str | None) -> dict[str, object]:
    if predicate is None:
        return {}
    return {"sqlite_where": sa.text(predicate), "postgresql_where": sa.text(predicate)}


def _indexes(claimable: str, partial: bool) -> None:
    with op.batch_alter_table("node_runs") as batch:
        batch.drop_index("ix_node_runs_claim")
        batch.create_index(
            "ix_node_runs_claim", ["status", "available_at_ms"], unique=False, **_where(claimable)
        )
    parent = "parent_run_id IS NOT NULL" if partial else None
    key = "idempotency_key IS NOT NULL" if partial else None
    with op.batch_alter_table("runs") as batch:
        batch.drop_index("ix_runs_parent")
        batch.drop_index("ux_runs_idempotency")
        batch.create_index("ix_runs_parent", ["parent_run_id"], unique=False, **_where(parent))
        batch.create_index(
            "ux_runs_idempotency", ["namespace", "idempotency_key"], unique=True, **_where(key)
        )


def upgrade() -> None:
    _indexes(NEW_CLAIMABLE, partial=True)
    with op.batch_alter_table("runs") as batch:
        batch.create_index("ix_runs_deadline", ["deadline_ms"], unique=False, **_where(DEADLINED))


def downgrade() -> None:
    with op.batch_alter_table("runs") as batch:
        batch.drop_index("ix_runs_deadline")
    _indexes(OLD_CLAIMABLE, partial=False)
