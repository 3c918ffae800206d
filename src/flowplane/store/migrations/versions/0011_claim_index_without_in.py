"""the claim index's predicate written with OR

``ix_node_runs_claim`` is partial: only the node runs a worker may claim (``ready``,
``waiting-timer``) or the lease reaper looks at (``in-progress``). Its predicate was
``status IN ('ready', 'waiting-timer', 'in-progress')``. SQLite evaluates it for every
insert of a node run and every update of its status, and for a constant ``IN`` list of more
than two values it builds a temporary b-tree of the values each time a statement runs:
~2.4 µs a row, about half of what inserting a node run cost (a start of a 5-node run
inserts five). The same predicate with ``OR`` is compared in place. The index holds the
same rows; queries that use it hold the new predicate word for word
(``statements.CLAIMABLE_ROWS``), as SQLite needs to use a partial index. Rebuilt on
PostgreSQL too, so that both backends keep one schema.

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

OLD = "status IN ('ready', 'waiting-timer', 'in-progress')"
NEW = "(status = 'ready' OR status = 'waiting-timer' OR status = 'in-progress')"


def _claim_index(predicate: str) -> None:
    with op.batch_alter_table("node_runs") as batch:
        batch.drop_index("ix_node_runs_claim")
        batch.create_index(
            "ix_node_runs_claim",
            ["status", "available_at_ms"],
            unique=False,
            sqlite_where=sa.text(predicate),
            postgresql_where=sa.text(predicate),
        )


def upgrade() -> None:
    _claim_index(NEW)


def downgrade() -> None:
    _claim_index(OLD)
