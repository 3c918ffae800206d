"""successful attempts on node runs

A node run's successful attempt is kept on its ``node_runs`` row (``worker``: the worker that
ran it, '' when none did; ``attempt_started_ms``; its end is the node run's
``finished_at_ms``), written by the fenced update that finishes the node run with its
output. ``attempts`` keeps failed, lost and superseded attempts. One row per finished node
run fewer (issue 19, storage); the output and its attempt are recorded once per node run by
the node run's unique key (``ux_node_runs_key``), so ``ux_attempts_one_success`` goes.

Upgrade folds each ``finished`` attempt row into its node run (the finished node run whose
attempt number and finish time it has) and deletes the row; a row that matches no such node
run is left as it is (readers still list it). Downgrade writes the rows back (in the order
the attempts finished: new ids) and restores the index.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-07 06:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The finished attempt row ``a`` of node run ``node_runs`` (attempt numbers start at 1).
_MATCH = (
    "a.run_id = node_runs.run_id AND a.node_id = node_runs.node_id"
    " AND a.iteration = node_runs.iteration AND a.status = 'finished'"
    " AND a.attempt = CASE WHEN node_runs.attempt > 1 THEN node_runs.attempt ELSE 1 END"
    " AND a.finished_at_ms = node_runs.finished_at_ms"
)


def upgrade() -> None:
    with op.batch_alter_table("node_runs") as batch:
        batch.add_column(sa.Column("worker", sa.String(length=128), nullable=True))
        batch.add_column(sa.Column("attempt_started_ms", sa.BigInteger(), nullable=True))
    op.execute(
        "UPDATE node_runs SET"
        f" worker = (SELECT COALESCE(a.worker, '') FROM attempts a WHERE {_MATCH}),"
        f" attempt_started_ms = (SELECT a.started_at_ms FROM attempts a WHERE {_MATCH})"
        f" WHERE status = 'finished' AND EXISTS (SELECT 1 FROM attempts a WHERE {_MATCH})"
    )
    op.execute(
        "DELETE FROM attempts WHERE status = 'finished' AND EXISTS (SELECT 1 FROM node_runs"
        " WHERE node_runs.worker IS NOT NULL AND " + _MATCH.replace("a.", "attempts.") + ")"
    )
    with op.batch_alter_table("attempts") as batch:
        batch.drop_index("ux_attempts_one_success")


def downgrade() -> None:
    op.execute(
        "INSERT INTO attempts (run_id, node_id, iteration, attempt, status, worker,"
        " started_at_ms, finished_at_ms)"
        " SELECT run_id, node_id, iteration, CASE WHEN attempt > 1 THEN attempt ELSE 1 END,"
        " 'finished', NULLIF(worker, ''), attempt_started_ms, finished_at_ms"
        " FROM node_runs WHERE worker IS NOT NULL ORDER BY finished_at_ms, id"
    )
    with op.batch_alter_table("attempts") as batch:
        batch.create_index(
            "ux_attempts_one_success",
            ["run_id", "node_id", "iteration"],
            unique=True,
            sqlite_where=sa.text("status = 'finished'"),
            postgresql_where=sa.text("status = 'finished'"),
        )
    with op.batch_alter_table("node_runs") as batch:
        batch.drop_column("attempt_started_ms")
        batch.drop_column("worker")
